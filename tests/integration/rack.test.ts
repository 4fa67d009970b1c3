// The rack test (make provision-test) on the real Debian artifact: the hammer VM under OVMF, the
// kexec boot and the cold GRUB boot, goss from both specs, the two leaves' BGP, routes, ping and
// LLDP, provision.json (last, so that its provision.json stays beside the artifact). Before it: the
// hammer's own untar cross-checked with the lint's lossy rules, and the faults: no OVMF, no
// permission for namespaces, an installer that fails (the real one, refusing the console the
// hammer booted with), a kernel that never reaches ssh (a tiny image), Ctrl-C while the hammer
// works. Each checks that nothing is left: no QEMU, namespaces, taps or scratch dirs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { config, ROOT } from '../../scripts/lib/config.ts';
import { loadImageDef } from '../../scripts/lib/image-def.ts';
import { run, stream } from '../../scripts/lib/shell.ts';
import { ProvisionError, REPORT_FILE, runProvisionTest } from '../../scripts/rack/provision.ts';
import type { ProvisionReport } from '../../scripts/rack/report.ts';
import { lintArtifact } from '../../scripts/lint/lint.ts';
import { defaultLayout } from '../../scripts/rack/plan.ts';
import { parse } from 'yaml';
import { referenceFile } from '../helpers/reference.ts';
import { ensureDebianArtifact } from '../helpers/debian.ts';
import { plain } from '../helpers/text.ts';

// the shared Debian fixture, built by its named helper if missing (no dependency on file order)
test.before(async () => {
  await ensureDebianArtifact();
});

const def = loadImageDef('debian');
const dir = join(config().imagesDir, def.os, def.version);
const CLI = [process.execPath, '--import', 'tsx', 'scripts/cli.ts', 'provision-test', 'debian'];
const HAMMER = join(config().binDir, 'rack-hammer');

/** Is a process of this checkout (a run of another checkout on the same host is not this test's business). */
function ours(pid: number): boolean {
  try {
    return readlinkSync(`/proc/${pid}/cwd`) === ROOT;
  } catch {
    return false;
  }
}

/** What a run of this checkout left: namespaces and taps whose owner is dead or ours, our QEMU, our scratch dirs. */
async function leftovers(): Promise<string[]> {
  const mine = (name: string): boolean => {
    const pid = Number(/^mrk(\d+)/.exec(name)?.[1]);
    return !existsSync(`/proc/${pid}`) || ours(pid);
  };
  const ns = (await run(['ip', 'netns', 'list'], { nothrow: true })).stdout.split('\n').map((l) => l.split(' ')[0]!).filter((n) => /^mrk\d+/.test(n)).filter(mine);
  const links = (await run(['ip', '-o', 'link', 'show'], { nothrow: true })).stdout.split('\n').map((l) => /^\d+:\s+([^:@]+)/.exec(l)?.[1] ?? '').filter((n) => /^mrk\d+l\d$/.test(n)).filter(mine);
  const rack = join(config().stateDir, 'rack');
  const scratch = existsSync(rack) ? readdirSync(rack) : [];
  const qemu = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('metal-rack') && ours(Number(p));
    } catch {
      return false;
    }
  });
  return [...ns.map((n) => `netns ${n}`), ...links.map((l) => `tap ${l}`), ...scratch.map((s) => `scratch ${s}`), ...qemu.map((q) => `qemu pid ${q}`)];
}

test('rack-hammer writes install.yaml byte for byte as the hammer serialises it (reference/hammer/machine.yaml)', async () => {
  const refText = readFileSync(referenceFile('hammer', 'machine.yaml'), 'utf8');
  const ref = parse(refText) as Record<string, unknown> & { sshpublickey: string; root_uuid: string; timestamp: string; console: string };
  // the allocation as the hammer gets it (keys joined by newlines, the rest as is)
  const machine = {
    hostname: ref.hostname, networks: ref.networks, machineuuid: ref.machineuuid, sshpubkeys: ref.sshpublickey.split('\n'), password: ref.password,
    nics: ref.nics, role: ref.role, dns_servers: ref.dns_servers, ntp_servers: ref.ntp_servers, userdata: '',
  };
  const out = await run([HAMMER, 'install-yaml', `--root-uuid=${ref.root_uuid}`, `--timestamp=${ref.timestamp}`, `--console=${ref.console}`], { input: JSON.stringify(machine) });
  assert.is(out.stdout, refText);
});

test('rack-hammer writes fstab as the hammer does: depth order, UUIDs, the tmpfs with its options', async () => {
  const layout = defaultLayout('/dev/vda');
  const out = await run([HAMMER, 'fstab'], { input: JSON.stringify({ layout, uuids: { '/dev/vda1': 'EF00-0001', '/dev/vda2': 'root-uuid', '/dev/vda3': 'varlib-uuid' } }) });
  assert.is(out.stdout, [
    '# created by metal-hammer: "rack-hammer (metal-images test bed)"',
    'UUID=root-uuid / ext4 defaults 0 1',
    'tmpfs /tmp tmpfs defaults,noatime,nosuid,nodev,noexec,mode=1777,size=512M 0 0',
    'UUID=EF00-0001 /boot/efi vfat defaults 0 2',
    'UUID=varlib-uuid /var/lib ext4 defaults 0 2',
    '',
  ].join('\n'));
});

test('the hammer\'s untar (archiver v2.1.0) loses exactly what the lint warns about', async () => {
  const work = mkdtempSync(join(tmpdir(), 'rack-untar-'));
  try {
    const tree = join(work, 'tree');
    mkdirSync(join(tree, 'root'), { recursive: true, mode: 0o700 });
    mkdirSync(join(tree, 'var/tmp'), { recursive: true });
    writeFileSync(join(tree, 'usr-ping'), 'x');
    writeFileSync(join(tree, 'owned'), 'y');
    writeFileSync(join(tree, 'setuid'), 'z');
    await run(['chmod', '0700', join(tree, 'root')]);
    await run(['chmod', '1777', join(tree, 'var/tmp')]);
    await run(['chmod', '4755', join(tree, 'setuid')]);
    await run(['chown', '1000:1000', join(tree, 'owned')]);
    await run(['setcap', 'cap_net_raw=ep', join(tree, 'usr-ping')], { nothrow: true });
    const img = join(work, 'img.tar.lz4');
    await run(['sh', '-c', `tar --create --xattrs --xattrs-include='*' --numeric-owner -C "$1" . | lz4 -q > "$2" && md5sum "$2" | sed "s|  .*|  img.tar.lz4|" > "$2.md5"`, 'sh', tree, img]);
    // the lint's view of the same tar: which entries lose what
    const lint = await lintArtifact(def, work);
    const lossy = new Map<string, Set<string>>();
    for (const f of lint.findings) {
      if (!['owner', 'dir-mode', 'capability', 'xattr'].includes(f.rule)) continue;
      lossy.set(f.path, (lossy.get(f.path) ?? new Set()).add(f.rule));
    }
    assert.equal([...lossy].map(([p, r]) => [p, [...r].sort()]).sort(), [['/owned', ['owner']], ['/root', ['dir-mode']], ['/usr-ping', ['capability']], ['/var/tmp', ['dir-mode']]]);
    // the hammer's untar of it (rack-hammer burn: pierrec/lz4 v4 + archiver v2.1.0)
    const out = join(work, 'out');
    mkdirSync(out);
    await run([HAMMER, 'burn', img, out]);
    const stat = async (p: string): Promise<{ mode: string; owner: string }> => {
      const [mode, owner] = (await run(['stat', '-c', '%a %u:%g', join(out, p)])).stdout.trim().split(' ');
      return { mode: mode!, owner: owner! };
    };
    for (const p of ['root', 'var/tmp', 'owned', 'usr-ping', 'setuid']) {
      const rules = lossy.get(`/${p}`) ?? new Set<string>();
      const st = await stat(p);
      const caps = (await run(['getcap', join(out, p)], { nothrow: true })).stdout.trim();
      if (rules.has('dir-mode')) assert.is(st.mode, '755', `${p}: the lint says its mode is lost`);
      if (rules.has('owner')) assert.is(st.owner, '0:0', `${p}: the lint says its owner is lost`);
      if (rules.has('capability')) assert.is(caps, '', `${p}: the lint says its capability is lost`);
      if (rules.size === 0) assert.is(st.mode, '4755', `${p}: no lint warning, so its mode survives`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

/** The CLI's output without terminal colours. */
async function cli(extra: string[], env: NodeJS.ProcessEnv = {}, prefix: string[] = []): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const r = await run([...prefix, ...CLI, ...extra], { cwd: ROOT, nothrow: true, env, timeoutMs: 1_200_000 });
  return { code: r.code, stdout: plain(r.stdout), stderr: plain(r.stderr) };
}

const errorLines = (stderr: string): string[] => stderr.split('\n').filter((l) => l.startsWith('error: '));

test('no OVMF: exit 3 with a one-line cause before anything starts', async () => {
  const r = await cli([], { METAL_OVMF_DIR: '/nonexistent/OVMF' });
  assert.is(r.code, 3, r.stdout + r.stderr);
  assert.equal(errorLines(r.stderr), ["error: no OVMF firmware: /nonexistent/OVMF/OVMF_CODE_4M.fd is missing (QEMU's EFI firmware, Debian's ovmf package)"]);
  assert.match(r.stderr, /fix: run make setup \(installs ovmf\)/);
  assert.equal(await leftovers(), []);
});

test('no permission for namespaces: exit 3 naming it, nothing started', async () => {
  const r = await cli([], {}, ['setpriv', '--bounding-set=-sys_admin,-net_admin', '--']);
  assert.is(r.code, 3, r.stdout + r.stderr);
  assert.equal(errorLines(r.stderr), ['error: cannot create network namespaces for the leaves (ip netns add: mount --make-shared /run/netns failed: Operation not permitted)']);
  assert.match(r.stderr, /fix: run as root/);
  assert.not.match(r.stdout, /powering on/);
  assert.equal(await leftovers(), []);
});

test('an installer that fails: its step and message, the hammer VM gone, nothing left', async () => {
  // the hammer boots with a console it cannot pass on: install.yaml gets it, the installer refuses it
  const r = await cli(['--hammer-console=ttyS1-115200'], {});
  assert.is(r.code, 1, r.stdout + r.stderr);
  const errs = errorLines(r.stderr);
  assert.is(errs.length, 1, r.stderr);
  assert.match(errs[0]!, /^error: the hammer failed in step install: metal-installer: FAILED in step 1 check-input: .*console/);
  assert.match(r.stderr, /fix: see .*boot1-ttyS1\.log and .*installer\.log/);
  assert.not.ok(existsSync(join(dir, REPORT_FILE)), 'no provision.json after a failed install');
  assert.equal(await leftovers(), []);
});

/** A tiny machine image: the real kernel and modules, an initrd that is not one, an installer that only writes boot-info.yaml. */
async function unbootableImage(): Promise<string> {
  const images = mkdtempSync(join(tmpdir(), 'rack-images-'));
  const tree = join(images, 'tree');
  mkdirSync(tree);
  await run(['tar', '--extract', '--use-compress-program=lz4', '--file', join(dir, 'img.tar.lz4'), '--directory', tree, '--wildcards', 'boot/vmlinuz-*', 'usr/lib/modules/*/modules.dep', 'usr/lib/modules/*/modules.builtin', 'usr/lib/modules/*/kernel/drivers/virtio/*', 'usr/lib/modules/*/kernel/drivers/block/virtio_blk.ko', 'usr/lib/modules/*/kernel/drivers/net/*', 'usr/lib/modules/*/kernel/net/core/failover.ko', 'usr/lib/modules/*/kernel/fs/*', 'usr/lib/modules/*/kernel/lib/crc16.ko', 'usr/lib/modules/*/kernel/crypto/crc32c_generic.ko'], { nothrow: true });
  const k = readdirSync(join(tree, 'boot')).find((n) => n.startsWith('vmlinuz-'))!.slice('vmlinuz-'.length);
  writeFileSync(join(tree, 'boot', `initrd.img-${k}`), 'not an initramfs\n');
  for (const [from, to] of [['/usr/bin/dash', 'bin/sh'], ['/lib/x86_64-linux-gnu/libc.so.6', 'lib/x86_64-linux-gnu/libc.so.6'], ['/lib64/ld-linux-x86-64.so.2', 'lib64/ld-linux-x86-64.so.2']] as const) {
    mkdirSync(join(tree, to, '..'), { recursive: true });
    writeFileSync(join(tree, to), readFileSync(from), { mode: 0o755 });
  }
  mkdirSync(join(tree, 'etc'));
  writeFileSync(join(tree, 'install.sh'), `#!/bin/sh\nprintf 'kernel: /boot/vmlinuz-${k}\\ninitrd: /boot/initrd.img-${k}\\ncmdline: console=ttyS1,115200n8 root=/dev/vda2\\nbootloader_id: metal-fixture\\n' > /etc/metal/boot-info.yaml\n`, { mode: 0o755 });
  const out = join(images, 'debian', '12');
  mkdirSync(out, { recursive: true });
  await run(['sh', '-c', 'tar --create --numeric-owner -C "$1" . | lz4 -q > "$2/img.tar.lz4" && cd "$2" && md5sum img.tar.lz4 > img.tar.lz4.md5', 'sh', tree, out]);
  rmSync(tree, { recursive: true });
  return images;
}

test('a kernel that never reaches ssh: one-line timeout with the console tail, nothing left', async () => {
  const images = await unbootableImage();
  try {
    const r = await cli(['--ssh-timeout=45'], { METAL_IMAGES_DIR: images });
    assert.is(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /hammer: kexec ok/, r.stdout + r.stderr);
    assert.match(r.stderr, /Kernel panic - not syncing|Initramfs unpacking failed|VFS: Unable to mount root/);
    assert.equal(errorLines(r.stderr), ['error: boot 1 (kexec): no ssh login as metal within 45s; console tail above']);
    assert.equal(await leftovers(), []);
  } finally {
    rmSync(images, { recursive: true, force: true });
  }
});

test('Ctrl-C while the hammer works: exit 130, no VM, namespace, tap or scratch dir left', async () => {
  const p = stream(CLI, { cwd: ROOT });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no hammer event within 180s: ${out}`)), 180_000);
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (/hammer: mount ok/.test(out)) {
        clearTimeout(t);
        resolve();
      }
    });
  });
  assert.ok((await leftovers()).length > 0, 'the run has its namespaces and VM while it runs');
  p.child.kill('SIGINT');
  const code = await new Promise<number | null>((res) => p.child.once('exit', (c) => res(c)));
  assert.is(code, 130);
  assert.equal(await leftovers(), []);
});

test('the Debian image provisioned as the hammer does: kexec boot and GRUB boot, both leaves, provision.json', async () => {
  assert.ok(existsSync(join(dir, 'img.tar.lz4')), 'the Debian artifact is missing: run make debian');
  let report: ProvisionReport | null = null;
  let failure: unknown = null;
  try {
    report = await runProvisionTest(def, dir);
  } catch (e) {
    failure = e;
  }
  // a failing run still leaves provision.json when it got through both boots
  assert.ok(existsSync(join(dir, REPORT_FILE)), `no ${REPORT_FILE}: ${(failure as Error | null)?.message ?? ''}`);
  const r = JSON.parse(readFileSync(join(dir, REPORT_FILE), 'utf8')) as ProvisionReport;
  if (failure) assert.instance(failure, ProvisionError);
  console.log(`provision.json verdict: ${JSON.stringify(r.verdict, null, 2)}`);
  console.log(`phases: ${JSON.stringify(r.phases)}`);

  assert.equal(r.boots.map((b) => b.kind), ['kexec', 'grub']);
  assert.equal(r.layout.partitions.map((p) => [p.label, p.sizeMiB, p.gpttype]), [['efi', 500, 'ef00'], ['root', 5000, '8300'], ['varlib', 0, '8300']]);
  assert.match(r.fstab, /^UUID=\S+ \/ ext4 defaults 0 1$/m);
  assert.match(r.fstab, /^UUID=\S+ \/boot\/efi vfat defaults 0 2$/m);
  assert.match(r.fstab, /^UUID=\S+ \/var\/lib ext4 defaults 0 2$/m);
  assert.match(r.fstab, /^tmpfs \/tmp tmpfs defaults,noatime,nosuid,nodev,noexec,mode=1777,size=512M 0 0$/m);
  assert.match(r.installYaml, /^root_uuid: [0-9a-f-]{36}$/m);
  assert.ok(r.bootInfo.cmdline.includes(`root=UUID=${/^root_uuid: (\S+)$/m.exec(r.installYaml)![1]}`), 'boot-info names the root partition of install.yaml');

  for (const b of r.boots) {
    for (const l of b.leaves) {
      assert.equal(l.bgp.map((p) => p.state), ['Established'], `${b.kind} ${l.name}`);
      assert.ok(l.prefixes.some((p) => p.prefix === '10.0.17.2/32'), `${b.kind} ${l.name} learned ${JSON.stringify(l.prefixes)}`);
      assert.ok(l.ping.received > 0, `${b.kind} ${l.name} ping`);
      assert.ok(l.lldp, `${b.kind} ${l.name} sees an LLDP neighbour`);
    }
    assert.equal(b.machine.ecmp.via, ['lan0', 'lan1']);
    assert.is(b.goss.length, 2);
  }
  // boot 1 is the hammer's kexec with boot-info's command line, verbatim
  assert.is(r.boots[0]!.cmdline, r.bootInfo.cmdline);
  // the known defects are found, by name; nothing else fails
  assert.equal(r.verdict.failed, [], `unexpected failures: ${r.verdict.failed.join('\n')}`);
  assert.equal(r.verdict.stale, [], 'a known defect no longer shows: remove it from KNOWN_DEFECTS');
  const known = r.verdict.knownDefects.map((k) => k.id).sort();
  console.log(`known image defects found: ${known.join(', ')}`);
  for (const k of r.verdict.knownDefects) console.log(`  ${k.id}: ${k.detail}`);
  if (!failure) assert.is(report?.image, 'debian-12');
  assert.equal(await leftovers(), []);
});

test.run();
