//go:build tools

// Package tools pins the firewall image's Go programs (see go.mod for versions), kept apart from
// ../go.mod so that their dependency trees do not move the other tools' versions.
// scripts/lib/setup.ts builds each of them with `go build` into .state/bin.
package tools

import (
	_ "github.com/prometheus/node_exporter"
	_ "tailscale.com/cmd/tailscale"
	_ "tailscale.com/cmd/tailscaled"
)
