#!/bin/bash
# Modes of the hardened config files: COPY keeps only the modes git knows (0644/0755), and sudo and
# sshd refuse or warn on looser ones.
set -euo pipefail
# shellcheck source=/dev/null
. /usr/local/lib/metal/metal.sh

chmod 0600 /etc/ssh/sshd_config
[ ! -e /etc/sudoers ] || chmod 0440 /etc/sudoers
find /etc/sudoers.d -maxdepth 1 -type f ! -name README -exec chmod 0440 {} +
chmod 0644 /etc/sysctl.d/*.conf /etc/modprobe.d/*.conf /etc/systemd/journald.conf.d/*.conf
find /usr/local/bin -maxdepth 1 -type f -exec chmod 0755 {} +
