// The Debian image, built for real through the same code path as `make debian` (the docker build
// cache makes re-runs cheap), then its artifacts checked. The other integration files get the same
// image through tests/helpers/debian.ts, whichever runs first. The VM test is skipped here: the
// rack (rack.test.ts) provisions and boots it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, readdirSync, mkdtempSync, rmSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { execFileSync, spawnSync } from 'node:child_process';
import { cli, make } from '../helpers/cli.ts';
import { ROOT, config } from '../../scripts/lib/config.ts';
import { OWNER_LABEL } from '../../scripts/lib/docker.ts';

const DIR = join(ROOT, 'images', 'debian', '12');
const sh = (cmd: string): string => execFileSync('bash', ['-o', 'pipefail', '-c', cmd], { encoding: 'utf8', maxBuffer: 64 << 20 });

test('make debian: builds with BuildKit (no legacy-builder deprecation notice), exports', async () => {
  const r = await make(['-s', 'debian', 'SKIP_VM_TEST=1'], { echo: true });
  assert.is(r.code, 0, `build failed:\n${r.stderr.slice(-3000)}`);
  assert.match(r.stdout, /debian-12 \(metal-images\/debian:12\) done in/);
  assert.match(r.stdout, /vm test\s+0\.0\s+\S*\s+skipped \(SKIP_VM_TEST=1\)/);
  const out = `${r.stdout}\n${r.stderr}`;
  assert.not.match(out, /DEPRECATED|legacy builder/i, 'the legacy builder\'s deprecation notice is in the output');
  // BuildKit's plain progress: numbered vertices, the body's two stages and the finalize stage
  assert.match(out, /^#\d+ \[internal\] load build definition from Dockerfile$/m);
  assert.match(out, /^#\d+ \[kernel \d+\/\d+\] RUN --mount=type=cache,target=\/var\/cache\/apt,sharing=locked/m);
  const rec = JSON.parse(readFileSync(join(DIR, 'build.json'), 'utf8'));
  assert.match(rec.build.builder.buildkit, /^v\d+\.\d+/, 'the record names BuildKit\'s version');
  assert.is(rec.build.builder.driver, process.env.BUILDX_BUILDER ? rec.build.builder.driver : 'docker');
  assert.match(rec.build.builder.buildx, /^v\d+\.\d+\.\d+/);
  assert.match(r.stdout, /check tools .*BuildKit v\d/);
});

test('artifact set is complete and nothing partial is left', () => {
  assert.equal(readdirSync(DIR).sort(), ['build.json', 'img.tar.lz4', 'img.tar.lz4.md5', 'img.tar.lz4.spdx.json', 'packages.txt']);
  assert.equal(readdirSync(join(DIR, '..')).filter((f) => f.startsWith('.')), [], 'no in-flight sets beside it');
  const rec = JSON.parse(readFileSync(join(DIR, 'build.json'), 'utf8'));
  assert.is(rec.export.md5, readFileSync(join(DIR, 'img.tar.lz4.md5'), 'utf8').slice(0, 32), 'the record names the md5 of the bytes it exported');
  assert.is(rec.lint.verdict, 'pass');
  assert.is(rec.vmtest.verdict, 'skipped');
});

test('img.tar.lz4 is one valid LZ4 frame and the md5 file is md5sum format and matches', () => {
  sh(`lz4 -t ${DIR}/img.tar.lz4`);
  const md5 = readFileSync(join(DIR, 'img.tar.lz4.md5'), 'utf8');
  assert.match(md5, /^[0-9a-f]{32}  img\.tar\.lz4\n$/);
  assert.is(sh(`cd ${DIR} && md5sum -c img.tar.lz4.md5`).trim(), 'img.tar.lz4: OK');
  // exactly one frame: the magic number occurs once at offset 0 as a frame start
  assert.is(sh(`head -c 4 ${DIR}/img.tar.lz4 | od -An -tx1`).trim(), '04 22 4d 18');
});

test('the tar holds a kernel, an initrd and Debian 12 os-release, and no /.dockerenv', () => {
  const list = sh(`lz4 -dc ${DIR}/img.tar.lz4 | tar -t`).split('\n');
  const kernels = list.filter((p) => /^boot\/vmlinuz-\S+$/.test(p));
  assert.ok(kernels.length >= 1, 'no /boot/vmlinuz-*');
  const k = kernels[0]!.replace('boot/vmlinuz-', '');
  assert.ok(list.includes(`boot/initrd.img-${k}`), `no /boot/initrd.img-${k}`);
  assert.ok(list.includes(`lib/modules/${k}/`) || list.includes(`usr/lib/modules/${k}/`), `no modules for ${k}`);
  assert.not.ok(list.includes('.dockerenv'), '/.dockerenv must not be exported');
  const osRelease = sh(`lz4 -dc ${DIR}/img.tar.lz4 | tar -xO usr/lib/os-release`);
  assert.match(osRelease, /^VERSION_ID="12"$/m);
});

test('packages.txt is dpkg -l output listing frr, openssh-server and systemd', () => {
  const pk = readFileSync(join(DIR, 'packages.txt'), 'utf8');
  assert.match(pk, /^Desired=Unknown\/Install\/Remove\/Purge\/Hold/);
  for (const p of ['frr', 'openssh-server', 'systemd']) assert.match(pk, new RegExp(`^ii  ${p}(:amd64)?\\s`, 'm'), `${p} not installed`);
});

// ---- bad input: one-line cause, the fixing command, right exit code, nothing half-written ----

test('unknown OS: exit 2 with the known ones and the fix', async () => {
  const r = await cli(['build', 'foo']);
  assert.is(r.code, 2);
  assert.match(r.stderr, /^error: unknown OS "foo" \(known: .*debian.*\)$/m);
  assert.match(r.stderr, /fix: run one of: .*make debian/);
  const m = spawnSync('make', ['-s', 'foo'], { cwd: ROOT, encoding: 'utf8' });
  assert.is(m.status, 2);
  assert.match(m.stderr, /^error: unknown OS or target "foo" \(images: .*debian.*\)$/m);
});

test('docker daemon unreachable: exit 3, says so and how to fix', async () => {
  const r = await cli(['build', 'debian'], { env: { DOCKER_HOST: 'unix:///nonexistent/docker.sock', SKIP_VM_TEST: '1' } });
  assert.is(r.code, 3);
  assert.match(r.stderr, /^error: docker daemon not reachable$/m);
  assert.match(r.stderr, /fix: run `make setup`/);
});

test('setup with DOCKER_HOST at a daemon that does not answer: exit 3, starts no dockerd of its own', async () => {
  const r = await cli(['setup', '--quiet'], { env: { DOCKER_HOST: 'unix:///nonexistent/docker.sock' } });
  assert.is(r.code, 3, r.stderr);
  assert.match(r.stderr, /^error: docker daemon at DOCKER_HOST=unix:\/\/\/nonexistent\/docker\.sock not reachable$/m);
  assert.match(r.stderr, /fix: start that daemon, or unset DOCKER_HOST/);
});

test('missing buildx plugin: exit 3, one-line cause and the fix, nothing built', async () => {
  const state = mkdtempSync(join(tmpdir(), 'nobuildx-'));
  try {
    // a state dir with the Go tools but no .state/docker/cli-plugins/docker-buildx
    symlinkSync(config().binDir, join(state, 'bin'));
    const r = await cli(['build', 'debian'], { env: { METAL_STATE_DIR: state, SKIP_VM_TEST: '1' } });
    assert.is(r.code, 3, r.stderr);
    assert.match(r.stderr, new RegExp(`^error: the buildx plugin is missing \\(${state}/docker/cli-plugins/docker-buildx\\)$`, 'm'));
    assert.match(r.stderr, /fix: run `make setup` \(builds buildx/);
    assert.not.match(r.stdout, /^==> build$/m, 'nothing may be built');
  } finally {
    rmSync(state, { recursive: true, force: true });
  }
});

test('a daemon without BuildKit (or a builder that does not answer): exit 3, one-line cause and the fix', async () => {
  const r = await cli(['build', 'debian'], { env: { BUILDX_BUILDER: 'metal-no-such-builder', SKIP_VM_TEST: '1' } });
  assert.is(r.code, 3, r.stderr);
  assert.match(r.stderr, /^error: no BuildKit builder "metal-no-such-builder" answers: .*$/m);
  assert.match(r.stderr, /fix: check the builder: DOCKER_CONFIG=.* docker buildx inspect metal-no-such-builder \(or unset BUILDX_BUILDER/);
  assert.not.match(r.stdout, /^==> build$/m, 'nothing may be built');
});

test('missing tool: exit 3 naming the tool and the package', async () => {
  const bin = mkdtempSync(join(tmpdir(), 'nolz4-'));
  try {
    for (const t of ['sh', 'bash', 'docker', 'mmdebstrap', 'qemu-system-x86_64', 'mke2fs', 'ssh', 'ssh-keygen', 'git', 'env']) {
      const p = sh(`command -v ${t} || true`).trim();
      if (p) symlinkSync(p, join(bin, t));
    }
    const r = await cli(['build', 'debian'], { env: { PATH: bin, SKIP_VM_TEST: '1' } });
    assert.is(r.code, 3);
    assert.match(r.stderr, /^error: lz4 is not installed$/m);
    assert.match(r.stderr, /fix: run make setup \(installs lz4\)/);
  } finally {
    rmSync(bin, { recursive: true, force: true });
  }
});

/** Containers a given CLI process created (every container the project makes carries its pid). */
const containersOf = (pid: number): string => sh(`docker ps -aq --filter label=${OWNER_LABEL}=${pid}`).trim();

/** The export's in-flight set beside images/debian/12 has begun its img.tar.lz4. */
const exporting = (parent: string): boolean => existsSync(parent) && readdirSync(parent).some((d) => d.startsWith('.12.partial-') && existsSync(join(parent, d, 'img.tar.lz4')));

test('interrupted export (Ctrl-C): exit 130, no set that looks complete, nothing in flight, no leftover container', async () => {
  const out = mkdtempSync(join(tmpdir(), 'export-int-'));
  try {
    const target = join(out, 'debian', '12');
    const r = await cli(['export', 'debian'], {
      env: { METAL_IMAGES_DIR: out },
      signalAfter: { when: () => exporting(join(out, 'debian')), signal: 'SIGINT' },
    });
    assert.is(r.code, 130, r.stderr);
    assert.match(r.stderr, /interrupted/);
    assert.equal(existsSync(target) ? readdirSync(target) : [], []);
    assert.equal(readdirSync(join(out, 'debian')).filter((d) => d !== '12'), [], 'the in-flight set was removed');
    assert.ok(r.pid > 0);
    assert.is(containersOf(r.pid), '', 'the export container was not removed');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('full disk: exit 3 before writing, with the fix', async () => {
  const mnt = mkdtempSync(join(tmpdir(), 'full-'));
  sh(`mount -t tmpfs -o size=8m tmpfs ${mnt}`);
  try {
    mkdirSync(join(mnt, 'x'));
    const r = await cli(['export', 'debian'], { env: { METAL_IMAGES_DIR: join(mnt, 'x') } });
    assert.is(r.code, 3);
    assert.match(r.stderr, /^error: not enough disk space in .*: 8\.0 MiB free, about .* needed$/m);
    assert.match(r.stderr, /fix: free space on that file system \(df -h .*\) and re-run/);
    assert.equal(readdirSync(join(mnt, 'x', 'debian', '12')), []);
  } finally {
    sh(`umount ${mnt}`);
    rmSync(mnt, { recursive: true, force: true });
  }
});

test.run();
