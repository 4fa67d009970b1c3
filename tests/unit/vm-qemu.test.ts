// Pure parts of the VM test: QEMU/mke2fs/tar command lines, kernel lookup, disk size, console
// tail, and the accelerator decision.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { consoleTail, diskSizeMiB, findKernel, mke2fsArgv, probeArgv, probeReachedPanic, qemuArgv, unpackArgv } from '../../scripts/vm/qemu.ts';
import { parseAccelSetting, postProbeDecision, preProbeDecision, virtFlag } from '../../scripts/vm/accel.ts';
import { UsageError } from '../../scripts/lib/errors.ts';
import { sweepStale } from '../../scripts/vm/vm.ts';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const argv = suite('qemu argv');

argv('the test VM under TCG: direct kernel boot, virtio disk, ssh forwarded on 127.0.0.1 only', () => {
  assert.equal(
    qemuArgv({ accel: 'tcg', kernel: '/s/vmlinuz', initrd: '/s/initrd', disk: '/s/disk.img', sshPort: 40123, consoleLog: '/r/console.log', pidFile: '/s/qemu.pid' }),
    [
      'qemu-system-x86_64', '-name', 'metal-vmtest', '-no-user-config', '-nodefaults', '-machine', 'q35', '-accel', 'tcg',
      '-m', '2048', '-smp', '2', '-kernel', '/s/vmlinuz', '-initrd', '/s/initrd', '-append', 'root=/dev/vda rw console=ttyS0',
      '-drive', 'file=/s/disk.img,if=virtio,format=raw,cache=unsafe',
      '-netdev', 'user,id=n0,hostfwd=tcp:127.0.0.1:40123-:22', '-device', 'virtio-net-pci,netdev=n0',
      '-device', 'i6300esb', '-object', 'rng-random,id=rng0,filename=/dev/urandom', '-device', 'virtio-rng-pci,rng=rng0',
      '-serial', 'file:/r/console.log', '-serial', 'null', '-display', 'none', '-no-reboot', '-pidfile', '/s/qemu.pid',
    ],
  );
});

argv('KVM adds -cpu host; memory, cpus and the command line can be set', () => {
  const a = qemuArgv({ accel: 'kvm', kernel: 'k', initrd: 'i', disk: 'd', sshPort: 2222, consoleLog: 'c', pidFile: 'p', memMiB: 4096, cpus: 4, append: 'root=/dev/vda ro' });
  assert.equal(a.slice(7, 17), ['-accel', 'kvm', '-cpu', 'host', '-m', '4096', '-smp', '4', '-kernel', 'k']);
  assert.is(a[a.indexOf('-append') + 1], 'root=/dev/vda ro');
  assert.ok(!qemuArgv({ accel: 'tcg', kernel: 'k', initrd: 'i', disk: 'd', sshPort: 1, consoleLog: 'c', pidFile: 'p' }).includes('-cpu'));
});

argv('the KVM probe boots the kernel alone, to a deliberate panic', () => {
  assert.equal(probeArgv('kvm', '/s/vmlinuz', '/s/probe.log'), [
    'qemu-system-x86_64', '-no-user-config', '-nodefaults', '-machine', 'q35', '-accel', 'kvm', '-cpu', 'host', '-m', '256',
    '-kernel', '/s/vmlinuz', '-append', 'console=ttyS0 panic=-1 root=/dev/nonexistent', '-serial', 'file:/s/probe.log',
    '-display', 'none', '-no-reboot',
  ]);
  assert.ok(probeReachedPanic('[    2.54] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\n'));
  assert.not.ok(probeReachedPanic(''));
  assert.not.ok(probeReachedPanic('[    0.000000] Linux version 6.1.0-56-amd64\n'));
});

argv('mke2fs makes the disk from the directory; tar keeps numeric owners and xattrs', () => {
  assert.equal(mke2fsArgv('/s/root', '/s/disk.img', 2100), ['mke2fs', '-q', '-F', '-t', 'ext4', '-L', 'root', '-d', '/s/root', '-E', 'root_owner=0:0', '/s/disk.img', '2100M']);
  assert.equal(unpackArgv('/i/img.tar.lz4', '/s/root'), [
    'tar', '--extract', '--use-compress-program=lz4', '--numeric-owner', '--same-permissions', '--xattrs', '--xattrs-include=*', '--directory', '/s/root', '--file', '/i/img.tar.lz4',
  ]);
});

argv('disk size: half again the used bytes plus 512 MiB', () => {
  assert.is(diskSizeMiB(0), 512);
  assert.is(diskSizeMiB(1024 * 1024 * 1024), 1536 + 512);
  assert.is(diskSizeMiB(952_725_504), 1363 + 512); // 908.6 MiB * 1.5 = 1362.9 → 1363
  assert.is(diskSizeMiB(1), 513);
});
argv.run();

const kernel = suite('kernel lookup');

kernel('one kernel and the initrd the contract names', () => {
  const boot = ['System.map-6.1.0-56-amd64', 'config-6.1.0-56-amd64', 'grub', 'initrd.img-6.1.0-56-amd64', 'vmlinuz-6.1.0-56-amd64'];
  assert.equal(findKernel(boot, 'initrd.img-{k}'), { version: '6.1.0-56-amd64', kernel: 'boot/vmlinuz-6.1.0-56-amd64', initrd: 'boot/initrd.img-6.1.0-56-amd64' });
  assert.equal(findKernel(['vmlinuz-5.14.0-1.el9.x86_64', 'initramfs-5.14.0-1.el9.x86_64.img'], 'initramfs-{k}.img'), {
    version: '5.14.0-1.el9.x86_64', kernel: 'boot/vmlinuz-5.14.0-1.el9.x86_64', initrd: 'boot/initramfs-5.14.0-1.el9.x86_64.img',
  });
});

kernel('no kernel, two kernels, or no initrd: one-line causes', () => {
  assert.equal(findKernel([], 'initrd.img-{k}'), { error: 'has no kernel (/boot/vmlinuz-* is missing)' });
  assert.equal(findKernel(['grub', 'initrd.img-6.1'], 'initrd.img-{k}'), { error: 'has no kernel (/boot/vmlinuz-* is missing)' });
  assert.equal(findKernel(['vmlinuz-6.1.0-9-amd64', 'vmlinuz-6.1.0-10-amd64', 'initrd.img-6.1.0-9-amd64'], 'initrd.img-{k}'), {
    error: 'has 2 kernels (vmlinuz-6.1.0-10-amd64, vmlinuz-6.1.0-9-amd64), the contract allows one',
  });
  assert.equal(findKernel(['vmlinuz-6.1.0-56-amd64', 'initramfs-6.1.0-56-amd64.img'], 'initrd.img-{k}'), { error: 'has /boot/vmlinuz-6.1.0-56-amd64 but no /boot/initrd.img-6.1.0-56-amd64' });
});
kernel.run();

const tail = suite('console tail');

tail('last lines, escapes and carriage returns removed, trailing blank lines dropped', () => {
  const log = [
    '[    0.0] Linux version 6.1.0',
    '[\x1b[0;32m  OK  \x1b[0m] Started \x1b[0;1;39mssh.service\x1b[0m - OpenBSD Secure Shell server.',
    '\x1b[K[\x1b[0;1;31m*     \x1b[0m] Job frr.service/start running (12s / 2min 7s)\r\x1b[K[  OK  ] Started frr.service - FRRouting.',
    'Debian GNU/Linux 12 localhost ttyS0\r',
    '',
    'localhost login: ',
    '',
    '',
  ].join('\n');
  assert.equal(consoleTail(log, 4), ['[  OK  ] Started frr.service - FRRouting.', 'Debian GNU/Linux 12 localhost ttyS0', '', 'localhost login:']);
  assert.equal(consoleTail(log, 50).length, 6);
  assert.equal(consoleTail('', 50), []);
});
tail.run();

const accel = suite('accelerator');

accel('METAL_ACCEL: auto (default), kvm, tcg; anything else is a usage error', () => {
  assert.is(parseAccelSetting(undefined), 'auto');
  assert.is(parseAccelSetting(''), 'auto');
  assert.is(parseAccelSetting('auto'), 'auto');
  assert.is(parseAccelSetting('KVM'), 'kvm');
  assert.is(parseAccelSetting('tcg'), 'tcg');
  try {
    parseAccelSetting('hvf');
    assert.unreachable('hvf accepted');
  } catch (e) {
    assert.instance(e, UsageError);
    assert.is((e as Error).message, 'METAL_ACCEL=hvf is not one of auto, kvm, tcg');
  }
});

accel('the virtualisation flag comes from the flags line only', () => {
  assert.is(virtFlag('processor\t: 0\nflags\t\t: fpu vme de pse tsc msr pae mce cx8 vmx smx est\nbugs\t\t: spectre_v1\n'), 'vmx');
  assert.is(virtFlag('flags\t\t: fpu vme svm extapic cr8_legacy\n'), 'svm');
  assert.is(virtFlag('flags\t\t: fpu vme de pse tsc msr hypervisor lahf_lm\nmodel name\t: vmx-like svm cpu\n'), null);
  assert.is(virtFlag('flags\t\t: fpu vmxnet\n'), null);
  assert.is(virtFlag(''), null);
});

accel('no probe when the answer is already known', () => {
  assert.equal(preProbeDecision('tcg', 'usable', 'vmx'), { accel: 'tcg', reason: 'METAL_ACCEL=tcg' });
  assert.equal(preProbeDecision('kvm', 'missing', null), { accel: 'kvm', reason: 'METAL_ACCEL=kvm, not probed' });
  assert.equal(preProbeDecision('auto', 'missing', 'vmx'), { accel: 'tcg', reason: 'no /dev/kvm' });
  assert.equal(preProbeDecision('auto', 'no-access', 'svm'), { accel: 'tcg', reason: '/dev/kvm is not read-writable for this user' });
  assert.equal(preProbeDecision('auto', 'usable', null), { accel: 'tcg', reason: 'the CPU has no vmx/svm flag' });
  assert.is(preProbeDecision('auto', 'usable', 'vmx'), 'probe');
});

accel('after the probe: KVM only when the kernel really ran', () => {
  assert.equal(postProbeDecision('vmx', { ok: true, seconds: 1.23, timeoutSec: 25, exited: true }), { accel: 'kvm', reason: 'vmx flag, the probe kernel ran under KVM in 1.2s' });
  assert.equal(postProbeDecision('vmx', { ok: false, seconds: 25, timeoutSec: 25, exited: false }), {
    accel: 'tcg', reason: 'vmx flag, but the probe kernel under KVM did not reach its test panic within 25s',
  });
  assert.equal(postProbeDecision('svm', { ok: false, seconds: 0.2, timeoutSec: 25, exited: true }), { accel: 'tcg', reason: 'svm flag, but the probe kernel under KVM failed' });
});
accel.run();

const stale = suite('stale scratch dirs');

stale('dirs of runs that died are removed, those of live runs kept', () => {
  const vmDir = mkdtempSync(join(tmpdir(), 'vm-sweep-'));
  try {
    for (const [name, owner] of [['dead', '2147483646'], ['live', String(process.pid)], ['no-owner', '']] as const) {
      mkdirSync(join(vmDir, name));
      if (owner) writeFileSync(join(vmDir, name, 'owner'), `${owner}\n`);
      writeFileSync(join(vmDir, name, 'disk.img'), 'x');
    }
    assert.equal(sweepStale(vmDir).sort(), [join(vmDir, 'dead'), join(vmDir, 'no-owner')]);
    assert.equal(readdirSync(vmDir), ['live']);
    assert.equal(sweepStale(join(vmDir, 'missing')), []);
  } finally {
    rmSync(vmDir, { recursive: true, force: true });
  }
});
stale.run();
