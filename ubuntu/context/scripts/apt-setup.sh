#!/bin/bash
# First step of the Ubuntu image build: apt sources from the build args, no daemons starting in
# the build container, and netplan.io/isc-dhcp-client kept out for good: systemd-networkd (written
# by the installer) and FRR manage the network. A local package that Provides and Conflicts with
# both satisfies the packages that depend on them (cloud-init), and removes them if the base has them.
#   apt-setup.sh <mirror> <security-mirror> <components>
set -euo pipefail

mirror="${1:?mirror}"
security="${2:?security mirror}"
components="${3:?components}"
# shellcheck disable=SC1091 # os-release of the image, not of the host
codename="$(. /etc/os-release && echo "${VERSION_CODENAME}")"
[ -n "$codename" ] || { echo "apt-setup: no VERSION_CODENAME in /etc/os-release" >&2; exit 1; }

rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources
printf '%s\n' \
  "Types: deb" \
  "URIs: ${mirror}" \
  "Suites: ${codename} ${codename}-updates" \
  "Components: ${components}" \
  "Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg" \
  "" \
  "Types: deb" \
  "URIs: ${security}" \
  "Suites: ${codename}-security" \
  "Components: ${components}" \
  "Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg" \
  > /etc/apt/sources.list.d/ubuntu.sources

printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod 0755 /usr/sbin/policy-rc.d

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

apt-get update
apt-get -y install --no-install-recommends /tmp/metal-no-netplan.deb
rm -f /tmp/metal-no-netplan.deb
apt-get -y dist-upgrade
for p in netplan.io isc-dhcp-client ifupdown; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
    echo "apt-setup: $p is still installed" >&2
    exit 1
  fi
done
