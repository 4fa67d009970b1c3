#!/bin/bash
# sudo: the sudoers files parse, and su is only for members of the sudo group (root keeps it
# through pam_rootok).
set -euo pipefail
# shellcheck source=/dev/null
. /usr/local/lib/metal/metal.sh

group="${SUDO_GROUP:?build arg SUDO_GROUP is empty (contract.sudo_group)}"
getent group "$group" >/dev/null || die "group ${group} is missing"
visudo -c >/dev/null || die "sudoers is invalid"
sed -i -E "s/^#[[:space:]]*(auth[[:space:]]+required[[:space:]]+pam_wheel\.so)( use_uid)?\$/\1 use_uid group=${group}/" /etc/pam.d/su
grep -qE "^auth[[:space:]]+required[[:space:]]+pam_wheel\.so use_uid group=${group}\$" /etc/pam.d/su \
  || die "could not restrict su to group ${group}"
