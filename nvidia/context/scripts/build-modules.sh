#!/bin/bash
# Build stage of the nvidia image: compile the NVIDIA kernel module with DKMS against the kernel of
# the image (not the build host's), check it, and package the result as a binary Debian package
# (nvidia-kernel-<kver>) that Provides nvidia-kernel-<driver version>, the way module-assistant
# packages do. The final stage installs that package, so the image carries the modules without
# DKMS, compilers or kernel headers, and dpkg still owns every module file.
set -euo pipefail
# shellcheck source=/dev/null
. /usr/local/lib/metal/metal.sh

kver="$(metal_kernel_version)"

export DEBIAN_FRONTEND=noninteractive
# This stage's initrd is thrown away: skip the rebuilds the kernel-header and DKMS triggers ask for.
dpkg-divert --local --rename --add /usr/sbin/update-initramfs
ln -s /bin/true /usr/sbin/update-initramfs
apt-get update
apt-get -y install --no-install-recommends "linux-headers-${kver}" nvidia-kernel-dkms

version="$(dpkg-query -W -f='${Version}' nvidia-kernel-dkms)"
upstream="${version#*:}"
upstream="${upstream%-*}"
module="$(sed -n -E 's/^PACKAGE_NAME="?([^"]*)"?$/\1/p' "/usr/src/"*"-${upstream}/dkms.conf" | head -n1)"
[ -n "$module" ] || die "no dkms.conf for driver ${upstream} under /usr/src"

# The package's postinst builds for kernels whose headers are installed; make sure ours is one.
if ! dkms status -m "$module" -v "$upstream" -k "$kver" | grep -q ': installed'; then
  dkms install -m "$module" -v "$upstream" -k "$kver"
fi
dkms status -m "$module" -v "$upstream" -k "$kver" | grep -q ': installed' || die "dkms did not install ${module}/${upstream} for ${kver}"

moddir="/lib/modules/${kver}/updates/dkms"
mapfile -t kos < <(find "$moddir" -maxdepth 1 -name '*.ko*' | sort)
[ "${#kos[@]}" -gt 0 ] || die "no modules in ${moddir}"
for ko in "${kos[@]}"; do
  vermagic="$(modinfo -F vermagic "$ko")"
  [ "${vermagic%% *}" = "$kver" ] || die "$ko was built for ${vermagic%% *}, not ${kver}"
done
printf '%s\n' "${kos[@]}" | grep -qE '/nvidia(-current)?\.ko' || die "the main nvidia module is missing from ${moddir}"
log "built ${#kos[@]} modules of ${module} ${upstream} for ${kver}: $(printf '%s ' "${kos[@]##*/}")"

# ---- binary package ---------------------------------------------------------------------------
pkg="nvidia-kernel-${kver}"
root="/tmp/${pkg}"
rm -rf "$root"
mkdir -p "${root}/DEBIAN" "${root}${moddir}"
cp -a "${kos[@]}" "${root}${moddir}/"
installed_size="$(du -sk "${root}/lib" | cut -f1)"
cat > "${root}/DEBIAN/control" <<CONTROL
Package: ${pkg}
Source: metal-images-nvidia
Version: ${version}
Architecture: amd64
Maintainer: metal-images build <noreply@metal-stack.io>
Installed-Size: ${installed_size}
Depends: linux-image-${kver}, nvidia-kernel-support--v1, firmware-nvidia-gsp (= ${upstream}) | firmware-nvidia-gsp-${upstream}
Provides: nvidia-kernel-${upstream}
Conflicts: nvidia-kernel-dkms
Section: non-free/kernel
Priority: optional
Description: NVIDIA kernel modules ${upstream} for Linux ${kver}
 Built with DKMS from nvidia-kernel-dkms ${version} against linux-headers-${kver}
 while the metal-stack nvidia image was built.
CONTROL
for script in postinst postrm; do
  printf '%s\n' '#!/bin/sh' 'set -e' "if [ -e /lib/modules/${kver}/modules.order ]; then depmod -a ${kver}; fi" > "${root}/DEBIAN/${script}"
  chmod 0755 "${root}/DEBIAN/${script}"
done
mkdir -p /out
dpkg-deb --root-owner-group --build "$root" "/out/${pkg}_${version}_amd64.deb"
dpkg-deb --info "/out/${pkg}_${version}_amd64.deb" | sed -n 's/^ //p' | grep -E '^(Package|Version|Provides|Depends):'
