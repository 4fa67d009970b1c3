// lz4compat decompresses an LZ4 file the way the metal-hammer does (github.com/pierrec/lz4/v4
// v4.1.22, lz4.NewReader with its default options) and prints what it got:
//
//	<sha256 hex> <decompressed byte count>
//
// The integration test tests/integration/lz4compat.test.ts compares that line with the hash of
// the tar that went into the exporter. Exit 1 with the decoder's error on stderr when the file is
// not something the hammer could read.
//
// Concatenated frames: v4.1.22's Reader decodes the FIRST frame only. When it reaches the first
// frame's end mark (and checks its content checksum), Read returns io.EOF and the reader stays
// closed; whatever follows in the source is never read and no error is reported (skippable frames
// are skipped only before a frame starts). `lz4 -d`, in contrast, decodes every frame in turn. A
// multi-frame image would therefore silently lose everything after its first frame on the hammer,
// which is why the exporter writes exactly one frame. The integration test checks this behaviour
// (two frames in, the first frame's bytes out).
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/pierrec/lz4/v4"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: lz4compat <file.lz4 | ->")
		os.Exit(2)
	}
	in := os.Stdin
	if os.Args[1] != "-" {
		f, err := os.Open(os.Args[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer f.Close()
		in = f
	}
	h := sha256.New()
	n, err := io.Copy(h, lz4.NewReader(in))
	if err != nil {
		fmt.Fprintf(os.Stderr, "lz4 decode failed after %d bytes: %v\n", n, err)
		os.Exit(1)
	}
	fmt.Printf("%s %d\n", hex.EncodeToString(h.Sum(nil)), n)
}
