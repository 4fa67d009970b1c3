#!/bin/bash
# Install the kernel of an apt-family image, after everything with an initramfs hook, so that the
# kernel's postinst generates the initrd exactly once. From the build args:
# KERNEL_SOURCE "archive" (default): KERNEL_PACKAGE from the image's archive, e.g. linux-image-amd64
# KERNEL_SOURCE "mainline": the .debs MAINLINE_DEBS of a pinned kernel.ubuntu.com mainline build
#   MAINLINE_URL, checked against that directory's CHECKSUMS file
set -euo pipefail
# shellcheck source=/dev/null
. /usr/local/lib/metal/metal.sh

source="${KERNEL_SOURCE:-archive}"
case "$source" in
  archive)
    package="${KERNEL_PACKAGE:-}"
    [ -n "$package" ] || die "KERNEL_PACKAGE is empty"
    apt-get -y install --no-install-recommends "$package"
    ;;
  mainline)
    url="${MAINLINE_URL:-}"
    debs="${MAINLINE_DEBS:-}"
    if [ -z "$url" ] || [ -z "$debs" ]; then
      die "KERNEL_SOURCE=mainline needs MAINLINE_URL and MAINLINE_DEBS in the image.yaml"
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
