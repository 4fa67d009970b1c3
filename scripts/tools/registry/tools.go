//go:build tools

// Package tools pins the OCI registry the release tests push to (distribution's `registry serve`).
// A module of its own so its storage drivers' SDKs do not move the versions of scripts/tools/go.mod.
package tools

import (
	_ "github.com/distribution/distribution/v3/cmd/registry"
)
