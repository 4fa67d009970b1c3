// make release under faults, against a real S3 server (versitygw, started here) with real
// processes: an export finishing mid-upload, a file rewritten in place, two releases at once, a
// stalled server, stray and symlinked folders under images/. After each, what the store holds must
// be consistent as metal-image-cache-sync and the metal-hammer see it: every listed image's .md5
// names that image's bytes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, openSync, closeSync, renameSync, rmSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KEYS } from '../../scripts/lib/config.ts';
import { cli, type CliResult } from '../helpers/cli.ts';
import { fakeImage } from '../helpers/fake-image.ts';
import { startS3Server, startThrottledProxy, type S3Server } from '../helpers/s3server.ts';

const MiB = 1024 * 1024;
let server: S3Server;
const scratch = mkdtempSync(join(tmpdir(), 'metal-release-faults-'));

test.before(async () => {
  server = await startS3Server();
});
test.after(async () => {
  await server?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

/** The CLI as make runs it, with only this configuration: other keys blanked, no .env read. */
function release(env: Record<string, string>): Promise<CliResult> {
  return cli(['release'], { env: { ...Object.fromEntries(KEYS.map((k) => [k, ''])), METAL_ENV_FILE: '/dev/null', PUBLIC_BASE_URL: 'https://images.example.test/', ...env } });
}

async function text(key: string): Promise<string | null> {
  try {
    return await (await server.client.send(new GetObjectCommand({ Bucket: server.bucket, Key: key }))).Body!.transformToString();
  } catch (e) {
    if ((e as { name?: string }).name === 'NoSuchKey') return null;
    throw e;
  }
}
async function md5OfObject(key: string): Promise<string> {
  const r = await server.client.send(new GetObjectCommand({ Bucket: server.bucket, Key: key }));
  return createHash('md5').update(await r.Body!.transformToByteArray()).digest('hex');
}
async function keys(prefix: string): Promise<string[]> {
  const r = await server.client.send(new ListObjectsV2Command({ Bucket: server.bucket, Prefix: `${prefix}/` }));
  return (r.Contents ?? []).map((o) => o.Key!).sort();
}
async function unfinished(key: string): Promise<number> {
  const r = await server.client.send(new ListMultipartUploadsCommand({ Bucket: server.bucket, Prefix: key }));
  return (r.Uploads ?? []).filter((u) => u.Key === key).length;
}
async function exists(key: string): Promise<boolean> {
  try {
    await server.client.send(new HeadObjectCommand({ Bucket: server.bucket, Key: key }));
    return true;
  } catch {
    return false;
  }
}

/** Every image with an .md5 beside it (what cache-sync takes) has an .md5 naming its bytes. */
async function assertConsistent(prefix: string): Promise<void> {
  for (const k of await keys(prefix)) {
    if (!k.endsWith('/img.tar.lz4.md5')) continue;
    const image = k.slice(0, -'.md5'.length);
    const md5 = (await text(k))!.split(' ')[0];
    assert.is(md5, (await exists(image)) ? await md5OfObject(image) : '(no image)', `${k} names other bytes than ${image}`);
  }
}

/** Resolves once the server holds an unfinished multipart upload of `key` (with at least `parts` parts). */
async function uploadUnderway(key: string, parts = 0, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ups = await server.client.send(new ListMultipartUploadsCommand({ Bucket: server.bucket, Prefix: key }));
    const id = ups.Uploads?.find((u) => u.Key === key)?.UploadId;
    if (id) {
      if (parts === 0) return;
      const { ListPartsCommand } = await import('@aws-sdk/client-s3');
      if (((await server.client.send(new ListPartsCommand({ Bucket: server.bucket, Key: key, UploadId: id }))).Parts?.length ?? 0) >= parts) return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no upload of ${key} under way within ${timeoutMs} ms`);
}

test('an export that finishes during the upload changes nothing published: release publishes the bytes it checked', async () => {
  const prefix = 'metal-os/pull_requests/export-meanwhile';
  const key = `${prefix}/debian/12/img.tar.lz4`;
  const images = join(scratch, 'export-meanwhile');
  const packages = 'ii  bash  5.2.15-2+b2  amd64  GNU Bourne Again SHell\n';
  const checked = fakeImage(images, 'debian', '12', 34 * MiB, packages);
  const proxy = await startThrottledProxy(server.port, 8 * MiB);
  try {
    const running = release({ ...server.env, S3_ENDPOINT: proxy.endpoint, PUBLISH_PREFIX: prefix, METAL_IMAGES_DIR: images });
    await uploadUnderway(key, 1);
    // the export of a rebuilt image finishes now: same packages, new image bytes and md5, each
    // written as .partial and renamed into place, the md5 last
    const next = fakeImage(images, 'debian', '12', 34 * MiB, packages);
    const r = await running;
    await assertConsistent(prefix);
    assert.is(await text(`${key}.md5`), `${checked.md5}  img.tar.lz4\n`, 'the .md5 published is the one checked');
    assert.is(await md5OfObject(key), checked.md5);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, /img\.tar\.lz4\.md5 was replaced meanwhile; what was published is the file as it was checked/);
    assert.ok(next.md5 !== checked.md5);
  } finally {
    await proxy.close();
  }
});

test('a file rewritten in place while it uploads fails the release and leaves no .md5 pointing at other bytes', async () => {
  const prefix = 'metal-os/pull_requests/in-place';
  const key = `${prefix}/debian/12/img.tar.lz4`;
  const images = join(scratch, 'in-place');
  // the previous release under this prefix: a consistent pair
  fakeImage(images, 'debian', '12', 1 * MiB);
  assert.is((await release({ ...server.env, PUBLISH_PREFIX: prefix, METAL_IMAGES_DIR: images })).code, 0);
  // 96 MiB in 16 MiB parts: four are read while the first ones upload, the last ones later
  const img = fakeImage(images, 'debian', '12', 96 * MiB);
  const proxy = await startThrottledProxy(server.port, 16 * MiB);
  try {
    const running = release({ ...server.env, S3_ENDPOINT: proxy.endpoint, PUBLISH_PREFIX: prefix, METAL_IMAGES_DIR: images });
    await uploadUnderway(key);
    const fd = openSync(join(img.dir, 'img.tar.lz4'), 'r+');
    writeSync(fd, randomBytes(64 * 1024), 0, 64 * 1024, 90 * MiB);
    closeSync(fd);
    const r = await running;
    await assertConsistent(prefix);
    assert.is(await text(`${key}.md5`), null);
    assert.is(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`error: .*img\\.tar\\.lz4 changed while it was uploaded \\(md5 ${img.md5} when checked, [0-9a-f]{32} as sent\\): ${key} holds other bytes, and no \\.md5 beside it\\n`));
  } finally {
    await proxy.close();
  }
});

test('a second release to a busy prefix stops with one line and leaves the first one\'s upload alone', async () => {
  const prefix = 'metal-os/pull_requests/two-runs';
  const key = `${prefix}/debian/12/img.tar.lz4`;
  const images = join(scratch, 'two-runs');
  const img = fakeImage(images, 'debian', '12', 34 * MiB);
  const proxy = await startThrottledProxy(server.port, 8 * MiB);
  try {
    const first = release({ ...server.env, S3_ENDPOINT: proxy.endpoint, PUBLISH_PREFIX: prefix, METAL_IMAGES_DIR: images });
    await uploadUnderway(key, 1);
    const second = await release({ ...server.env, PUBLISH_PREFIX: prefix, METAL_IMAGES_DIR: images });
    assert.is(second.code, 3, second.stdout + second.stderr);
    assert.match(
      second.stderr,
      /^error: metal-os\/pull_requests\/two-runs\/ is busy: release by \S+@\S+ \(pid \d+, checkout \/\S+\), started \S+ holds it \(process \d+ is running\)\n {2}fix: wait for it to finish, then re-run make release \(a lock not refreshed for 5 min counts as abandoned\)\n$/,
    );
    const r = await first;
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, /1 image\(s\) listed with their \.md5/);
    assert.is(await text(`${key}.md5`), `${img.md5}  img.tar.lz4\n`);
    assert.is(await md5OfObject(key), img.md5);
    assert.is(await unfinished(key), 0);
    assert.not.ok(await exists(`${prefix}/.release-lock`), 'the lock is given up');
  } finally {
    await proxy.close();
  }
});

test('a stalled server fails the release within 3 attempts of S3_STALL_TIMEOUT, not minutes', async () => {
  const prefix = 'metal-os/pull_requests/stalled';
  const key = `${prefix}/debian/12/img.tar.lz4`;
  const images = join(scratch, 'stalled');
  fakeImage(images, 'debian', '12', 34 * MiB);
  const stall = 2; // seconds (default 30)
  const proxy = await startThrottledProxy(server.port, 8 * MiB);
  try {
    const running = release({ ...server.env, S3_ENDPOINT: proxy.endpoint, PUBLISH_PREFIX: prefix, METAL_IMAGES_DIR: images, S3_STALL_TIMEOUT: String(stall) });
    await uploadUnderway(key, 1);
    proxy.stall();
    const t0 = Date.now();
    const r = await running;
    const s = (Date.now() - t0) / 1000;
    assert.is(r.code, 3, r.stderr);
    assert.match(r.stderr, new RegExp(`^error: S3 store ${proxy.endpoint.replace(/\./g, '\\.')} is not reachable \\(timed out\\) during upload ${key}$`, 'm'));
    // 3 attempts of `stall` s, then one short attempt each to abort the upload and give up the lock
    assert.ok(s >= 3 * stall, `failed after ${s} s: fewer than 3 attempts?`);
    assert.ok(s <= 3 * (stall + 0.5) + 2 * (stall + 0.5) + 3, `failed after ${s} s`);
    assert.is(await text(`${key}.md5`), null);
  } finally {
    await proxy.close();
  }
});

test('only folders an image.yaml defines are published: 12-bak is set aside, a symlinked image folder is refused', async () => {
  const prefix = 'metal-os/pull_requests/folders';
  const images = join(scratch, 'folders');
  fakeImage(images, 'debian', '12', 64 * 1024);
  fakeImage(images, 'debian', '12-bak', 64 * 1024);
  const r = await release({ ...server.env, PUBLISH_PREFIX: prefix, METAL_IMAGES_DIR: images });
  assert.is(r.code, 0, r.stderr);
  assert.equal(await keys(prefix), [`${prefix}/debian/12/build.json`, `${prefix}/debian/12/img.tar.lz4`, `${prefix}/debian/12/img.tar.lz4.md5`, `${prefix}/debian/12/img.tar.lz4.spdx.json`, `${prefix}/debian/12/packages.txt`]);
  assert.match(r.stdout, /warning: not published: \S*folders\/debian\/12-bak: no image\.yaml defines debian\/12-bak \(defined: .*debian\/12.*\)\n/);

  const linked = join(scratch, 'linked');
  mkdirSync(join(linked, 'debian'), { recursive: true });
  symlinkSync(join(images, 'debian', '12'), join(linked, 'debian', '12'));
  const l = await release({ ...server.env, PUBLISH_PREFIX: 'metal-os/pull_requests/linked', METAL_IMAGES_DIR: linked });
  assert.is(l.code, 3, l.stdout + l.stderr);
  assert.match(l.stderr, /^error: \S*linked\/debian\/12 is a symlink: release publishes only what the export wrote under images\/\n {2}fix: /);
  assert.equal(await keys('metal-os/pull_requests/linked'), []);
  // a symlinked file in a real folder
  const file = join(scratch, 'file-link');
  const f = fakeImage(file, 'debian', '12', 64 * 1024);
  renameSync(join(f.dir, 'img.tar.lz4'), join(scratch, 'elsewhere.lz4'));
  symlinkSync(join(scratch, 'elsewhere.lz4'), join(f.dir, 'img.tar.lz4'));
  writeFileSync(join(f.dir, 'note'), 'the image is elsewhere');
  const fl = await release({ ...server.env, PUBLISH_PREFIX: 'metal-os/pull_requests/file-link', METAL_IMAGES_DIR: file });
  assert.is(fl.code, 3, fl.stdout + fl.stderr);
  assert.match(fl.stderr, /^error: \S*file-link\/debian\/12\/img\.tar\.lz4 is a symlink: release publishes only what the export wrote\n/);
  assert.equal(await keys('metal-os/pull_requests/file-link'), []);
});

test('the GPU image of nvidia/ is published as metal-stack names it: debian-nvidia/12, image id debian-nvidia-12.0.<date>', async () => {
  const prefix = 'metal-os/20240105';
  const images = join(scratch, 'gpu');
  fakeImage(images, 'nvidia', '12', 64 * 1024);
  const r = await release({ ...server.env, PUBLISH_PREFIX: prefix, METAL_IMAGES_DIR: images });
  assert.is(r.code, 0, r.stdout + r.stderr);
  assert.equal(await keys(prefix), ['build.json', 'img.tar.lz4', 'img.tar.lz4.md5', 'img.tar.lz4.spdx.json', 'packages.txt'].map((f) => `${prefix}/debian-nvidia/12/${f}`));
  assert.match(r.stdout, /debian-nvidia-12\.0\.20240105/);
  await assertConsistent(prefix);
});

test('an untested image is not published (its record lacks a passing VM test); FORCE=1 publishes it, and the store says untested', async () => {
  const prefix = 'metal-os/pull_requests/untested';
  const images = join(scratch, 'untested');
  const f = fakeImage(images, 'debian', '12', 64 * 1024, undefined, { tested: false });
  const r = await release({ ...server.env, PUBLISH_PREFIX: prefix, METAL_IMAGES_DIR: images });
  assert.is(r.code, 3, r.stdout + r.stderr);
  assert.match(r.stderr, /^error: \S*untested\/debian\/12 is not published: it was not linted\n {2}fix: run make lint OS=debian, then make vmtest OS=debian\n/m);
  assert.equal(await keys(prefix), [], 'nothing written');

  // the lint ran, the VM test was skipped (SKIP_VM_TEST=1 make debian): still refused
  const rec = JSON.parse(readFileSync(join(f.dir, 'build.json'), 'utf8'));
  rec.lint = { verdict: 'pass', md5: f.md5, errors: 0, warnings: 0, entries: 1 };
  rec.vmtest = { verdict: 'skipped', reason: 'SKIP_VM_TEST=1', md5: f.md5, goss: [] };
  writeFileSync(join(f.dir, 'build.json'), JSON.stringify(rec));
  const s = await release({ ...server.env, PUBLISH_PREFIX: prefix, METAL_IMAGES_DIR: images });
  assert.is(s.code, 3);
  assert.match(s.stderr, /is not published: its VM test was skipped \(SKIP_VM_TEST=1\)\n {2}fix: run make vmtest OS=debian\n/);
  // an image whose bytes are not the record's (make export after the test, a copied file)
  writeFileSync(join(f.dir, 'build.json'), JSON.stringify({ ...rec, export: { ...rec.export, md5: '0'.repeat(32) } }));
  const o = await release({ ...server.env, PUBLISH_PREFIX: prefix, METAL_IMAGES_DIR: images });
  assert.match(o.stderr, /is not published: its img\.tar\.lz4 \(md5 [0-9a-f]{8}…\) is not the one the build record exported \(00000000…\)/);
  assert.equal(await keys(prefix), []);

  const forced = await cli(['release'], { env: { ...Object.fromEntries(KEYS.map((k) => [k, ''])), METAL_ENV_FILE: '/dev/null', PUBLIC_BASE_URL: 'https://images.example.test/', ...server.env, PUBLISH_PREFIX: prefix, METAL_IMAGES_DIR: images, METAL_MAKE_FORCE: '1' } });
  assert.is(forced.code, 0, forced.stdout + forced.stderr);
  assert.match(forced.stdout, /published untested \(FORCE=1\): its img\.tar\.lz4/);
  const published = JSON.parse((await text(`${prefix}/debian/12/build.json`))!);
  assert.match(published.released_untested, /is not the one the build record exported/);
  await assertConsistent(prefix);
  const d = await cli(['downloads'], { env: { ...Object.fromEntries(KEYS.map((k) => [k, ''])), METAL_ENV_FILE: '/dev/null', PUBLIC_BASE_URL: 'https://images.example.test/', ...server.env, METAL_MAKE_PREFIX: prefix } });
  assert.is(d.code, 0, d.stderr);
  assert.match(d.stdout, /\| untested \(its img\.tar\.lz4 .*\) \|\n/);
});

test.run();
