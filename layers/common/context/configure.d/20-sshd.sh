#!/bin/bash
# sshd: validate the config with throw-away host keys (every machine gets its own at first boot).
set -euo pipefail
# shellcheck source=/dev/null
. /usr/local/lib/metal/metal.sh

ssh-keygen -A >/dev/null
mkdir -p /run/sshd
sshd -t || die "sshd_config is invalid"
rm -f /etc/ssh/ssh_host_*
