#!/bin/bash
# Kernel modules: every module must find its dependencies (the dpkg excludes drop some driver trees).
set -euo pipefail
# shellcheck source=/dev/null
. /usr/local/lib/metal/metal.sh

kver="$(metal_kernel_version)"
depmod -a "$kver"
missing="$(awk -F': ' '{ n=split($2, d, " "); for (i=1; i<=n; i++) print d[i] }' "/lib/modules/$kver/modules.dep" \
  | sort -u | while read -r m; do [ -e "/lib/modules/$kver/$m" ] || echo "$m"; done)"
[ -z "$missing" ] || die "modules depend on excluded modules: $missing"
