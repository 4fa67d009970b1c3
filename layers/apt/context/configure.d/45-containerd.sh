#!/bin/bash
# containerd: the upstream default config, with the systemd cgroup driver.
set -euo pipefail
# shellcheck source=/dev/null
. /usr/local/lib/metal/metal.sh

command -v containerd >/dev/null || exit 0
mkdir -p /etc/containerd
containerd config default > /etc/containerd/config.toml
sed -i -E 's/^([[:space:]]*SystemdCgroup[[:space:]]*=[[:space:]]*)false/\1true/' /etc/containerd/config.toml
grep -qE '^[[:space:]]*SystemdCgroup = true' /etc/containerd/config.toml || die "containerd: SystemdCgroup not set"
