#!/bin/bash
# The host-built Go tools run in this userland.
set -euo pipefail
# shellcheck source=/dev/null
. /usr/local/lib/metal/metal.sh

if [ -e /usr/local/bin/ignition ]; then
  /usr/local/bin/ignition -version >/dev/null 2>&1 || /usr/local/bin/ignition --version >/dev/null 2>&1 \
    || die "ignition does not run"
fi
if [ -e /usr/local/bin/crictl ]; then
  /usr/local/bin/crictl --version >/dev/null || die "crictl does not run"
fi
