// Pure pieces of the VM test: the QEMU command lines, the kernel lookup in an unpacked image and
// the size of the test disk. The wrappers that run them live in scripts/vm/vm.ts.

export type Accel = 'kvm' | 'tcg';

export const QEMU = 'qemu-system-x86_64';

/**
 * Kernel command line of the test boot: the ext4 disk made from the tarball is the root, the
 * kernel and systemd log to the first serial port (the console log).
 */
export const KERNEL_CMDLINE = 'root=/dev/vda rw console=ttyS0';

export interface QemuSpec {
  accel: Accel;
  kernel: string;
  initrd: string;
  /** Raw ext4 image, the VM's /dev/vda. */
  disk: string;
  /** Host port on 127.0.0.1 forwarded to the guest's port 22. */
  sshPort: number;
  /** File that receives ttyS0 (kernel and systemd console). */
  consoleLog: string;
  pidFile: string;
  memMiB?: number;
  cpus?: number;
  append?: string;
}

/**
 * The test VM. Direct kernel boot of the image's own kernel and initrd, virtio disk and NIC,
 * user-mode networking with only ssh forwarded, and only to 127.0.0.1.
 * - `-nodefaults`: no VGA, floppy, CD-ROM or parallel port to probe (each costs seconds under TCG).
 * - two serial ports: ttyS0 is the console log; ttyS1 exists because metal-stack machines have it
 *   (serial-over-LAN) and the images run a getty on it, which fails without the device.
 * - i6300esb: a watchdog device for the image's watchdog daemon.
 * - virtio-rng: entropy for the boot-time ssh host key generation.
 * - cache=unsafe: the disk is a throw-away copy; flushes are not worth waiting for.
 */
export function qemuArgv(s: QemuSpec): string[] {
  return [
    QEMU,
    '-name', 'metal-vmtest',
    '-no-user-config', '-nodefaults',
    '-machine', 'q35',
    '-accel', s.accel,
    ...(s.accel === 'kvm' ? ['-cpu', 'host'] : []),
    '-m', String(s.memMiB ?? 2048),
    '-smp', String(s.cpus ?? 2),
    '-kernel', s.kernel,
    '-initrd', s.initrd,
    '-append', s.append ?? KERNEL_CMDLINE,
    '-drive', `file=${s.disk},if=virtio,format=raw,cache=unsafe`,
    '-netdev', `user,id=n0,hostfwd=tcp:127.0.0.1:${s.sshPort}-:22`,
    '-device', 'virtio-net-pci,netdev=n0',
    '-device', 'i6300esb',
    '-object', 'rng-random,id=rng0,filename=/dev/urandom',
    '-device', 'virtio-rng-pci,rng=rng0',
    '-serial', `file:${s.consoleLog}`,
    '-serial', 'null',
    '-display', 'none',
    '-no-reboot',
    '-pidfile', s.pidFile,
  ];
}

/** Command line of the probe kernel boot: no initrd and no root disk, so it must end in a panic. */
export const PROBE_CMDLINE = 'console=ttyS0 panic=-1 root=/dev/nonexistent';

/**
 * The KVM probe: boot the image's kernel under KVM with no root disk. A working KVM reaches the
 * "Kernel panic" in a second or two and, with panic=-1 and -no-reboot, QEMU exits 0. A KVM that
 * hangs guest kernels (as /dev/kvm does in some sandboxes) prints nothing and is killed by the
 * caller's timeout. A few real-mode instructions would not do: such a /dev/kvm runs those fine.
 */
export function probeArgv(accel: Accel, kernel: string, consoleLog: string): string[] {
  return [
    QEMU,
    '-no-user-config', '-nodefaults',
    '-machine', 'q35',
    '-accel', accel,
    ...(accel === 'kvm' ? ['-cpu', 'host'] : []),
    '-m', '256',
    '-kernel', kernel,
    '-append', PROBE_CMDLINE,
    '-serial', `file:${consoleLog}`,
    '-display', 'none',
    '-no-reboot',
  ];
}

/** Did the probe's console show the kernel running all the way to its deliberate panic? */
export function probeReachedPanic(consoleText: string): boolean {
  return /Kernel panic - not syncing/.test(consoleText);
}

export interface KernelFiles {
  version: string;
  /** Paths relative to the image root, e.g. boot/vmlinuz-6.1.0-56-amd64. */
  kernel: string;
  initrd: string;
}

/**
 * Pure: pick the kernel and initrd from the names in the image's /boot. `initrdPattern` is the
 * image contract's initrd name with {k} for the kernel version. Returns an error text (for a
 * one-line message) when there is not exactly one kernel with its initrd.
 */
export function findKernel(bootEntries: readonly string[], initrdPattern: string): KernelFiles | { error: string } {
  const versions = bootEntries
    .map((e) => /^vmlinuz-(.+)$/.exec(e)?.[1])
    .filter((v): v is string => v !== undefined)
    .sort();
  if (versions.length === 0) return { error: 'has no kernel (/boot/vmlinuz-* is missing)' };
  if (versions.length > 1) return { error: `has ${versions.length} kernels (${versions.map((v) => `vmlinuz-${v}`).join(', ')}), the contract allows one` };
  const version = versions[0]!;
  const initrd = initrdPattern.replaceAll('{k}', version);
  if (!bootEntries.includes(initrd)) return { error: `has /boot/vmlinuz-${version} but no /boot/${initrd}` };
  return { version, kernel: `boot/vmlinuz-${version}`, initrd: `boot/${initrd}` };
}

const MiB = 1024 * 1024;

/** Pure: size of the test disk for a tree of `usedBytes`: half again as much plus 512 MiB, in MiB. */
export function diskSizeMiB(usedBytes: number): number {
  return Math.ceil((usedBytes * 1.5) / MiB) + 512;
}

/** Pure: the mke2fs command that makes the test disk from a directory (no loop mount). */
export function mke2fsArgv(root: string, disk: string, sizeMiB: number): string[] {
  return ['mke2fs', '-q', '-F', '-t', 'ext4', '-L', 'root', '-d', root, '-E', 'root_owner=0:0', disk, `${sizeMiB}M`];
}

/** Pure: unpack an img.tar.lz4 as the build made it (numeric owners, modes, xattrs such as file capabilities). */
export function unpackArgv(artifact: string, root: string): string[] {
  return ['tar', '--extract', '--use-compress-program=lz4', '--numeric-owner', '--same-permissions', '--xattrs', '--xattrs-include=*', '--directory', root, '--file', artifact];
}

/** Pure: the last `n` lines of a serial console log, without terminal escapes and carriage returns. */
export function consoleTail(text: string, n = 50): string[] {
  const clean = text
    .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
    .replace(/\r+\n/g, '\n')
    .split('\n')
    .map((l) => l.replace(/^.*\r/, '').trimEnd());
  while (clean.length > 0 && clean[clean.length - 1] === '') clean.pop();
  return clean.slice(-n);
}
