// make release / promote / downloads against a real S3 server: versitygw (posix backend, temp dir,
// 127.0.0.1, free port) started here and stopped afterwards. No mocks: every byte goes over HTTP.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListPartsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KEYS, ROOT, type Env } from '../../scripts/lib/config.ts';
import { PreconditionError, ToolError, UsageError } from '../../scripts/lib/errors.ts';
import { parseMd5File } from '../../scripts/lib/md5file.ts';
import { run, stream } from '../../scripts/lib/shell.ts';
import { downloads } from '../../scripts/release/downloads.ts';
import { listedImages } from '../../scripts/release/plan.ts';
import { promote } from '../../scripts/release/promote.ts';
import { publish } from '../../scripts/release/publish.ts';
import { Store, storeSettings } from '../../scripts/release/store.ts';
import { fakeImage, type Fake } from '../helpers/fake-image.ts';
import { freePort, startS3Server, startThrottledProxy, type S3Server } from '../helpers/s3server.ts';

const MiB = 1024 * 1024;
const BASE = 'https://images.example.test/';
let server: S3Server;
const scratch = mkdtempSync(join(tmpdir(), 'metal-s3-test-'));

let imagesDir = '';
let debian: Fake;
let firewall: Fake;

const envFor = (extra: Env): Env => ({ ...server.env, PUBLIC_BASE_URL: BASE, ...extra });

async function head(key: string) {
  try {
    return await server.client.send(new HeadObjectCommand({ Bucket: server.bucket, Key: key }));
  } catch (e) {
    if ((e as { name?: string }).name === 'NotFound') return null;
    throw e;
  }
}

async function text(key: string): Promise<string | null> {
  try {
    const r = await server.client.send(new GetObjectCommand({ Bucket: server.bucket, Key: key }));
    return await r.Body!.transformToString();
  } catch (e) {
    if ((e as { name?: string }).name === 'NoSuchKey') return null;
    throw e;
  }
}

async function md5OfObject(key: string): Promise<string> {
  const r = await server.client.send(new GetObjectCommand({ Bucket: server.bucket, Key: key }));
  return createHash('md5').update(await r.Body!.transformToByteArray()).digest('hex');
}

async function listed(prefix: string) {
  const store = new Store(storeSettings(server.env));
  try {
    return listedImages(await store.list(prefix), prefix);
  } finally {
    store.destroy();
  }
}

/** `node scripts/cli.ts ...` with only the given configuration: every other key blanked, no .env read. */
function cliEnv(extra: Record<string, string>): Record<string, string> {
  return { ...Object.fromEntries(KEYS.map((k) => [k, ''])), METAL_ENV_FILE: '/dev/null', FORCE_COLOR: '0', PUBLIC_BASE_URL: BASE, ...extra };
}
async function cli(args: string[], env: Record<string, string>) {
  return run(['node', '--import', 'tsx', 'scripts/cli.ts', ...args], { cwd: ROOT, env: cliEnv(env), nothrow: true, timeoutMs: 60_000 });
}

async function rejects(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new assert.Assertion({ message: 'expected a rejection', generated: false, operator: 'rejects', expects: 'rejection', actual: 'resolved' });
}

test.before(async () => {
  server = await startS3Server();
  imagesDir = join(scratch, 'images');
  // 16 MiB + 5: two parts, so the multipart path and its ETag are exercised; firewall is one PUT.
  debian = fakeImage(imagesDir, 'debian', '12', 16 * MiB + 5);
  firewall = fakeImage(imagesDir, 'firewall', '3.0-ubuntu', 64 * 1024);
});

test.after(async () => {
  await server?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

test('stable: the GitLab default branch publishes every image, md5 last, no-store', async () => {
  const r = await publish({ env: envFor({ CI_COMMIT_REF_NAME: 'master', CI_DEFAULT_BRANCH: 'master', CI_COMMIT_REF_SLUG: 'master' }), imagesDir, quiet: true });
  assert.is(r.target.prefix, 'metal-os/stable');
  assert.equal(
    r.objects.map((o) => [o.key, o.action]),
    [
      ['metal-os/stable/debian/12/img.tar.lz4', 'uploaded'],
      ['metal-os/stable/debian/12/packages.txt', 'uploaded'],
      ['metal-os/stable/debian/12/img.tar.lz4.spdx.json', 'uploaded'],
      ['metal-os/stable/debian/12/build.json', 'uploaded'],
      ['metal-os/stable/debian/12/img.tar.lz4.md5', 'uploaded'],
      ['metal-os/stable/firewall/3.0-ubuntu/img.tar.lz4', 'uploaded'],
      ['metal-os/stable/firewall/3.0-ubuntu/packages.txt', 'uploaded'],
      ['metal-os/stable/firewall/3.0-ubuntu/img.tar.lz4.spdx.json', 'uploaded'],
      ['metal-os/stable/firewall/3.0-ubuntu/build.json', 'uploaded'],
      ['metal-os/stable/firewall/3.0-ubuntu/img.tar.lz4.md5', 'uploaded'],
    ],
  );
  assert.is(r.objects[0]!.url, `${BASE}metal-os/stable/debian/12/img.tar.lz4`);
  assert.match(r.objects[0]!.id, /^debian-12\.0\.\d{8}$/);
  assert.match(r.objects[5]!.id, /^firewall-3\.0-ubuntu\.\d{8}$/);
  const img = await head('metal-os/stable/debian/12/img.tar.lz4');
  assert.is(img?.ContentLength, debian.size);
  assert.is(img?.CacheControl, 'no-store');
  assert.is(img?.Metadata?.['md5'], debian.md5);
  assert.is((await head('metal-os/stable/debian/12/packages.txt'))?.CacheControl, 'no-store');
  assert.is(await text('metal-os/stable/debian/12/img.tar.lz4.md5'), `${debian.md5}  img.tar.lz4\n`);
  assert.is(await md5OfObject('metal-os/stable/debian/12/img.tar.lz4'), debian.md5);
  assert.is(await text('metal-os/stable/firewall/3.0-ubuntu/img.tar.lz4.md5'), `${firewall.md5}  img.tar.lz4\n`);
});

test('a re-run skips identical objects', async () => {
  const before = await head('metal-os/stable/debian/12/img.tar.lz4');
  const r = await publish({ env: envFor({ PUBLISH_PREFIX: 'metal-os/stable' }), imagesDir, quiet: true });
  assert.equal([...new Set(r.objects.map((o) => o.action))], ['skipped']);
  assert.is(r.objects.length, 10);
  const after = await head('metal-os/stable/debian/12/img.tar.lz4');
  assert.is(after?.ETag, before?.ETag);
  assert.is(after?.LastModified?.getTime(), before?.LastModified?.getTime());
});

test('release: a GitHub date tag publishes under the date, without no-store', async () => {
  const r = await publish({ env: envFor({ GITHUB_ACTIONS: 'true', GITHUB_REF: 'refs/tags/20230710', GITHUB_EVENT_NAME: 'push' }), imagesDir, quiet: true });
  assert.is(r.target.prefix, 'metal-os/20230710');
  assert.equal(r.objects.map((o) => o.id), [...Array(5).fill('debian-12.0.20230710'), ...Array(5).fill('firewall-3.0-ubuntu.20230710')]);
  assert.is(r.objects[0]!.url, `${BASE}metal-os/20230710/debian/12/img.tar.lz4`);
  assert.is((await head('metal-os/20230710/debian/12/img.tar.lz4'))?.CacheControl, undefined);
  assert.is(await text('metal-os/20230710/debian/12/img.tar.lz4.md5'), `${debian.md5}  img.tar.lz4\n`);
});

test('a tag that is not a calendar date publishes nothing (no immutable release under today\'s date)', async () => {
  const now = new Date('2024-02-29T23:30:00Z');
  for (const env of [{ CI_COMMIT_TAG: 'v1.2.3' }, { CI_COMMIT_TAG: '20230231' }, { GITHUB_ACTIONS: 'true', GITHUB_REF: 'refs/tags/' }]) {
    const e = await rejects(publish({ env: envFor(env), imagesDir, quiet: true, now }));
    assert.instance(e, UsageError);
    assert.match(e.message, /^(GitLab|GitHub) .*: releases are published as metal-os\/<YYYYMMDD>\/$/);
  }
  const store = new Store(storeSettings(server.env));
  try {
    assert.equal(await store.list('metal-os/20240229'), []);
  } finally {
    store.destroy();
  }
});

test('pull request: a GitLab branch without CI_COMMIT_REF_SLUG gets the computed slug', async () => {
  const r = await publish({ env: envFor({ CI_COMMIT_REF_NAME: 'Feature/Foo_Bar', CI_DEFAULT_BRANCH: 'master' }), imagesDir, quiet: true });
  assert.is(r.target.prefix, 'metal-os/pull_requests/feature-foo-bar');
  assert.is((await head('metal-os/pull_requests/feature-foo-bar/debian/12/img.tar.lz4'))?.CacheControl, 'no-store');
  assert.is(await text('metal-os/pull_requests/feature-foo-bar/firewall/3.0-ubuntu/img.tar.lz4.md5'), `${firewall.md5}  img.tar.lz4\n`);
});

test('override: PUBLISH_PREFIX wins over the CI environment', async () => {
  const r = await publish({ env: envFor({ PUBLISH_PREFIX: 'metal-os/pull_requests/local', CI_COMMIT_TAG: '20230710' }), imagesDir, quiet: true });
  assert.is(r.target.prefix, 'metal-os/pull_requests/local');
  assert.is(await text('metal-os/pull_requests/local/debian/12/img.tar.lz4.md5'), `${debian.md5}  img.tar.lz4\n`);
});

test('release objects are immutable: a different image is refused, forcing overwrites', async () => {
  const otherDir = join(scratch, 'other-images');
  const changed = fakeImage(otherDir, 'debian', '12', 2 * MiB);
  const env = envFor({ PUBLISH_PREFIX: 'metal-os/20230710' });
  const e = await rejects(publish({ env, imagesDir: otherDir, quiet: true }));
  assert.instance(e, PreconditionError);
  assert.is(e.message, 'metal-os/20230710/debian/12/img.tar.lz4 already exists with other content (and 4 more), and metal-os/20230710/ is a release: its objects are immutable');
  assert.is((e as PreconditionError).hint, 'release under a new date, or re-run with make release FORCE=1 to overwrite');
  assert.is(await text('metal-os/20230710/debian/12/img.tar.lz4.md5'), `${debian.md5}  img.tar.lz4\n`);
  assert.is(await md5OfObject('metal-os/20230710/debian/12/img.tar.lz4'), debian.md5);

  const r = await publish({ env, imagesDir: otherDir, quiet: true, force: true });
  assert.equal(r.objects.map((o) => o.action), ['uploaded', 'uploaded', 'uploaded', 'uploaded', 'uploaded']);
  assert.is(await text('metal-os/20230710/debian/12/img.tar.lz4.md5'), `${changed.md5}  img.tar.lz4\n`);
  // put the original back for the downloads test
  await publish({ env, imagesDir, quiet: true, force: true });
  assert.is(await text('metal-os/20230710/debian/12/img.tar.lz4.md5'), `${debian.md5}  img.tar.lz4\n`);
});

test('downloads: the markdown table of a prefix, as metal-image-cache-sync sees it', async () => {
  // an image without its .md5 does not count
  await server.client.send(new PutObjectCommand({ Bucket: server.bucket, Key: 'metal-os/20230710/ubuntu/22.04/img.tar.lz4', Body: 'partial' }));
  const r = await downloads({ env: envFor({}), prefix: '20230710' });
  assert.is(r.prefix, 'metal-os/20230710');
  assert.is(
    r.markdown,
    '| Image | URL | MD5 | Packages | Tested |\n' +
      '| --- | --- | --- | --- | --- |\n' +
      `| debian-12.0.20230710 | ${BASE}metal-os/20230710/debian/12/img.tar.lz4 | ${debian.md5} | [packages.txt](${BASE}metal-os/20230710/debian/12/packages.txt) | lint ok, VM 3/3 goss |\n` +
      `| firewall-3.0-ubuntu.20230710 | ${BASE}metal-os/20230710/firewall/3.0-ubuntu/img.tar.lz4 | ${firewall.md5} | [packages.txt](${BASE}metal-os/20230710/firewall/3.0-ubuntu/packages.txt) | lint ok, VM 3/3 goss |\n`,
  );
  // without a prefix: where this environment publishes
  const stable = await downloads({ env: envFor({ CI_COMMIT_REF_NAME: 'master', CI_DEFAULT_BRANCH: 'master' }) });
  assert.is(stable.prefix, 'metal-os/stable');
  assert.equal(stable.rows.map((x) => x.md5), [debian.md5, firewall.md5]);
});

test('promote: stable is copied server-side to the release date, md5 last, verified, idempotent', async () => {
  const env = envFor({});
  const dry = await promote({ env, date: '20230801', quiet: true, dryRun: true });
  assert.equal([...new Set(dry.objects.map((o) => o.action))], ['would copy']);
  assert.equal(await listed('metal-os/20230801'), []);
  const r = await promote({ env, date: '20230801', quiet: true });
  assert.is(r.target.prefix, 'metal-os/20230801');
  assert.equal(
    r.objects.map((o) => [o.from, o.key, o.action]),
    [
      ['metal-os/stable/debian/12/img.tar.lz4', 'metal-os/20230801/debian/12/img.tar.lz4', 'copied'],
      ['metal-os/stable/debian/12/packages.txt', 'metal-os/20230801/debian/12/packages.txt', 'copied'],
      ['metal-os/stable/debian/12/img.tar.lz4.spdx.json', 'metal-os/20230801/debian/12/img.tar.lz4.spdx.json', 'copied'],
      ['metal-os/stable/debian/12/build.json', 'metal-os/20230801/debian/12/build.json', 'copied'],
      ['metal-os/stable/debian/12/img.tar.lz4.md5', 'metal-os/20230801/debian/12/img.tar.lz4.md5', 'copied'],
      ['metal-os/stable/firewall/3.0-ubuntu/img.tar.lz4', 'metal-os/20230801/firewall/3.0-ubuntu/img.tar.lz4', 'copied'],
      ['metal-os/stable/firewall/3.0-ubuntu/packages.txt', 'metal-os/20230801/firewall/3.0-ubuntu/packages.txt', 'copied'],
      ['metal-os/stable/firewall/3.0-ubuntu/img.tar.lz4.spdx.json', 'metal-os/20230801/firewall/3.0-ubuntu/img.tar.lz4.spdx.json', 'copied'],
      ['metal-os/stable/firewall/3.0-ubuntu/build.json', 'metal-os/20230801/firewall/3.0-ubuntu/build.json', 'copied'],
      ['metal-os/stable/firewall/3.0-ubuntu/img.tar.lz4.md5', 'metal-os/20230801/firewall/3.0-ubuntu/img.tar.lz4.md5', 'copied'],
    ],
  );
  assert.is(r.objects[0]!.id, 'debian-12.0.20230801');
  assert.is(await text('metal-os/20230801/debian/12/img.tar.lz4.md5'), `${debian.md5}  img.tar.lz4\n`);
  assert.is(await md5OfObject('metal-os/20230801/debian/12/img.tar.lz4'), debian.md5);
  assert.is((await head('metal-os/20230801/debian/12/img.tar.lz4'))?.CacheControl, undefined);
  assert.equal((await listed('metal-os/20230801')).map((i) => i.imageKey), ['metal-os/20230801/debian/12/img.tar.lz4', 'metal-os/20230801/firewall/3.0-ubuntu/img.tar.lz4']);

  const again = await promote({ env: envFor({ DATE: '20230801' }), quiet: true });
  assert.equal([...new Set(again.objects.map((o) => o.action))], ['skipped']);

  // stable moves on; the release stays as it was
  const movedDir = join(scratch, 'moved');
  fakeImage(movedDir, 'debian', '12', 1 * MiB);
  await publish({ env: envFor({ PUBLISH_PREFIX: 'metal-os/stable' }), imagesDir: movedDir, quiet: true });
  const e = await rejects(promote({ env, date: '20230801', quiet: true }));
  assert.instance(e, PreconditionError);
  assert.is(e.message, 'metal-os/20230801/debian/12/img.tar.lz4 already exists with other content (and 4 more), and metal-os/20230801/ is a release: its objects are immutable');
  assert.is(await md5OfObject('metal-os/20230801/debian/12/img.tar.lz4'), debian.md5);
});

test('DRY_RUN=1 prints every key and URL and needs no credentials', async () => {
  const r = await cli(['release'], { DRY_RUN: '1', PUBLISH_PREFIX: 'metal-os/20230710', METAL_IMAGES_DIR: imagesDir });
  assert.is(r.code, 0, r.stderr);
  for (const f of ['img.tar.lz4', 'packages.txt', 'img.tar.lz4.spdx.json', 'img.tar.lz4.md5']) {
    for (const img of ['debian/12', 'firewall/3.0-ubuntu']) {
      const key = `metal-os/20230710/${img}/${f}`;
      assert.match(r.stdout, new RegExp(` ${key.replace(/\./g, '\\.')} +would upload +[0-9.]+ [KM]?i?B +${(BASE + key).replace(/\./g, '\\.')}\n`), `${key} in:\n${r.stdout}`);
    }
  }
  assert.match(r.stdout, /\ndebian-12\.0\.20230710 +metal-os\/20230710\/debian\/12\/img\.tar\.lz4 +would upload +16\.0 MiB +https:\/\/images\.example\.test\/metal-os\/20230710\/debian\/12\/img\.tar\.lz4\n/);
  assert.match(r.stdout, /\[dry-run\] 10 object\(s\) under metal-os\/20230710\/ would be written; nothing was/);
});

test('wrong credentials: a one-line error with the fix, no secret printed', async () => {
  const secret = 'not-the-secret-0123456789';
  const r = await cli(['release'], { ...server.env, S3_SECRET_ACCESS_KEY: secret, PUBLISH_PREFIX: 'metal-os/stable', METAL_IMAGES_DIR: imagesDir });
  assert.is(r.code, 3);
  assert.is(r.stderr, `error: S3 store ${server.endpoint} rejected the credentials (SignatureDoesNotMatch)\n  fix: check S3_ACCESS_KEY_ID/S3_SECRET_ACCESS_KEY in .env\n`);
  assert.not.ok((r.stdout + r.stderr).includes(secret));
  assert.not.ok((r.stdout + r.stderr).includes(server.env.S3_SECRET_ACCESS_KEY));

  // an unknown access key is the same kind of error
  const e = await rejects(publish({ env: envFor({ S3_ACCESS_KEY_ID: 'nobody', PUBLISH_PREFIX: 'metal-os/stable' }), imagesDir, quiet: true }));
  assert.instance(e, PreconditionError);
  assert.match(e.message, /^S3 store http:\/\/127\.0\.0\.1:\d+ rejected the credentials \(\w+\)$/);
});

test('unreachable endpoint: an error within seconds, not a hang', async () => {
  const closed = `http://127.0.0.1:${await freePort()}`;
  let t0 = Date.now();
  let e = await rejects(downloads({ env: envFor({ S3_ENDPOINT: closed }), prefix: 'stable' }));
  assert.instance(e, PreconditionError);
  assert.is(e.message, `S3 store ${closed} is not reachable (ECONNREFUSED) during list metal-os/stable/`);
  assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);

  // a server that accepts connections and never answers
  const sockets: Socket[] = [];
  const silent = createServer((s) => sockets.push(s));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const mute = `http://127.0.0.1:${(silent.address() as { port: number }).port}`;
  t0 = Date.now();
  e = await rejects(publish({ env: envFor({ S3_ENDPOINT: mute, PUBLISH_PREFIX: 'metal-os/stable' }), imagesDir, quiet: true }));
  const ms = Date.now() - t0;
  for (const s of sockets) s.destroy();
  silent.close();
  assert.instance(e, PreconditionError);
  assert.is(e.message, `S3 store ${mute} is not reachable (timed out) during list metal-os/stable/`);
  assert.ok(ms < 8000, `took ${ms} ms`);
});

test('an upload killed mid-way never leaves an md5 beside a partial image', async () => {
  const prefix = 'metal-os/pull_requests/killed';
  const key = `${prefix}/debian/12/img.tar.lz4`;
  const dir = join(scratch, 'killed');
  const old = fakeImage(dir, 'debian', '12', 1 * MiB);
  await publish({ env: envFor({ PUBLISH_PREFIX: prefix }), imagesDir: dir, quiet: true });
  assert.is(await text(`${key}.md5`), `${old.md5}  img.tar.lz4\n`);

  // the next image goes through an 8 MiB/s uplink, and the process is killed once the server
  // holds the first part of it
  const next = fakeImage(dir, 'debian', '12', 34 * MiB);
  const proxy = await startThrottledProxy(server.port, 8 * MiB);
  const child = stream(['node', '--import', 'tsx', 'scripts/cli.ts', 'release'], {
    cwd: ROOT,
    env: cliEnv({ ...server.env, S3_ENDPOINT: proxy.endpoint, PUBLISH_PREFIX: prefix, METAL_IMAGES_DIR: dir }),
  });
  child.stdout.resume();
  const deadline = Date.now() + 30_000;
  let parts = 0;
  while (parts === 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    const ups = await server.client.send(new ListMultipartUploadsCommand({ Bucket: server.bucket, Prefix: key }));
    const id = ups.Uploads?.find((u) => u.Key === key)?.UploadId;
    if (id) parts = (await server.client.send(new ListPartsCommand({ Bucket: server.bucket, Key: key, UploadId: id }))).Parts?.length ?? 0;
  }
  child.child.kill('SIGKILL');
  const e = await rejects(child.done);
  await proxy.close();
  assert.ok(parts > 0, 'no part arrived within 30 s');
  assert.instance(e, ToolError);
  assert.match(e.message, /was killed by SIGKILL$/);

  // the md5 must not exist, or still describe the complete image beside it
  const md5Text = await text(`${key}.md5`);
  const imageNow = await md5OfObject(key);
  assert.is(imageNow, old.md5, 'the half-uploaded image replaced the complete one');
  if (md5Text !== null) assert.is(parseMd5File(md5Text), imageNow);
  for (const i of await listed(prefix)) assert.is(parseMd5File((await text(i.md5Key))!), await md5OfObject(i.imageKey));

  // the next run completes, cleaning up the killed run's unfinished upload
  const r = await publish({ env: envFor({ PUBLISH_PREFIX: prefix }), imagesDir: dir, quiet: true });
  assert.equal(r.objects.map((o) => o.action), ['uploaded', 'uploaded', 'uploaded', 'uploaded', 'uploaded']);
  assert.is(await text(`${key}.md5`), `${next.md5}  img.tar.lz4\n`);
  assert.is(await md5OfObject(key), next.md5);
  const left = await server.client.send(new ListMultipartUploadsCommand({ Bucket: server.bucket, Prefix: key }));
  assert.is(left.Uploads?.length ?? 0, 0);
});

test.run();
