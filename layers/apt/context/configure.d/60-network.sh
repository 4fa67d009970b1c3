#!/bin/bash
# The network is systemd-networkd's (written by the installer) and FRR's: none of the packages
# FORBIDDEN_PACKAGES names (build arg: ifupdown, on Ubuntu also netplan and dhclient), and none of
# their configuration.
set -euo pipefail
# shellcheck source=/dev/null
. /usr/local/lib/metal/metal.sh

for p in ${FORBIDDEN_PACKAGES:?build arg FORBIDDEN_PACKAGES is empty}; do
  if metal_installed "$p"; then die "$p is installed"; fi
done
rm -rf /etc/network/interfaces /etc/network/interfaces.d /etc/netplan
