#!/bin/bash
# The initrd the kernel's postinst generated must boot any server and a virtio VM: the storage and
# network drivers, ext4, md and dm, and both CPU vendors' microcode.
set -euo pipefail
# shellcheck source=/dev/null
. /usr/local/lib/metal/metal.sh

kver="$(metal_kernel_version)"
initrd="/boot/initrd.img-${kver}"
[ -s "/boot/vmlinuz-${kver}" ] || die "no /boot/vmlinuz-${kver}"
[ -s "$initrd" ] || die "no ${initrd}: the kernel's postinst did not generate it"
lsinitramfs "$initrd" > /tmp/initrd.list
for m in virtio_blk virtio_pci virtio_net ext4 nvme ahci md-mod dm-mod; do
  # built into the kernel (Debian 13's virtio_pci), or a module in the initrd
  grep -q "/${m//-/[-_]}\.ko" "/lib/modules/${kver}/modules.builtin" && continue
  grep -q "/${m//-/[-_]}\.ko" /tmp/initrd.list || die "initrd lacks ${m}"
done
grep -q 'kernel/x86/microcode/GenuineIntel.bin' /tmp/initrd.list || die "initrd lacks the Intel microcode"
grep -q 'kernel/x86/microcode/AuthenticAMD.bin' /tmp/initrd.list || die "initrd lacks the AMD microcode"
rm -f /tmp/initrd.list
