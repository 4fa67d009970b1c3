//go:build tools

// Package tools pins the Go programs the pipeline builds on the host (see go.mod for versions).
// scripts/lib/setup.ts builds each of them with `go build` into .state/bin.
package tools

import (
	_ "github.com/flatcar/ignition/config/v2_3" // keeps the module pinned; the binary is built from .../internal
	_ "github.com/NVIDIA/nvidia-container-toolkit/cmd/nvidia-cdi-hook"
	_ "github.com/NVIDIA/nvidia-container-toolkit/cmd/nvidia-container-runtime"
	_ "github.com/NVIDIA/nvidia-container-toolkit/cmd/nvidia-ctk"
	_ "github.com/goss-org/goss/cmd/goss"
	_ "github.com/versity/versitygw/cmd/versitygw"
	_ "sigs.k8s.io/cri-tools/cmd/crictl"
)
