#!/bin/bash
# netplan.io and isc-dhcp-client stay out of the Ubuntu image for good: systemd-networkd (written by
# the installer) and FRR manage the network. A local package that Provides and Conflicts with both
# satisfies the packages that depend on them (cloud-init), and removes them if the base has them.
set -euo pipefail
# shellcheck source=/dev/null
. /usr/local/lib/metal/metal.sh

pkg=/tmp/metal-no-netplan
mkdir -p "${pkg}/DEBIAN"
cat > "${pkg}/DEBIAN/control" <<CONTROL
Package: metal-no-netplan
Version: 1.0
Architecture: all
Maintainer: metal-images build <noreply@metal-stack.io>
Provides: netplan.io, isc-dhcp-client
Conflicts: netplan.io, isc-dhcp-client, ifupdown
Replaces: netplan.io, isc-dhcp-client
Section: admin
Priority: optional
Description: keeps netplan and dhclient out of the metal-stack Ubuntu image
 The network of a metal-stack machine is configured by its installer (systemd-networkd) and FRR.
CONTROL
dpkg-deb --root-owner-group --build "$pkg" /tmp/metal-no-netplan.deb >/dev/null
rm -rf "$pkg"
apt-get -y install --no-install-recommends /tmp/metal-no-netplan.deb
rm -f /tmp/metal-no-netplan.deb
for p in netplan.io isc-dhcp-client ifupdown; do
  if metal_installed "$p"; then die "$p is still installed"; fi
done
