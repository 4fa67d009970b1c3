#!/bin/bash
# Final stage of the nvidia image: install the kernel module package built in stage 1 and the
# driver userland (the packages named on the command line, from NVIDIA_PACKAGES), then check that
# the modules match the image's kernel and that nothing of the build toolchain came along.
set -euo pipefail
# shellcheck source=/dev/null
. /usr/local/lib/metal/metal.sh

[ "$#" -gt 0 ] || die "no driver packages given (NVIDIA_PACKAGES is empty)"
kver="$(metal_kernel_version)"
deb="$(find /tmp/nvidia-modules -maxdepth 1 -name "nvidia-kernel-${kver}_*.deb" | head -n1)"
[ -n "$deb" ] || die "stage 1 produced no nvidia-kernel-${kver} package"

export DEBIAN_FRONTEND=noninteractive
# no daemon starts inside the build container: the body's policy-rc.d (removed by the finalize stage)
[ -x /usr/sbin/policy-rc.d ] || die "the base image has no /usr/sbin/policy-rc.d"
# the packages' triggers would regenerate the initrd several times; do it once, at the end
dpkg-divert --local --rename --add /usr/sbin/update-initramfs
ln -s /bin/true /usr/sbin/update-initramfs
apt-get update
apt-get -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
  install --no-install-recommends "$deb" "$@"
rm /usr/sbin/update-initramfs
dpkg-divert --local --rename --remove /usr/sbin/update-initramfs
# the initrd gets nvidia-kernel-support's modprobe configuration (nouveau blacklisted)
update-initramfs -u -k "$kver"

# ---- checks ------------------------------------------------------------------------------------
for p in dkms nvidia-kernel-dkms "linux-headers-${kver}" gcc make; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then die "$p must not be in the image"; fi
done
depmod -a "$kver"
upstream="$(dpkg-query -W -f='${Version}' "nvidia-kernel-${kver}")"
upstream="${upstream#*:}"
upstream="${upstream%-*}"
# Debian names the module files nvidia-current*.ko; each is built for this kernel and driver
for m in nvidia-current nvidia-current-uvm nvidia-current-modeset nvidia-current-drm; do
  vermagic="$(modinfo -k "$kver" -F vermagic "$m")" || die "module $m is missing for ${kver}"
  [ "${vermagic%% *}" = "$kver" ] || die "module $m is for ${vermagic%% *}, not ${kver}"
  [ "$(modinfo -k "$kver" -F version "$m")" = "$upstream" ] || die "module $m differs from the driver ${upstream}"
done
# ... and "modprobe nvidia" loads them through nvidia-kernel-support's install rules (the config
# is read into a variable first: grep -q would end the pipe early and pipefail count that)
modconf="$(modprobe -S "$kver" --showconfig)"
grep -qE '^install nvidia modprobe -i nvidia-current( |$)' <<<"$modconf" || die "no modprobe rule maps nvidia to nvidia-current"
if dpkg-query -W -f='${Status}' firmware-nvidia-gsp 2>/dev/null | grep -q 'ok installed'; then
  compgen -G "/lib/firmware/nvidia/${upstream}/gsp*.bin" >/dev/null || die "GSP firmware for ${upstream} is missing (dpkg path-exclude?)"
fi
log "nvidia ${upstream}: modules for ${kver} installed"

apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old /var/lib/dpkg/*-old /tmp/* /var/tmp/*
