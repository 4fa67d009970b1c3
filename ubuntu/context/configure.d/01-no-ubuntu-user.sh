#!/bin/bash
# uid 1000 belongs to the installer's user "metal": Ubuntu's cloud and container images ship a user
# "ubuntu" with uid 1000.
set -euo pipefail
# shellcheck source=/dev/null
. /usr/local/lib/metal/metal.sh

if getent passwd ubuntu >/dev/null; then userdel --remove ubuntu 2>/dev/null || userdel ubuntu; fi
if getent group ubuntu >/dev/null; then groupdel ubuntu; fi
