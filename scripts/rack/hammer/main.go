// rack-hammer does to a test machine what the metal-hammer does to a server, with the libraries
// the metal-hammer uses for it: github.com/pierrec/lz4/v4 v4.1.22 to decompress the image and
// github.com/mholt/archiver v2.1.0 to untar it (so the untar's lossy rules are the library's own,
// not a restatement), gopkg.in/yaml.v3 for install.yaml, and the kexec_file_load system call for
// the first boot.
//
//	rack-hammer                      as PID 1 of the hammer VM's initramfs: provision the disk
//	                                 from the job the test host serves, then kexec (init.go)
//	rack-hammer burn <image> <dir>   pull (http URL) or open (file) an img.tar.lz4, check its md5
//	                                 and untar it into <dir> as the hammer does
//	rack-hammer install-yaml         read a job's "machine" (JSON) on stdin and print install.yaml
//	                                 as the hammer writes it (root_uuid and timestamp from flags)
//	rack-hammer fstab                read a layout and block ids (JSON) on stdin and print fstab
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

func main() {
	if os.Getpid() == 1 {
		runInit()
		return
	}
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "burn":
		err = cmdBurn(os.Args[2:])
	case "install-yaml":
		err = cmdInstallYAML(os.Args[2:])
	case "fstab":
		err = cmdFstab(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "rack-hammer: %v\n", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: rack-hammer burn <url|file> <dir> | install-yaml --root-uuid=U --timestamp=T | fstab")
	os.Exit(2)
}

// cmdBurn pulls (or opens) an image, checks its md5 and untars it like the hammer's Burn.
func cmdBurn(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("burn needs <url|file> <dir>")
	}
	src, dir := args[0], args[1]
	local := src
	if isURL(src) {
		tmp, err := os.MkdirTemp("", "rack-hammer-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		local = filepath.Join(tmp, "os.tar.lz4")
		if err := pull(src, local); err != nil {
			return err
		}
	} else if err := checkMD5(local, local+".md5"); err != nil {
		return err
	}
	return burn(local, src, dir)
}

func cmdInstallYAML(args []string) error {
	fs := flag.NewFlagSet("install-yaml", flag.ContinueOnError)
	rootUUID := fs.String("root-uuid", "", "UUID of the root file system")
	timestamp := fs.String("timestamp", "", "RFC 3339 time of the install")
	console := fs.String("console", "ttyS0", "console= of the hammer's kernel command line")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var m Machine
	if err := decodeStdin(&m); err != nil {
		return err
	}
	out, err := installYAML(m, *rootUUID, *timestamp, *console)
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(out)
	return err
}

func cmdFstab(_ []string) error {
	var in struct {
		Layout Layout            `json:"layout"`
		UUIDs  map[string]string `json:"uuids"`
	}
	if err := decodeStdin(&in); err != nil {
		return err
	}
	entries, err := fstabEntries(in.Layout, func(dev string) (string, error) {
		u, ok := in.UUIDs[dev]
		if !ok {
			return "", fmt.Errorf("no UUID given for %s", dev)
		}
		return u, nil
	})
	if err != nil {
		return err
	}
	_, err = io.WriteString(os.Stdout, renderFstab(entries))
	return err
}

func decodeStdin(v any) error {
	dec := json.NewDecoder(os.Stdin)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("reading JSON from stdin: %w", err)
	}
	return nil
}
