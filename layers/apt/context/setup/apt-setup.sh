#!/bin/bash
# First step of every apt-family image build: the image's own apt sources (deb822, from the build
# args), no daemons starting in the build container, the OS folder's apt-setup hooks, and the base
# brought up to date.
#   APT_MIRROR, APT_SECURITY_MIRROR, APT_COMPONENTS, APT_KEYRING (build args from image.yaml)
set -euo pipefail
# shellcheck source=/dev/null
. /usr/local/lib/metal/metal.sh

: "${APT_MIRROR:?build arg APT_MIRROR is empty}" "${APT_SECURITY_MIRROR:?build arg APT_SECURITY_MIRROR is empty}"
: "${APT_COMPONENTS:?build arg APT_COMPONENTS is empty}" "${APT_KEYRING:?build arg APT_KEYRING is empty}"
# shellcheck disable=SC1091 # os-release of the image, not of the host
id="$(. /etc/os-release && echo "${ID}")"
# shellcheck disable=SC1091
codename="$(. /etc/os-release && echo "${VERSION_CODENAME}")"
[ -n "$codename" ] || die "no VERSION_CODENAME in /etc/os-release"
[ -s "$APT_KEYRING" ] || die "the base image has no ${APT_KEYRING} (APT_KEYRING)"

rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources
printf '%s\n' \
  "Types: deb" \
  "URIs: ${APT_MIRROR}" \
  "Suites: ${codename} ${codename}-updates" \
  "Components: ${APT_COMPONENTS}" \
  "Signed-By: ${APT_KEYRING}" \
  "" \
  "Types: deb" \
  "URIs: ${APT_SECURITY_MIRROR}" \
  "Suites: ${codename}-security" \
  "Components: ${APT_COMPONENTS}" \
  "Signed-By: ${APT_KEYRING}" \
  > "/etc/apt/sources.list.d/${id}.sources"

# no daemon may start inside the build container (removed again by the finalize stage)
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod 0755 /usr/sbin/policy-rc.d

apt-get update
metal_run_hooks /usr/local/lib/metal/apt-setup.d
apt-get -y dist-upgrade
