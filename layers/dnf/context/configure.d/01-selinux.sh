#!/bin/bash
# SELinux disabled (rootfs/etc/selinux/config): the installer and the metal-hammer's untar do not
# carry file labels.
set -euo pipefail
# shellcheck source=/dev/null
. /usr/local/lib/metal/metal.sh

grep -qx 'SELINUX=disabled' /etc/selinux/config || die "SELinux is not disabled"
