//go:build tools

// Package tools pins syft, which writes each image's SPDX SBOM. A module of its own: syft's
// dependency tree is large and would move the versions of scripts/tools/go.mod. Built lazily,
// on the first export that needs it (scripts/export/sbom.ts), not by every make setup.
package tools

import (
	_ "github.com/anchore/syft/cmd/syft"
)
