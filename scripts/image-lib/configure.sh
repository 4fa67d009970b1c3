#!/bin/bash
# The configure step of an image body: runs the configure hooks that the staged layers and the OS
# folder put into configure.d/ (copied to /usr/local/lib/metal/configure.d), in name order, and
# fails the build on the first hook that fails. Generic finishing (units, clean-up, installer,
# build metadata) is not done here but once for every image in the finalize stage.
set -euo pipefail
# shellcheck source=metal.sh
. /usr/local/lib/metal/metal.sh
metal_run_hooks /usr/local/lib/metal/configure.d
log "done"
