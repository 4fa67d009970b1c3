#!/bin/bash
# Add one more suite of the base image's own archive to its apt sources (same URIs, components
# and keyring as the base's first deb822 stanza), e.g. bookworm-backports, where Debian 12 keeps
# suricata. Packages come from it only when asked for by name (pkg/suite): it gets apt's
# backports priority. An empty suite adds nothing.
#   apt-suite.sh <suite>
set -euo pipefail

suite="${1:-}"
[ -n "$suite" ] || exit 0
src="$(find /etc/apt/sources.list.d -maxdepth 1 -name '*.sources' | sort | head -n1)"
[ -n "$src" ] || { echo "apt-suite: the base image has no deb822 apt sources" >&2; exit 1; }
field() { sed -n -E "s/^$1:[[:space:]]*//p" "$src" | head -n1; }
uris="$(field URIs)"
components="$(field Components)"
signed_by="$(field Signed-By)"
if [ -z "$uris" ] || [ -z "$components" ]; then echo "apt-suite: no URIs/Components in $src" >&2; exit 1; fi
{
  echo "Types: deb"
  echo "URIs: ${uris}"
  echo "Suites: ${suite}"
  echo "Components: ${components}"
  if [ -n "$signed_by" ]; then echo "Signed-By: ${signed_by}"; fi
} > "/etc/apt/sources.list.d/${suite}.sources"
printf '%s\n' "Package: *" "Pin: release n=${suite}" "Pin-Priority: 100" > "/etc/apt/preferences.d/${suite}"
