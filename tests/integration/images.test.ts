// The image folders beyond Debian, through the real CLI (the way make runs it).
// - ubuntu, firewall (Ubuntu based) and almalinux have no base image here: `make <os>` must stop
//   with exit 3 before building anything, naming the missing base and archive, within seconds.
// - make all: the dependency order and the availability of every image (--plan builds nothing).
// - nvidia and the Debian-based firewall build, export, lint and boot here, which takes long: those
//   two run in the slow suite only (make test-slow sets METAL_SLOW=1) and say so when skipped.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli } from '../helpers/cli.ts';
import { ROOT } from '../../scripts/lib/config.ts';
import { loadImageDef, type ImageDef } from '../../scripts/lib/image-def.ts';
import { planBase } from '../../scripts/steps/base.ts';
import { imageExists } from '../../scripts/lib/docker.ts';
import { dependencyOrder, inheritAvailability, outcomeTable } from '../../scripts/commands/all.ts';
import { UsageError } from '../../scripts/lib/errors.ts';
import { run } from '../../scripts/lib/shell.ts';

const SLOW = process.env['METAL_SLOW'] === '1';
// uvu sets FORCE_COLOR=1 for itself; the CLI's messages are matched without colour codes
const PLAIN = { FORCE_COLOR: '0' };

/** The base of `os` (following base.from) is unavailable here; otherwise why it is available. */
async function baseAvailable(os: string): Promise<string | null> {
  let def = loadImageDef(os);
  while (def.base.from) def = loadImageDef(def.base.from);
  const plan = await planBase(def);
  return plan.kind === 'unavailable' ? null : `${def.base.image}: ${plan.kind}`;
}

async function failsFast(os: string, args: string[], stderr: RegExp, tag: string): Promise<void> {
  const available = await baseAvailable(os);
  if (available) {
    console.log(`  note: ${os}: its base is available on this machine (${available}), so the fail-fast check does not apply; make test-slow builds it`);
    return;
  }
  const t0 = performance.now();
  const r = await cli(['build', os, ...args], { env: { ...PLAIN, SKIP_VM_TEST: '1' } });
  const seconds = (performance.now() - t0) / 1000;
  assert.is(r.code, 3, `exit code (stderr: ${r.stderr})`);
  assert.match(r.stderr, stderr);
  assert.match(r.stderr, /^ {2}fix: /m);
  assert.ok(seconds < 30, `took ${seconds.toFixed(1)}s; the base check must fail within seconds`);
  assert.not.match(r.stdout, /^==> build$/m, 'nothing may be built');
  assert.not.ok(await imageExists(tag), `${tag} must not exist after a failed base check`);
  console.log(`  ${os}: exit 3 after ${seconds.toFixed(1)}s: ${r.stderr.split('\n')[0]}`);
}

test('ubuntu: not buildable here (no ubuntu:22.04 base, its archive cannot be used) — checks that make ubuntu fails fast', async () => {
  await failsFast('ubuntu', [], /^error: base image ubuntu:22\.04 is not present locally, cannot be pulled, and cannot be bootstrapped: the jammy archive http:\/\/archive\.ubuntu\.com\/ubuntu (needs the keyring \/usr\/share\/keyrings\/ubuntu-archive-keyring\.gpg, which is not installed|\S+ is unreachable \(.*\)|\S+ answered HTTP \d+)$/m, 'metal-images/ubuntu:22.04');
});

test('firewall (Ubuntu based): not buildable here (its base is the ubuntu image) — checks that make firewall fails fast', async () => {
  await failsFast('firewall', [], /^error: base image ubuntu:22\.04 is not present locally, cannot be pulled, and cannot be bootstrapped: the jammy archive http:\/\/archive\.ubuntu\.com\/ubuntu /m, 'metal-images/firewall:3.0-ubuntu');
});

test('almalinux: not buildable here (no almalinux:9 base, no registry, no dnf bootstrap) — checks that make almalinux fails fast', async () => {
  await failsFast('almalinux', [], /^error: base image almalinux:9 is not present locally and cannot be pulled \(.+\); almalinux\/image\.yaml has no bootstrap recipe for it$/m, 'metal-images/almalinux:9');
});

test('make all --plan: dependency order and availability of every image, nothing built', async () => {
  const r = await cli(['all', '--plan'], { env: PLAIN });
  assert.is(r.code, 0, r.stderr);
  const order = /make all: (.+)/.exec(r.stdout)?.[1]?.split(' → ') ?? [];
  assert.equal([...order].sort(), ['almalinux', 'debian', 'firewall', 'nvidia', 'ubuntu']);
  assert.ok(order.indexOf('debian') < order.indexOf('nvidia'), 'debian before nvidia');
  assert.ok(order.indexOf('ubuntu') < order.indexOf('firewall'), 'ubuntu before firewall');
  for (const os of ['ubuntu', 'almalinux']) {
    const id = `${os}-${loadImageDef(os).version}`;
    const expected = (await baseAvailable(os)) ? 'yes' : 'no';
    assert.match(r.stdout, new RegExp(`^${id.replace(/\./g, '\\.')}\\s+${expected}\\s`, 'm'), `${id} availability`);
  }
  if (!(await baseAvailable('firewall'))) {
    assert.match(r.stdout, /^firewall-3\.0-ubuntu\s+no\s+its base metal-images\/ubuntu:22\.04-body is built by ubuntu\/, which is unavailable here$/m);
  }
  assert.match(r.stdout, /^nvidia-12\s+yes\s+built FROM debian\/ \(metal-images\/debian:12-body\)$/m);
  assert.not.match(r.stdout, /^==> build$/m);
});

// ---- make all's pure planning ------------------------------------------------------------------

const fake = (os: string, from = ''): ImageDef => ({ ...loadImageDef('debian'), os, base: { image: from ? `metal-images/${from}:1` : `${os}:1`, from, bootstrap: null } });

test('make all order: dependencies first, independent images alphabetically, cycles refused', () => {
  const order = dependencyOrder([fake('nvidia', 'debian'), fake('firewall', 'ubuntu'), fake('ubuntu'), fake('debian'), fake('almalinux')]);
  assert.equal(order.map((d) => d.os), ['almalinux', 'debian', 'ubuntu', 'firewall', 'nvidia']);
  try {
    dependencyOrder([fake('a', 'b'), fake('b', 'a')]);
    assert.unreachable('a cycle must be refused');
  } catch (e) {
    assert.instance(e, UsageError);
    assert.is((e as Error).message, 'image dependency cycle: a → b → a');
  }
});

test('make all: an image inherits the availability of the folder its base comes from; the summary table', () => {
  const fw = fake('firewall', 'ubuntu');
  assert.equal(inheritAvailability(fw, { available: false, reason: 'r', hint: 'h' }), { available: false, reason: 'its base metal-images/ubuntu:1 is built by ubuntu/, which is unavailable here', hint: 'h' });
  assert.equal(inheritAvailability(fw, { available: true, how: 'x' }), { available: true, how: 'built FROM ubuntu/ (metal-images/ubuntu:1)' });
  assert.is(
    outcomeTable([
      { def: fake('debian'), status: 'built', seconds: 12.34, detail: 'img.tar.lz4 1 MiB' },
      { def: fw, status: 'unavailable', seconds: 0, detail: 'no base' },
    ]),
    'image        status       seconds  detail\ndebian-12    built        12.3     img.tar.lz4 1 MiB\nfirewall-12  unavailable  -        no base',
  );
});

// ---- the slow suite: build, export, lint and boot ----------------------------------------------

async function fullBuild(os: string, variant: string, id: string): Promise<void> {
  const t0 = performance.now();
  const r = await cli(['build', os, ...(variant ? [`--variant=${variant}`] : [])], { env: PLAIN, echo: true });
  console.log(`  ${id}: make ${os}${variant ? ` VARIANT=${variant}` : ''} took ${((performance.now() - t0) / 1000).toFixed(0)}s`);
  assert.is(r.code, 0, `build failed:\n${r.stderr.slice(-3000)}`);
  assert.match(r.stdout, new RegExp(`${id.replace(/\./g, '\\.')} \\(metal-images/${os}:\\S+\\) done in`));
  assert.match(r.stdout, /^lint\s+\S+\s+\S+\s+ok\b/m, 'the lint step ran and passed');
  assert.match(r.stdout, /^vm test( \(rack\))?\s+\S+\s+\S+\s+ok\b/m, 'the VM test (the rack for machine images) ran and passed');
}

test('nvidia: full build + VM test (slow suite only, run make test-slow)', async () => {
  if (!SLOW) {
    console.log('  skipped here: nvidia builds a kernel module and boots a VM (minutes); make test-slow runs it');
    return;
  }
  await fullBuild('nvidia', '', 'nvidia-12');
  const dir = join(ROOT, 'images', 'nvidia', '12');
  for (const f of ['img.tar.lz4', 'img.tar.lz4.md5', 'img.tar.lz4.spdx.json', 'packages.txt']) assert.ok(existsSync(join(dir, f)), `${f} missing`);
  const pk = readFileSync(join(dir, 'packages.txt'), 'utf8');
  assert.match(pk, /^ii {2}nvidia-kernel-\d\S*-amd64\s+\d+\.\d+/m, 'the module package for the image kernel');
  assert.match(pk, /^ii {2}nvidia-smi\s/m);
  assert.not.match(pk, /^ii {2}(dkms|nvidia-kernel-dkms|gcc-12)\s/m, 'no DKMS or compiler in the image');
});

test('debian VARIANT=13: full build + VM test (slow suite only, run make test-slow)', async () => {
  if (!SLOW) {
    console.log('  skipped here: Debian 13 bootstraps its own base, builds and is provisioned in the rack (minutes); make test-slow runs it');
    return;
  }
  await fullBuild('debian', '13', 'debian-13');
  const pk = readFileSync(join(ROOT, 'images', 'debian', '13', 'packages.txt'), 'utf8');
  assert.match(pk, /^ii {2}base-files\s+13\./m, 'Debian 13 (trixie) base-files');
  assert.match(pk, /^ii {2}linux-image-\d\S*-amd64\s/m, 'a kernel');
});

test('firewall VARIANT=debian: full build + VM test (slow suite only, run make test-slow)', async () => {
  if (!SLOW) {
    console.log('  skipped here: the Debian-based firewall builds and boots a VM (minutes); make test-slow runs it');
    return;
  }
  await fullBuild('firewall', 'debian', 'firewall-3.0-debian');
  const pk = readFileSync(join(ROOT, 'images', 'firewall', '3.0-debian', 'packages.txt'), 'utf8');
  for (const p of ['nftables', 'chrony', 'suricata', 'suricata-update']) assert.match(pk, new RegExp(`^ii  ${p}(:amd64)?\\s`, 'm'), `${p} not installed`);
  // the exporter on 9100 is the Go node_exporter (scripts/tools/firewall), not Debian's package
  assert.not.match(pk, /^ii {2}prometheus-node-exporter\s/m, 'Debian\'s node exporter would take port 9100');
  const list = await run(['sh', '-c', 'lz4 -dc "$1" | tar -t', 'sh', join(ROOT, 'images', 'firewall', '3.0-debian', 'img.tar.lz4')]);
  for (const f of ['usr/local/bin/node_exporter', 'usr/bin/nftables-exporter', 'usr/local/bin/tailscaled']) assert.match(list.stdout, new RegExp(`^\\./${f}$`, 'm'), `${f} in the image`);
});

test.run();
