#!/bin/sh
# metal-stack image installer entry point. The metal-hammer runs /install.sh (a copy of this file)
# in a chroot of the freshly untarred image, after writing /etc/metal/install.yaml. The work is
# done in Python (standard library and PyYAML, both in every image because cloud-init needs them).
set -eu
if ! command -v python3 >/dev/null 2>&1; then
  echo "metal-installer: FAILED: python3 is missing from this image (it runs /etc/metal/installer/install.py)" >&2
  exit 1
fi
exec python3 /etc/metal/installer/install.py "$@"
