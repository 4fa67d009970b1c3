// The contract lint, rule by rule: every test starts from an image that lints clean, breaks one
// thing with a crafted tar entry, and asserts the exact finding. The last tests run the streaming
// path end to end through the real lz4 CLI.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { mergeUnits, parseImageDef, type Contract, type ImageDef } from '../../scripts/lib/image-def.ts';
import { run } from '../../scripts/lib/shell.ts';
import { captureFile, checkEntries, checkMd5File, describeCapability, type Finding } from '../../scripts/lint/rules.ts';
import { TarReader, TarFormatError, parsePax, type TarEntry } from '../../scripts/lint/tar-stream.ts';
import { formatReport, lintArtifact, type LintReport } from '../../scripts/lint/lint.ts';
import { goodImage, tarball, header, KERNEL, type FixtureEntry } from './tar-fixture.ts';

const contract = (over: Partial<Contract> = {}): Contract => ({
  initrd: 'initrd.img-{k}',
  sudo_group: 'sudo',
  size_budget_mib: 100,
  required_commands: ['bash', 'grub-install', 'ignition|cloud-init'],
  ...over,
});

/** Parse a tar held in memory, feeding it in awkward chunk sizes to exercise the header reassembly. */
function read(tar: Buffer, capture?: (p: string, n: number) => boolean, chunk = 333): TarEntry[] {
  const out: TarEntry[] = [];
  const r = new TarReader({ onEntry: (e) => out.push(e), capture });
  for (let i = 0; i < tar.length; i += chunk) r.push(tar.subarray(i, i + chunk));
  r.end();
  return out;
}

function lint(entries: FixtureEntry[], over: Partial<Contract> = {}, tarBytes = 4096): Finding[] {
  return checkEntries(read(tarball(entries), captureFile), contract(over), tarBytes).findings;
}

const err = (rule: Finding['rule'], path: string, message: string): Finding => ({ severity: 'error', rule, path, message });
const warn = (rule: Finding['rule'], path: string, message: string): Finding => ({ severity: 'warning', rule, path, message });

/** goodImage() with entries replaced (same path), removed (null) or appended. */
function edit(changes: Record<string, FixtureEntry | null>, extra: FixtureEntry[] = []): FixtureEntry[] {
  const out: FixtureEntry[] = [];
  for (const e of goodImage()) {
    if (!(e.path in changes)) out.push(e);
    else if (changes[e.path]) out.push(changes[e.path]!);
  }
  return [...out, ...extra];
}

// ---- the baseline -------------------------------------------------------------------------------

test('the crafted good image lints clean', () => {
  assert.equal(lint(goodImage()), []);
});

// ---- tar reader -----------------------------------------------------------------------------------

test('reader: raw paths and types, ustar prefix, PAX path and xattrs with binary values, GNU long names', () => {
  const long = `usr/share/${'x'.repeat(120)}/file`;
  const cap = Buffer.from([0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]);
  const tar = Buffer.concat([
    header({ path: 'file', prefix: 'usr/lib/deep', type: '0', mode: 0o4755, uid: 0, gid: 0, size: 0, linkpath: '', devmajor: 0, devminor: 0, gnu: false }),
    tarball([
      { path: '/abs', body: 'x' },
      { path: 'p', pax: { path: long, 'SCHILY.xattr.security.capability': cap, uid: '1234' }, body: 'abc' },
      { path: `var/${'y'.repeat(150)}`, gnuLongName: true, body: 'hello' },
      { path: 'weird', type: '7', body: 'contiguous' },
      { path: 'hl', type: '1', linkpath: 'abs', sizeField: 700 },
      { path: 'after', body: 'ok' },
    ]),
  ]);
  const es = read(tar);
  assert.equal(es.map((e) => [e.index, e.path, e.type, e.size]), [
    [0, 'usr/lib/deep/file', '0', 0],
    [1, '/abs', '0', 1],
    [2, long, '0', 3],
    [3, `var/${'y'.repeat(150)}`, '0', 5],
    [4, 'weird', '7', 10],
    [5, 'hl', '1', 0],
    [6, 'after', '0', 2],
  ]);
  assert.is(es[0]!.mode, 0o4755);
  assert.is(es[2]!.uid, 1234);
  assert.equal(Object.keys(es[2]!.xattrs), ['security.capability']);
  assert.ok(es[2]!.xattrs['security.capability']!.equals(cap), 'binary xattr value (it contains \\n) survives');
});

test('reader: captures only the bodies asked for, whatever the chunking', () => {
  const tar = tarball([{ path: 'etc/passwd', body: 'root:x:0:0::/root:/bin/sh\n' }, { path: 'etc/big', body: 'z'.repeat(2000) }]);
  for (const chunk of [1, 7, 512, 100000]) {
    const es = read(tar, (p) => p === 'etc/passwd', chunk);
    assert.is(es[0]!.body?.toString(), 'root:x:0:0::/root:/bin/sh\n', `chunk ${chunk}`);
    assert.is(es[1]!.body, undefined);
    assert.is(es[1]!.size, 2000);
  }
});

test('reader: a corrupt header, a truncated tar and a lone zero block are format errors', () => {
  const tar = tarball([{ path: 'a', body: 'x' }]);
  const bad = Buffer.from(tar);
  bad[0] = 0x42;
  assert.throws(() => read(bad), (e: Error) => e instanceof TarFormatError && e.message === 'header checksum mismatch (not a tar, or corrupt) (at byte 0 of the tar)');
  assert.throws(() => read(tar.subarray(0, 700)), (e: Error) => e.message === 'the tar is truncated inside an entry (at byte 700 of the tar)');
  const lone = Buffer.concat([tarball([{ path: 'a' }], { end: false }), Buffer.alloc(512), tarball([{ path: 'b' }])]);
  assert.throws(() => read(lone), (e: Error) => e.message === 'a single zero block is followed by more entries (at byte 1024 of the tar)');
  // no end marker at all is accepted, like Go's archive/tar does
  assert.is(read(tarball([{ path: 'a' }], { end: false })).length, 1);
});

test('reader: PAX records are length-prefixed, not line-split', () => {
  assert.equal(Object.keys(parsePax(Buffer.from('12 path=a\nb\n12 uid=1000\n'))), ['path', 'uid']);
  assert.is(parsePax(Buffer.from('12 path=a\nb\n'))['path']!.toString(), 'a\nb');
  assert.throws(() => parsePax(Buffer.from('99 path=a\n')), /malformed PAX record/);
});

// ---- errors: what makes the metal-hammer's untar or installer fail --------------------------------

test('entry-type: contiguous, sparse and volume entries', () => {
  assert.equal(lint(edit({}, [{ path: 'usr/bin/c', type: '7', body: 'x' }])), [
    err('entry-type', 'usr/bin/c', "entry type '7' (contiguous file) is rejected by the metal-hammer's untar (it accepts dir, file, symlink, hardlink, char, block, fifo)"),
  ]);
  assert.equal(lint(edit({}, [{ path: 'var/sparse', type: 'S', gnu: true, body: 'y' }])), [
    err('entry-type', 'var/sparse', "entry type 'S' (GNU sparse file) is rejected by the metal-hammer's untar (it accepts dir, file, symlink, hardlink, char, block, fifo)"),
  ]);
  assert.equal(lint(edit({}, [{ path: 'label', type: 'V', gnu: true }])), [
    err('entry-type', 'label', "entry type 'V' (GNU volume label) is rejected by the metal-hammer's untar (it accepts dir, file, symlink, hardlink, char, block, fifo)"),
  ]);
});

test('entry-type: a PAX global header is accepted (the untar skips it)', () => {
  assert.equal(lint([{ path: 'pax_global_header', type: 'g', body: '23 comment=from git ar\n' }, ...goodImage()]), []);
});

test('unsafe-path: absolute and .. paths', () => {
  assert.equal(lint(edit({}, [{ path: '/etc/motd', body: 'hi' }])), [err('unsafe-path', '/etc/motd', 'absolute path: entries must be relative to the image root')]);
  assert.equal(lint(edit({}, [{ path: 'usr/../../etc/shadow', body: 'x' }])), [err('unsafe-path', 'usr/../../etc/shadow', "path contains '..': entries must stay inside the image root")]);
});

test('hardlink: target later in the tar, or missing', () => {
  const later = [...goodImage(), { path: 'usr/bin/b', type: '1', linkpath: 'usr/bin/a' }, { path: 'usr/bin/a', mode: 0o755, body: 'x' }];
  assert.equal(lint(later), [err('hardlink', '/usr/bin/b', 'hardlink to /usr/bin/a, which comes later in the tar: the untar needs the target first')]);
  assert.equal(lint(edit({}, [{ path: 'usr/bin/b', type: '1', linkpath: 'usr/bin/nothere' }])), [err('hardlink', '/usr/bin/b', 'hardlink to /usr/bin/nothere, which is not in the tar')]);
  // backwards is fine, also through a symlinked directory
  assert.equal(lint(edit({}, [{ path: 'usr/bin/sh2', type: '1', linkpath: 'bin/bash' }])), []);
});

test('collision: a symlink over an existing path, a file through a symlink, a dir over a file', () => {
  assert.equal(lint(edit({}, [{ path: 'etc/passwd', type: '2', linkpath: '/dev/null' }])), [
    err('collision', '/etc/passwd', 'appears twice (file then symlink): the untar cannot create the second one over the first'),
  ]);
  assert.equal(lint(edit({}, [{ path: 'sbin', body: 'x' }])), [err('collision', '/sbin', 'appears twice (symlink then file): the second write goes through the symlink to usr/sbin')]);
  assert.equal(lint(edit({}, [{ path: 'install.sh/' }])), [err('collision', '/install.sh', 'appears twice (file then directory): the untar cannot create the second one over the first')]);
  // the same directory twice is harmless
  assert.equal(lint(edit({}, [{ path: 'usr/bin/' }])), []);
});

test('kernel: no System.map, two System.maps', () => {
  assert.equal(lint(edit({ [`boot/System.map-${KERNEL}`]: null })), [
    err('kernel', '/boot', 'no /boot/System.map-<k>: the installer finds the kernel version from exactly one System.map (install the kernel package)'),
  ]);
  assert.equal(lint(edit({}, [{ path: 'boot/System.map-6.1.0-27-amd64', body: 'x' }])), [
    err('kernel', '/boot', `2 kernels (/boot/System.map-${KERNEL}, /boot/System.map-6.1.0-27-amd64): the installer needs exactly one /boot/System.map-<k>`),
  ]);
});

test('kernel: vmlinuz, initrd (named by the contract) and modules of that kernel', () => {
  assert.equal(lint(edit({ [`boot/vmlinuz-${KERNEL}`]: null })), [err('kernel', `/boot/vmlinuz-${KERNEL}`, `missing: the hammer kexecs kernel ${KERNEL} with it`)]);
  assert.equal(lint(edit({ [`boot/initrd.img-${KERNEL}`]: null })), [err('kernel', `/boot/initrd.img-${KERNEL}`, `missing: the hammer kexecs kernel ${KERNEL} with it`)]);
  // almalinux naming comes from the contract, not the OS name
  const alma = { initrd: 'initramfs-{k}.img' };
  assert.equal(lint(goodImage(), alma), [err('kernel', `/boot/initramfs-${KERNEL}.img`, `missing: the hammer kexecs kernel ${KERNEL} with it`)]);
  assert.equal(lint(edit({ [`boot/initrd.img-${KERNEL}`]: { path: `boot/initramfs-${KERNEL}.img`, body: 'x' } }), alma), []);
  // modules are found through the lib -> usr/lib symlink
  assert.equal(lint(edit({ [`usr/lib/modules/${KERNEL}/`]: null })), [err('kernel', `/lib/modules/${KERNEL}`, `resolves to /usr/lib/modules/${KERNEL}, which is missing: kernel ${KERNEL} cannot load its modules`)]);
  // a kernel that is a symlink to a file is fine; one to nowhere is not
  assert.equal(lint(edit({ [`boot/vmlinuz-${KERNEL}`]: { path: `boot/vmlinuz-${KERNEL}`, type: '2', linkpath: 'nope' } })), [
    err('kernel', `/boot/vmlinuz-${KERNEL}`, `resolves to /boot/nope, which is missing: the hammer kexecs kernel ${KERNEL} with it`),
  ]);
});

test('init: /sbin/init resolved through sbin -> usr/sbin -> ../lib/systemd/systemd', () => {
  assert.equal(lint(edit({ 'usr/lib/systemd/systemd': null })), [
    err('init', '/sbin/init', 'resolves to /usr/lib/systemd/systemd, which is missing: the kernel command line boots init=/sbin/init (systemd-sysv provides it)'),
  ]);
  assert.equal(lint(edit({ 'usr/lib/systemd/systemd': { path: 'usr/lib/systemd/systemd', mode: 0o644, body: 'ELF' } })), [
    err('init', '/sbin/init', 'is a file (via /usr/lib/systemd/systemd) with mode 0644, not an executable file: the kernel command line boots init=/sbin/init (systemd-sysv provides it)'),
  ]);
});

test('installer: neither /install-go nor /install.sh', () => {
  assert.equal(lint(edit({ 'install.sh': null })), [err('installer', '/install.sh', 'neither /install-go nor /install.sh is an executable file: the metal-hammer has nothing to run')]);
  assert.equal(lint(edit({ 'install.sh': { path: 'install-go', mode: 0o755, body: 'ELF' } })), []);
});

test('command: required commands on PATH, alternatives, executability', () => {
  const missing = (name: string): Finding => err('command', name, 'not found as an executable in /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin (the installer runs it; contract.required_commands)');
  assert.equal(lint(edit({ 'usr/sbin/grub-install': null })), [missing('grub-install')]);
  assert.equal(lint(edit({ 'usr/sbin/grub-install': { path: 'usr/sbin/grub-install', mode: 0o644, body: 'x' } })), [missing('grub-install')]);
  assert.equal(lint(edit({ 'usr/bin/cloud-init': null })), [missing('ignition or cloud-init')]);
  assert.equal(lint(edit({ 'usr/bin/cloud-init': { path: 'usr/local/bin/ignition', mode: 0o755, body: 'ELF' } })), []);
  // the list is data: a contract without grub-install does not ask for it
  assert.equal(lint(edit({ 'usr/sbin/grub-install': null }), { required_commands: ['bash'] }), []);
});

test('users: uid 1000 taken, sudo group missing, wheel honoured', () => {
  const passwd = 'root:x:0:0:root:/root:/bin/bash\nubuntu:x:1000:1000:Ubuntu:/home/ubuntu:/bin/bash\n';
  assert.equal(lint(edit({ 'etc/passwd': { path: 'etc/passwd', body: passwd } })), [
    err('users', '/etc/passwd', 'uid 1000 is taken by user "ubuntu": the installer creates user metal with uid 1000 (remove that user in the Dockerfile)'),
  ]);
  assert.equal(lint(edit({ 'etc/group': { path: 'etc/group', body: 'root:x:0:\nwheel:x:10:\n' } })), [
    err('users', '/etc/group', 'no group "sudo": the installer makes it user metal\'s primary group (contract.sudo_group)'),
  ]);
  assert.equal(lint(edit({ 'etc/group': { path: 'etc/group', body: 'root:x:0:\nwheel:x:10:\n' } }), { sudo_group: 'wheel' }), []);
  assert.equal(lint(edit({ 'etc/passwd': null })), [err('users', '/etc/passwd', 'missing: the installer adds user metal to it')]);
});

test('frr: zebra=yes and bgpd=yes in /etc/frr/daemons', () => {
  assert.equal(lint(edit({ 'etc/frr/daemons': { path: 'etc/frr/daemons', body: 'bgpd=no\nospfd=no\n' } })), [
    err('frr', '/etc/frr/daemons', 'needs zebra=yes and bgpd=yes (zebra is not set, bgpd=no): machines speak BGP to the leaves'),
  ]);
  // the last assignment wins, as when the file is sourced
  assert.equal(lint(edit({ 'etc/frr/daemons': { path: 'etc/frr/daemons', body: 'zebra=yes\nbgpd=no\nbgpd="yes"\n' } })), []);
  assert.equal(lint(edit({ 'etc/frr/daemons': null })), [err('frr', '/etc/frr/daemons', 'missing: machines speak BGP to the leaves (install frr, set zebra=yes and bgpd=yes)')]);
});

test('md5: md5sum format exactly, and the hash of the compressed bytes', () => {
  const hex = 'd41d8cd98f00b204e9800998ecf8427e';
  assert.equal(checkMd5File(`${hex}  img.tar.lz4\n`, hex), []);
  assert.equal(checkMd5File(`${hex}\n`, hex), [err('md5', 'img.tar.lz4.md5', 'not an md5sum line ("<32 hex>  <name>\\n"): "d41d8cd98f00b204e9800998ecf8427e\\n"')]);
  assert.equal(checkMd5File(`${hex}  img.tar.lz4`, hex), [
    err('md5', 'img.tar.lz4.md5', `not exactly md5sum output: expected "${hex}  img.tar.lz4\\n", got "${hex}  img.tar.lz4"`),
  ]);
  assert.equal(checkMd5File(`${hex}  other.lz4\n`, hex), [err('md5', 'img.tar.lz4.md5', 'md5sum line names "other.lz4", expected "img.tar.lz4"')]);
  assert.equal(checkMd5File(`${'0'.repeat(32)}  img.tar.lz4\n`, hex), [err('md5', 'img.tar.lz4.md5', `says ${'0'.repeat(32)}, but img.tar.lz4 hashes to ${hex}`)]);
  assert.equal(checkMd5File(null, hex), [err('md5', 'img.tar.lz4.md5', 'missing: the metal-hammer downloads it next to img.tar.lz4')]);
});

test('size: over the budget is an error with the largest directories; within 10% a warning', () => {
  const MiB = 1024 * 1024;
  const big = [...goodImage(), { path: 'usr/lib/firmware/x.bin', body: 'x'.repeat(3000) }, { path: 'usr/share/doc/y', body: 'y'.repeat(2000) }];
  const r = checkEntries(read(tarball(big), captureFile), contract({ size_budget_mib: 10 }), 10 * MiB + 1);
  assert.equal(r.findings, [err('size', 'img.tar', '10.0 MiB uncompressed, over the budget of 10 MiB (contract.size_budget_mib)')]);
  assert.equal(r.topDirs.slice(0, 2), [{ dir: '/usr/lib/firmware', bytes: 3000 }, { dir: '/usr/share/doc', bytes: 2000 }]);
  assert.equal(lint(goodImage(), { size_budget_mib: 10 }, 9.5 * MiB), [warn('size', 'img.tar', '9.5 MiB uncompressed, within 10% of the budget of 10 MiB (contract.size_budget_mib)')]);
  assert.equal(lint(goodImage(), { size_budget_mib: 10 }, 8.9 * MiB), []);
});

test('size: directories are summed 3 levels deep', () => {
  const r = checkEntries(read(tarball([...goodImage(), { path: 'usr/lib/firmware/intel/a.bin', body: 'x'.repeat(5000) }, { path: 'usr/lib/firmware/b.bin', body: 'y'.repeat(1000) }, { path: 'top', body: 'zz' }]), captureFile), contract());
  assert.equal(r.topDirs.slice(0, 1), [{ dir: '/usr/lib/firmware', bytes: 6000 }]);
  assert.ok(r.topDirs.some((d) => d.dir === '/' && d.bytes === 2 + 12), 'root files (top, install.sh) count under /');
});

// ---- warnings: what the untar drops or changes --------------------------------------------------

test('owner: non-root uid or gid', () => {
  assert.equal(lint(edit({}, [{ path: 'var/log/btmp', gid: 43 }])), [warn('owner', '/var/log/btmp', 'owned by 0:43; it will be root:root')]);
});

test('dir-mode: directories not 0755', () => {
  assert.equal(lint(edit({}, [{ path: 'root/', mode: 0o700 }])), [warn('dir-mode', '/root', 'directory mode 0700; it will be 0755')]);
});

test('capability: ping relying on cap_net_raw is named', () => {
  // struct vfs_cap_data v2: magic 0x02000001 (effective), permitted bit 13 (net_raw)
  const cap = Buffer.alloc(20);
  cap.writeUInt32LE(0x02000001, 0);
  cap.writeUInt32LE(1 << 13, 4);
  assert.is(describeCapability(cap), 'cap_net_raw=ep');
  assert.equal(lint(edit({}, [{ path: 'usr/bin/ping', mode: 0o755, body: 'ELF', pax: { 'SCHILY.xattr.security.capability': cap } }])), [
    warn('capability', '/usr/bin/ping', 'file capability cap_net_raw=ep is dropped: the program loses it (set it in the installer, or run it as root)'),
  ]);
});

test('xattr: other extended attributes', () => {
  assert.equal(lint(edit({}, [{ path: 'etc/motd', body: 'hi', pax: { 'SCHILY.xattr.user.comment': 'greeting' } }])), [warn('xattr', '/etc/motd', 'extended attribute user.comment is dropped')]);
});

test('tmp: files under /tmp', () => {
  assert.equal(lint(edit({}, [{ path: 'tmp/', mode: 0o755 }, { path: 'tmp/build.log', body: 'x' }])), [
    warn('tmp', '/tmp/build.log', 'file under /tmp is hidden by the tmpfs the hammer mounts on /tmp, and cleaned at boot'),
  ]);
});

test('device: device nodes under /dev and fifos elsewhere', () => {
  assert.equal(lint(edit({}, [{ path: 'dev/' }, { path: 'dev/null', type: '3', devmajor: 1, devminor: 3, mode: 0o666 }, { path: 'run/initctl', type: '6', mode: 0o600 }])), [
    warn('device', '/dev/null', 'character device 1,3 is written as an empty regular file by the untar (at boot /dev is a devtmpfs; leave /dev empty in the image)'),
    warn('device', '/run/initctl', 'fifo is written as an empty regular file by the untar'),
  ]);
});

test('duplicate: a file twice (the later wins)', () => {
  assert.equal(lint(edit({}, [{ path: 'usr/bin/bash', mode: 0o755, body: 'ELF2' }])), [warn('duplicate', '/usr/bin/bash', 'appears twice (file then file): the later entry replaces the earlier')]);
});

test('container-marker: /.dockerenv', () => {
  assert.equal(lint(edit({}, [{ path: '.dockerenv', mode: 0o755 }])), [
    warn('container-marker', '/.dockerenv', 'container marker left by the build: systemd-detect-virt and similar checks take the machine for a container'),
  ]);
});

test('package-cache: .debs and apt lists left in a layer are errors; the empty dirs are not', () => {
  const msg = 'left by the build: apt downloads and indexes belong in the cache mounts of /var/cache/apt and /var/lib/apt/lists, not in a layer';
  assert.equal(lint(edit({}, [
    { path: 'var/cache/apt/archives/partial/', mode: 0o755 },
    { path: 'var/cache/apt/archives/lock', body: '' },
    { path: 'var/cache/apt/archives/jq_1.6-2.1_amd64.deb', body: '!<arch>' },
    { path: 'var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4', body: 'x' },
    { path: 'var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease', body: 'x' },
    { path: 'usr/share/doc/jq/example.deb', body: 'x' },
  ])).filter((f) => f.rule === 'package-cache'), [
    err('package-cache', '/var/cache/apt/archives/jq_1.6-2.1_amd64.deb', msg),
    err('package-cache', '/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4', msg),
    err('package-cache', '/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease', msg),
  ]);
});

test("host-identity: hostname, hosts and resolv.conf ship empty (the build host's must not)", () => {
  const msg = (p: string, n: number): string => `holds ${n} bytes: the image must ship it empty (the installer writes it per machine), or the build host's or the base layer's ${p} reaches every machine (export a container whose docker init layer is there, bootstrap the base without it)`;
  assert.equal(lint(edit({}, [{ path: 'etc/hostname', mode: 0o644, body: 'vm\n' }, { path: 'etc/resolv.conf', mode: 0o644, body: 'nameserver 10.255.255.53\n' }])), [
    err('host-identity', '/etc/hostname', msg('/etc/hostname', 3)),
    err('host-identity', '/etc/resolv.conf', msg('/etc/resolv.conf', 25)),
  ]);
  assert.equal(lint(edit({}, [{ path: 'etc/hostname', mode: 0o644, body: '' }, { path: 'etc/hosts', mode: 0o644, body: '' }])), [], 'empty, as docker\'s init layer leaves them');
  assert.equal(lint(edit({}, [{ path: 'etc/hostname', mode: 0o644, body: 'vm\n' }, { path: 'etc/hostname', mode: 0o644, body: '' }])).filter((f) => f.rule === 'host-identity'), [], 'the later (empty) entry is what lands');
});

test('findings come errors first, in rule order, then archive order', () => {
  const fs = lint(edit({ 'install.sh': null }, [{ path: 'root/', mode: 0o700 }, { path: 'x', type: '7' }, { path: 'a', uid: 5 }]));
  assert.equal(fs.map((f) => `${f.severity} ${f.rule} ${f.path}`), ['error entry-type x', 'error installer /install.sh', 'warning owner /a', 'warning dir-mode /root']);
});

// ---- report -------------------------------------------------------------------------------------

test('formatReport: verdict line, then findings grouped by rule, long groups cut', () => {
  const many = Array.from({ length: 7 }, (_, i): Finding => warn('owner', `/var/f${i}`, 'owned by 0:4; it will be root:root'));
  const report: LintReport = {
    image: 'debian-12', file: 'images/debian/12/img.tar.lz4', md5: '0'.repeat(32), errors: 2, warnings: 8, tarBytes: 1.5 * 1024 ** 3, compressedBytes: 600 * 1024 ** 2, entries: 61234, seconds: 3.14,
    findings: [
      err('size', 'img.tar', '1536.0 MiB uncompressed, over the budget of 1400 MiB (contract.size_budget_mib)'),
      err('frr', '/etc/frr/daemons', 'missing'),
      ...many,
      warn('capability', '/usr/bin/ping', 'file capability cap_net_raw=ep is dropped'),
    ],
    topDirs: [{ dir: '/usr/lib/firmware', bytes: 700 * 1024 ** 2 }, { dir: '/usr/lib/modules', bytes: 400 * 1024 ** 2 }],
  };
  assert.is(formatReport(report), [
    'lint debian-12: FAIL — 2 errors, 8 warnings (1.5 GiB tar, 600.0 MiB lz4, 61234 entries, 3.1s)',
    'errors:',
    '  img.tar: 1536.0 MiB uncompressed, over the budget of 1400 MiB (contract.size_budget_mib)',
    '  largest directories (files summed 3 levels deep):',
    '     700.0 MiB  /usr/lib/firmware',
    '     400.0 MiB  /usr/lib/modules',
    '  /etc/frr/daemons: missing',
    'warnings:',
    "  owner (7): non-root owners (the hammer's untar does not apply owners: everything becomes root:root)",
    '    /var/f0: owned by 0:4; it will be root:root',
    '    /var/f1: owned by 0:4; it will be root:root',
    '    /var/f2: owned by 0:4; it will be root:root',
    '    /var/f3: owned by 0:4; it will be root:root',
    '    /var/f4: owned by 0:4; it will be root:root',
    '    ... and 2 more (--all lists them)',
    '  /usr/bin/ping: file capability cap_net_raw=ep is dropped',
  ].join('\n'));
  assert.is(formatReport(report, { all: true }).split('\n').filter((l) => l.includes('/var/f')).length, 7);
  assert.is(formatReport({ ...report, errors: 0, warnings: 0, findings: [] }), 'lint debian-12: PASS — 0 errors, 0 warnings (1.5 GiB tar, 600.0 MiB lz4, 61234 entries, 3.1s)');
});

// ---- the streaming path, through the real lz4 CLI ----------------------------------------------

const work = mkdtempSync(join(tmpdir(), 'lint-test-'));
const def = (): ImageDef => ({
  ...parseImageDef('os: demo\nversion: "1"\nbase: { image: "x:1" }\npackages_command: [dpkg, -l]\nmachine_type: machine\ncontract: { size_budget_mib: 100, required_commands: [bash, grub-install, "ignition|cloud-init"] }\n', 'demo/image.yaml', 'demo'),
  units: mergeUnits({ order: [], state: {}, default_target: '' }),
  dir: work,
  variant: '',
  dockerfile: '',
  contextDirs: [],
});

/** Write <dir>/img.tar.lz4 (+ md5 file) from a tar, compressed by the lz4 CLI. */
async function artifact(name: string, tar: Buffer, md5 = true): Promise<string> {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'img.tar'), tar);
  await run(['lz4', '-q', '-f', '-1', join(dir, 'img.tar'), join(dir, 'img.tar.lz4')]);
  rmSync(join(dir, 'img.tar'));
  if (md5) {
    const hex = createHash('md5').update(readFileSync(join(dir, 'img.tar.lz4'))).digest('hex');
    writeFileSync(join(dir, 'img.tar.lz4.md5'), `${hex}  img.tar.lz4\n`);
  }
  return dir;
}

test('lintArtifact: the good image streamed through lz4 passes, with sizes and counts', async () => {
  const tar = tarball(goodImage());
  const r = await lintArtifact(def(), await artifact('good', tar));
  assert.equal(r.findings, []);
  assert.is(r.errors, 0);
  assert.is(r.image, 'demo-1');
  assert.is(r.tarBytes, tar.length);
  assert.is(r.entries, goodImage().length);
});

test('lintArtifact: md5 mismatch and missing md5 file are found in the same pass', async () => {
  const dir = await artifact('md5', tarball(goodImage()));
  writeFileSync(join(dir, 'img.tar.lz4.md5'), `${'f'.repeat(32)}  img.tar.lz4\n`);
  const r = await lintArtifact(def(), dir);
  assert.is(r.findings.length, 1);
  assert.match(r.findings[0]!.message, new RegExp(`^says f{32}, but img.tar.lz4 hashes to [0-9a-f]{32}$`));
  rmSync(join(dir, 'img.tar.lz4.md5'));
  assert.equal((await lintArtifact(def(), dir)).findings, [err('md5', 'img.tar.lz4.md5', 'missing: the metal-hammer downloads it next to img.tar.lz4')]);
});

test('lintArtifact: a corrupt tar inside a valid frame, and a file that is not LZ4', async () => {
  const tar = tarball(goodImage());
  tar[2048 + 10]! ^= 0xff; // inside the name of the fourth header (boot/initrd.img-*)
  const r = await lintArtifact(def(), await artifact('corrupt', tar));
  assert.equal(r.findings, [
    err('tar', 'img.tar.lz4', 'not a tar the metal-hammer can read: header checksum mismatch (not a tar, or corrupt) (at byte 2048 of the tar)'),
  ]);
  const dir = join(work, 'notlz4');
  mkdirSync(dir);
  writeFileSync(join(dir, 'img.tar.lz4'), tarball(goodImage()));
  const r2 = await lintArtifact(def(), dir);
  assert.equal(r2.findings.map((f) => f.rule), ['tar', 'md5'], 'no whole-image findings for an unreadable artifact');
  assert.match(r2.findings[0]!.message, /^not a valid LZ4 frame: lz4 -dc exited \d+ \(.*Unrecognized header.*\)$/);
});

test('lintArtifact: no artifact is a precondition failure naming the export command', async () => {
  try {
    await lintArtifact(def(), join(work, 'nothing'));
    assert.unreachable('expected a PreconditionError');
  } catch (e) {
    assert.is((e as Error).message.startsWith('no artifact to lint: '), true);
    assert.is((e as { hint?: string }).hint, 'run make export OS=demo (or make demo)');
  }
});

test.after(() => rmSync(work, { recursive: true, force: true }));

test.run();
