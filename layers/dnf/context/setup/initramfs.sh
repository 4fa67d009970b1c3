#!/bin/bash
# Kernel files and initramfs of the Almalinux image, in the layout the metal-hammer and the
# installer expect: /boot/vmlinuz-<k>, /boot/initramfs-<k>.img, exactly one /boot/System.map-<k>,
# /lib/modules/<k>. The initramfs is built with all modules (dracut --no-hostonly).
set -euo pipefail
# shellcheck source=/dev/null
. /usr/local/lib/metal/metal.sh

# the kernel package's modules dir names the version before /boot has its files
mapfile -t kvers < <(ls /lib/modules)
[ "${#kvers[@]}" -eq 1 ] || die "expected exactly one kernel in /lib/modules, got: ${kvers[*]}"
kver="${kvers[0]}"
# kernel-core keeps vmlinuz and System.map next to its modules; kernel-install copies them to
# /boot, but not in every container build
for f in vmlinuz System.map config; do
  if [ ! -s "/boot/${f}-${kver}" ] && [ -s "/lib/modules/${kver}/${f}" ]; then
    install -m 0644 "/lib/modules/${kver}/${f}" "/boot/${f}-${kver}"
  fi
done
chmod 0755 "/boot/vmlinuz-${kver}"
dracut --force --no-hostonly --kver "$kver" "/boot/initramfs-${kver}.img"

[ "$(metal_kernel_version)" = "$kver" ] || die "/boot does not hold kernel ${kver}"
test -s "/boot/vmlinuz-${kver}" || die "no /boot/vmlinuz-${kver}"
test -s "/boot/initramfs-${kver}.img" || die "no /boot/initramfs-${kver}.img"
lsinitrd "/boot/initramfs-${kver}.img" > /tmp/initrd.list
for m in virtio_blk virtio_pci virtio_net ext4 nvme ahci md-mod dm-mod; do
  # built into the kernel, or a module in the initramfs
  [ "$(modinfo -k "$kver" -F filename "$m" 2>/dev/null)" = "(builtin)" ] && continue
  grep -q "/${m//-/[-_]}\.ko" /tmp/initrd.list || die "initramfs lacks ${m}"
done
# no rescue kernel and initramfs: they would double /boot
rm -f /boot/*-rescue-* /tmp/initrd.list
