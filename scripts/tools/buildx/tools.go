//go:build tools

// Package tools pins the docker buildx CLI plugin (a module of its own, so buildx's dependency
// graph, which follows moby and BuildKit, does not move the versions of scripts/tools/go.mod).
// scripts/lib/setup.ts builds it with `go build` into .state/bin and links it as a docker CLI
// plugin under .state/docker/cli-plugins (the project's DOCKER_CONFIG).
package tools

import (
	_ "github.com/docker/buildx/cmd/buildx"
)
