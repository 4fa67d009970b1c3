package main

// The hammer's image step: HTTP GET of the image and of <image>.md5 to a file, md5 of the
// compressed file against the md5 file's text up to the first space, then pierrec/lz4 v4 NewReader
// into archiver v2.1.0's Tar.Read onto the root prefix, and the download removed.

import (
	"crypto/md5" //nolint:gosec // the image store's checksum format
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/mholt/archiver"
	lz4 "github.com/pierrec/lz4/v4"
)

func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// pull downloads image and image.md5 next to dest and checks the md5, like the hammer's Pull.
func pull(image, dest string) error {
	if err := download(image, dest); err != nil {
		return fmt.Errorf("unable to pull image %s: %w", image, err)
	}
	md5dest := dest + ".md5"
	defer os.Remove(md5dest)
	if err := download(image+".md5", md5dest); err != nil {
		return fmt.Errorf("unable to pull md5 %s.md5: %w", image, err)
	}
	return checkMD5(dest, md5dest)
}

func download(src, dest string) error {
	out, err := os.Create(dest)
	if err != nil {
		return err
	}
	defer out.Close()
	resp, err := http.Get(src) //nolint:gosec,noctx // the test host's URL
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= http.StatusBadRequest {
		return fmt.Errorf("download of %s did not work, statuscode was: %d", src, resp.StatusCode)
	}
	_, err = io.Copy(out, resp.Body)
	return err
}

// checkMD5 compares the md5 of file with the md5 file's text up to the first space.
func checkMD5(file, md5file string) error {
	content, err := os.ReadFile(md5file)
	if err != nil {
		return fmt.Errorf("unable to read md5sum file %s: %w", md5file, err)
	}
	expected := strings.Split(string(content), " ")[0]
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	h := md5.New() //nolint:gosec
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	got := fmt.Sprintf("%x", h.Sum(nil))
	if got != expected {
		return fmt.Errorf("md5sum mismatch: source md5:%s expected md5:%s", got, expected)
	}
	return nil
}

// burn untars the LZ4 image at source onto prefix; image is the URL (it must end in lz4).
func burn(source, image, prefix string) error {
	if !strings.HasSuffix(image, "lz4") {
		return fmt.Errorf("unsupported image compression format of image:%s", image)
	}
	file, err := os.Open(source)
	if err != nil {
		return fmt.Errorf("%s: failed to open archive: %w", source, err)
	}
	defer file.Close()
	if err := archiver.Tar.Read(io.NopCloser(lz4.NewReader(file)), prefix); err != nil {
		return fmt.Errorf("unable to burn image %s: %w", source, err)
	}
	return nil
}
