#!/bin/bash
# Install the kernel of the Ubuntu image, after everything with an initramfs hook, so that the
# kernel's postinst generates the initrd exactly once.
#   install-kernel.sh <source> <package> <mainline-url> "<mainline-deb> ..."
# source "archive": <package> from the Ubuntu archive, e.g. linux-image-generic
# source "mainline": the .debs of a pinned kernel.ubuntu.com mainline build, checked against the
#   CHECKSUMS file of <mainline-url>
set -euo pipefail

die() { echo "install-kernel: ERROR: $*" >&2; exit 1; }

source="${1:-}"
case "$source" in
  archive)
    package="${2:-}"
    [ -n "$package" ] || die "KERNEL_PACKAGE is empty"
    apt-get -y install --no-install-recommends "$package"
    ;;
  mainline)
    url="${3:-}"
    debs="${4:-}"
    if [ -z "$url" ] || [ -z "$debs" ]; then
      die "KERNEL_SOURCE=mainline needs MAINLINE_URL and MAINLINE_DEBS in ubuntu/image.yaml"
    fi
    dir="$(mktemp -d)"
    curl -fsSL --retry 2 "${url%/}/CHECKSUMS" -o "${dir}/CHECKSUMS" || die "cannot fetch ${url%/}/CHECKSUMS"
    paths=()
    for deb in $debs; do
      curl -fsSL --retry 2 "${url%/}/${deb}" -o "${dir}/${deb}" || die "cannot fetch ${url%/}/${deb}"
      want="$(awk -v f="$deb" '$2 == f && length($1) == 64 { print $1 }' "${dir}/CHECKSUMS" | head -n1)"
      [ -n "$want" ] || die "${deb} is not listed with a sha256 in CHECKSUMS"
      echo "${want}  ${dir}/${deb}" | sha256sum -c --quiet - || die "${deb}: sha256 mismatch"
      paths+=("${dir}/${deb}")
    done
    apt-get -y install --no-install-recommends "${paths[@]}" linux-firmware
    rm -rf "$dir"
    ;;
  *)
    die "KERNEL_SOURCE must be archive or mainline, got \"$source\""
    ;;
esac
