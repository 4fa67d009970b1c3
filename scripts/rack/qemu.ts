// Pure: the QEMU command line of the rack's machine. One q35 VM with OVMF (its code read-only,
// its variables a per-run copy that persists from the install into the cold boot), the raw disk,
// a management NIC on QEMU's user network and the two lan NICs on tap devices that the test moves
// into the leaves' namespaces.
//   install run:  OVMF + -kernel/-initrd (the hammer VM, an EFI boot with efivars) → kexec
//   cold boot:    OVMF + the disk only → \EFI\BOOT\BOOTX64.EFI → GRUB → kernel
import { QEMU, type Accel } from '../vm/qemu.ts';

/** Where QEMU's user network forwards the hammer's HTTP requests (to the host's loopback server). */
export const HOST_SERVICE = { ip: '10.0.2.100', port: 80 } as const;
/** The management NIC's static address in QEMU's user network. */
export const MGMT_IP = '10.0.2.15/24';

/** Debian's ovmf package: 4 MiB firmware volumes, no Secure Boot (the directory: METAL_OVMF_DIR). */
export const OVMF_DIR = '/usr/share/OVMF';
export function ovmfFiles(dir = OVMF_DIR): { code: string; vars: string } {
  return { code: `${dir}/OVMF_CODE_4M.fd`, vars: `${dir}/OVMF_VARS_4M.fd` };
}

export interface RackNic {
  mac: string;
  /** tap device on the host; absent for the management NIC (user network). */
  tap?: string;
}

export interface RackQemuSpec {
  accel: Accel;
  ovmfCode: string;
  /** This run's copy of the OVMF variable store. */
  ovmfVars: string;
  disk: string;
  /** The hammer VM (install run only). */
  kernel?: { kernel: string; initrd: string; append: string };
  mgmtMac: string;
  sshPort: number;
  /** Host loopback port of the provisioning server (guestfwd target). */
  serverPort: number;
  lan: readonly RackNic[];
  /** Files for ttyS0 (firmware) and ttyS1 (the machine's console, console=ttyS1 in install.yaml). */
  serial: readonly [string, string];
  pidFile: string;
  memMiB?: number;
  cpus?: number;
  /** CPU model under TCG (QEMU's default when unset); KVM always uses the host's. */
  cpu?: string;
}

/**
 * The machine. User network with restrict=on: the guest reaches nothing on the host or beyond,
 * except the hostfwd'ed ssh port (127.0.0.1 only) and the provisioning server through guestfwd.
 */
export function rackQemuArgv(s: RackQemuSpec): string[] {
  const user = [
    'user', 'id=mgmt', 'restrict=on', 'net=10.0.2.0/24',
    `hostfwd=tcp:127.0.0.1:${s.sshPort}-:22`,
    `guestfwd=tcp:${HOST_SERVICE.ip}:${HOST_SERVICE.port}-cmd:socat - TCP:127.0.0.1:${s.serverPort}`,
  ].join(',');
  const argv = [
    QEMU,
    '-name', 'metal-rack',
    '-no-user-config', '-nodefaults',
    '-machine', 'q35',
    '-accel', s.accel,
    ...(s.accel === 'kvm' ? ['-cpu', 'host'] : s.cpu ? ['-cpu', s.cpu] : []),
    '-m', String(s.memMiB ?? 3072),
    '-smp', String(s.cpus ?? 2),
    '-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${s.ovmfCode}`,
    '-drive', `if=pflash,format=raw,unit=1,file=${s.ovmfVars}`,
    ...(s.kernel ? ['-kernel', s.kernel.kernel, '-initrd', s.kernel.initrd, '-append', s.kernel.append] : []),
    '-drive', `file=${s.disk},if=virtio,format=raw,cache=unsafe`,
    '-netdev', user,
    '-device', `virtio-net-pci,netdev=mgmt,mac=${s.mgmtMac}`,
  ];
  s.lan.forEach((n, i) => {
    argv.push('-netdev', `tap,id=lan${i},ifname=${n.tap},script=no,downscript=no`, '-device', `virtio-net-pci,netdev=lan${i},mac=${n.mac}`);
  });
  argv.push(
    '-device', 'i6300esb',
    '-object', 'rng-random,id=rng0,filename=/dev/urandom',
    '-device', 'virtio-rng-pci,rng=rng0',
    '-serial', `file:${s.serial[0]}`,
    '-serial', `file:${s.serial[1]}`,
    '-display', 'none',
    '-no-reboot',
    '-pidfile', s.pidFile,
  );
  return argv;
}

/** Pure: the hammer VM's kernel command line (console as on a metal-stack server). */
export function hammerCmdline(mgmtMac: string, console = 'ttyS1,115200n8'): string {
  return [
    `console=${console}`,
    `rack.job=http://${HOST_SERVICE.ip}:${HOST_SERVICE.port}/job.json`,
    `rack.mac=${mgmtMac}`,
    `rack.ip=${MGMT_IP}`,
    'panic=-1',
  ].join(' ');
}
