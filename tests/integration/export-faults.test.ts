// The export under hostile use, with real processes: two exports of one image at once, a container
// removed under a running export, Ctrl-C during a re-export, other checkouts' containers on the
// same daemon, DRY_RUN, and the same image exported twice. Each case is named after what it
// protects. The image is the Debian one (built through the make debian path if missing).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { cli } from '../helpers/cli.ts';
import { ensureDebianImage } from '../helpers/debian.ts';
import { config, ROOT } from '../../scripts/lib/config.ts';
import { OWNER_LABELS } from '../../scripts/lib/docker.ts';
import { self } from '../../scripts/lib/ownership.ts';

const sh = (argv: string[]): string => execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8' }).trim();
const scratch = mkdtempSync(join(config().stateDir, 'export-faults-'));
const images = join(scratch, 'images');
const set = join(images, 'debian', '12');
const env = { METAL_IMAGES_DIR: images, METAL_ENV_FILE: '/dev/null' };
let first = '';

const md5Of = (): string => readFileSync(join(set, 'img.tar.lz4.md5'), 'utf8').slice(0, 32);
const fileMd5 = (): string => sh(['md5sum', join(set, 'img.tar.lz4')]).slice(0, 32);
const inFlight = (): string[] => (existsSync(join(images, 'debian')) ? readdirSync(join(images, 'debian')).filter((d) => d.startsWith('.')) : []);
const writing = (): boolean => inFlight().some((d) => existsSync(join(images, 'debian', d, 'img.tar.lz4')));
const labelled = (pid: number): string => sh(['docker', 'ps', '-aq', '--filter', `label=${OWNER_LABELS.pid}=${pid}`]);

/** A stopped container labelled as created by `owner` (a dead pid unless given). */
function fakeContainer(owner: { pid: number; host?: string; pidns?: string; checkout?: string }): string {
  const me = self();
  const o = { host: me.host, pidns: me.pidns, checkout: me.checkout, ...owner };
  return sh(['docker', 'create', '--label', `${OWNER_LABELS.pid}=${o.pid}`, '--label', `${OWNER_LABELS.host}=${o.host}`, '--label', `${OWNER_LABELS.pidns}=${o.pidns}`, '--label', `${OWNER_LABELS.checkout}=${o.checkout}`, 'metal-images/debian:12', '/bin/true']);
}
const exists = (id: string): boolean => sh(['docker', 'ps', '-aq', '--no-trunc', '--filter', `id=${id}`]) !== '';

test.before(async () => {
  await ensureDebianImage();
});
test.after(() => {
  rmSync(scratch, { recursive: true, force: true });
});

test('the sweep removes only this checkout\'s dead runs\' containers: another checkout\'s, another host\'s and another PID namespace\'s stay', async () => {
  const dead = 2 ** 22 + 17; // above pid_max: never a live process
  const ours = fakeContainer({ pid: dead });
  const otherCheckout = fakeContainer({ pid: dead, checkout: '/work/another-checkout' });
  const otherHost = fakeContainer({ pid: dead, host: 'another-build-host' });
  const otherNs = fakeContainer({ pid: dead, pidns: 'pid:[4026599999]' });
  try {
    const r = await cli(['export', 'debian'], { env });
    assert.is(r.code, 0, r.stderr);
    first = md5Of();
    assert.is(fileMd5(), first);
    assert.not.ok(exists(ours), 'the dead run of this checkout left a container the sweep should have removed');
    for (const [what, id] of [['another checkout', otherCheckout], ['another host', otherHost], ['another PID namespace', otherNs]] as const) {
      assert.ok(exists(id), `the container of ${what} was removed: it is not provably this checkout's`);
    }
  } finally {
    for (const id of [ours, otherCheckout, otherHost, otherNs]) execFileSync('docker', ['rm', '-f', id], { stdio: 'ignore' });
  }
});

test('two exports of one set at once: the second is refused naming the first; the first\'s md5 is its file\'s; exports are reproducible', async () => {
  const a = cli(['export', 'debian'], { env });
  const deadline = Date.now() + 60_000;
  while (!writing() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  const b = await cli(['export', 'debian'], { env });
  assert.is(b.code, 3, b.stdout + b.stderr);
  assert.match(b.stderr, /^error: an export of .*debian\/12 is in progress elsewhere: pid \d+ on \S+ \(checkout .*\) holds .*\.lock since /m);
  const ra = await a;
  assert.is(ra.code, 0, ra.stderr);
  assert.is(md5Of(), fileMd5(), 'the md5 file names the image\'s bytes');
  assert.is(md5Of(), first, 'the same image exported twice gives the same md5 (mtimes clamped to its build date)');
  assert.equal(inFlight(), []);
});

test('Ctrl-C during a re-export: the previous complete set stays as it was, nothing in flight, no container', async () => {
  const r = await cli(['export', 'debian'], { env, signalAfter: { when: writing, signal: 'SIGINT' } });
  assert.is(r.code, 130, r.stderr);
  assert.equal(readdirSync(set).sort(), ['build.json', 'img.tar.lz4', 'img.tar.lz4.md5', 'img.tar.lz4.spdx.json', 'packages.txt']);
  assert.is(md5Of(), first);
  assert.is(fileMd5(), first);
  assert.equal(inFlight(), []);
  assert.is(labelled(r.pid), '');
});

test('a container removed under a running export: it fails, writes nothing, and the previous set stays', async () => {
  let removed = false;
  const r = await cli(['export', 'debian'], {
    env,
    signalAfter: {
      when: () => {
        if (removed || !writing()) return false;
        const running = sh(['docker', 'ps', '-aq', '--filter', `label=${OWNER_LABELS.checkout}=${ROOT}`]).split('\n').filter(Boolean);
        for (const id of running) execFileSync('docker', ['rm', '-f', id], { stdio: 'ignore' });
        removed = running.length > 0;
        return false; // no signal: the export must notice by itself
      },
      signal: 'SIGINT',
    },
  });
  assert.ok(removed, 'the test found no container to remove');
  assert.is(r.code, 3, r.stdout + r.stderr);
  assert.match(r.stderr, /^error: the export's source changed while it was read: (the container was removed|its init layer .* lost its files)/m);
  assert.is(md5Of(), first);
  assert.is(fileMd5(), first);
  assert.equal(inFlight(), []);
});

test('DRY_RUN=1 make debian writes no artifacts', async () => {
  const dry = join(scratch, 'dry');
  const r = await cli(['build', 'debian'], { env: { ...env, METAL_IMAGES_DIR: dry, DRY_RUN: '1' } });
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /export\s+0\.0\s+\S*\s+skipped \(DRY_RUN=1: nothing was built\)/);
  assert.not.ok(existsSync(dry), 'DRY_RUN wrote under images/');
});

test('the bootstrapped base holds no build-host identity: hostname, hosts and resolv.conf are empty in its layer', () => {
  const layers = sh(['sh', '-c', 'docker save debian:12 | tar -t | grep layer.tar']).split('\n');
  assert.is(layers.length, 1, 'one layer (docker import)');
  for (const f of ['etc/hostname', 'etc/hosts', 'etc/resolv.conf']) {
    const size = sh(['sh', '-c', `docker save debian:12 | tar -xO ${layers[0]} | tar -tvf - ./${f} | awk '{print $3}'`]);
    assert.is(size, '0', `${f} in the base layer has ${size} bytes`);
  }
});

test.run();
