// The Makefile as the operator uses it: `make <target> VAR=...` with a .env, in a scratch copy of
// the checkout (a .env of the test's own), against a real S3 server (versitygw, started here).
// make hands variables to the CLI as data, exports nothing else, and its recipes end with the
// CLI's exit status.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { make, scratchCheckout } from '../helpers/checkout.ts';
import { fakeImage } from '../helpers/fake-image.ts';
import { startS3Server, startThrottledProxy, type S3Server } from '../helpers/s3server.ts';

let server: S3Server;
let checkout: { dir: string; remove(): void };
const scratch = mkdtempSync(join(tmpdir(), 'metal-make-test-'));

test.before(async () => {
  server = await startS3Server();
  checkout = await scratchCheckout();
});
test.after(async () => {
  await server?.stop();
  checkout?.remove();
  rmSync(scratch, { recursive: true, force: true });
});

function dotenv(settings: Record<string, string>): void {
  writeFileSync(join(checkout.dir, '.env'), Object.entries(settings).map(([k, v]) => `${k}=${v}\n`).join(''), { mode: 0o600 });
}
const storeEnv = (): Record<string, string> => ({ ...server.env, PUBLIC_BASE_URL: 'https://images.example.test/' });

async function keys(prefix: string): Promise<string[]> {
  const r = await server.client.send(new ListObjectsV2Command({ Bucket: server.bucket, Prefix: `${prefix}/` }));
  return (r.Contents ?? []).map((o) => o.Key!).sort();
}
async function text(key: string): Promise<string | null> {
  try {
    return await (await server.client.send(new GetObjectCommand({ Bucket: server.bucket, Key: key }))).Body!.transformToString();
  } catch {
    return null;
  }
}

test('make release reads DRY_RUN=1 from .env: nothing is uploaded (make exports no empty variables)', async () => {
  const prefix = 'metal-os/pull_requests/make-dotenv';
  const images = join(scratch, 'dotenv');
  fakeImage(images, 'debian', '12', 64 * 1024);
  dotenv({ ...storeEnv(), DRY_RUN: '1', PUBLISH_PREFIX: prefix, METAL_IMAGES_DIR: images });
  const r = await make(checkout.dir, ['release']);
  assert.is(r.code, 0, r.stderr);
  assert.equal(await keys(prefix), [], `make release with DRY_RUN=1 in .env wrote to the store:\n${r.stdout.split('\n').slice(-2).join('\n')}`);
  assert.match(r.stdout, /\[dry-run\] 5 object\(s\) under metal-os\/pull_requests\/make-dotenv\/ would be written; nothing was\n/);
  // make's command line comes first, then the environment, then .env
  const env = await make(checkout.dir, ['release'], { DRY_RUN: '0' });
  assert.is(env.code, 0, env.stderr);
  assert.match(env.stdout, /\n5 uploaded, 0 already there \(skipped\), under metal-os\/pull_requests\/make-dotenv\/\n/);
  rmSync(join(checkout.dir, '.env'));
});

test('make variables are data: OS="x; echo INJECTED" is a wrong OS name (exit 2), not a command', async () => {
  const r = await make(checkout.dir, ['lint', 'OS=x; echo INJECTED']);
  assert.not.match(r.stdout, /^INJECTED$/m, `the shell ran the injected command; make exited ${r.code}:\n${r.stdout}`);
  assert.is(r.code, 2);
  assert.match(r.stderr, /^error: unknown OS "x; echo INJECTED" \(known: .*debian.*\)\n {2}fix: run one of: .*\nmake: \*\*\* \[Makefile:\d+: lint\] Error 2\n$/);
  // nor is make syntax expanded
  const e = await make(checkout.dir, ['lint', 'OS=$(shell echo EXPANDED >&2)']);
  assert.is(e.code, 2);
  assert.not.match(e.stderr, /^EXPANDED$/m);
  assert.match(e.stderr, /^error: unknown OS "\$\(shell echo EXPANDED >&2\)"/);
  // a name make does not pass on is an error, not silently ignored
  const typo = await make(checkout.dir, ['release', 'DRYRUN=1']);
  assert.match(typo.stderr, /^error: make variable DRYRUN is not known\n/);
  assert.match(typo.stderr, /\[Makefile:\d+: release\] Error 2\n$/);
  // the recipe ends with the CLI's exit status: 3 for a missing precondition
  const pre = await make(checkout.dir, ['release', 'PUBLISH_PREFIX=stable']);
  assert.is(pre.code, 2);
  assert.match(pre.stderr, /^error: S3_BUCKET is not set\n {2}fix: set S3_BUCKET in \.env \(see \.env\.example\)\nmake: \*\*\* \[Makefile:\d+: release\] Error 3\n$/);
});

test('Ctrl-C during make release: the CLI cleans up (the lock is given up) and make dies of SIGINT (130)', async () => {
  const prefix = 'metal-os/pull_requests/make-ctrl-c';
  const key = `${prefix}/debian/12/img.tar.lz4`;
  const images = join(scratch, 'ctrl-c');
  fakeImage(images, 'debian', '12', 34 * 1024 * 1024);
  const proxy = await startThrottledProxy(server.port, 4 * 1024 * 1024);
  try {
    dotenv({ ...storeEnv(), S3_ENDPOINT: proxy.endpoint, PUBLISH_PREFIX: prefix, METAL_IMAGES_DIR: images });
    const r = await make(checkout.dir, ['release'], {}, async () => {
      const ups = await server.client.send(new ListMultipartUploadsCommand({ Bucket: server.bucket, Prefix: key }));
      return (ups.Uploads ?? []).some((u) => u.Key === key);
    });
    assert.is(r.signal, 'SIGINT', `make ended with code ${r.code}: ${r.stderr}`);
    assert.match(r.stderr, /interrupted \(SIGINT\): cleaning up\.\.\.\nerror: interrupted; partial artifacts were removed\n {2}fix: re-run the same make target\n/);
    assert.is(await text(`${prefix}/.release-lock`), null, 'the lock was given up');
    assert.is(await text(`${key}.md5`), null);
  } finally {
    await proxy.close();
    rmSync(join(checkout.dir, '.env'));
  }
});

test('FORCE is read from make\'s command line only: FORCE=1 in the environment forces nothing', async () => {
  const prefix = 'metal-os/20230901';
  const images = join(scratch, 'force');
  const first = fakeImage(images, 'debian', '12', 64 * 1024);
  dotenv({ ...storeEnv(), PUBLISH_PREFIX: prefix, METAL_IMAGES_DIR: images });
  assert.is((await make(checkout.dir, ['release'])).code, 0);
  fakeImage(images, 'debian', '12', 64 * 1024);
  // any CI job may carry a FORCE variable of its own
  const env = await make(checkout.dir, ['release'], { FORCE: '1' });
  assert.is(env.code, 2, `FORCE=1 in the environment overwrote the release:\n${env.stdout.split('\n').slice(-2).join('\n')}`);
  assert.match(env.stderr, /^error: metal-os\/20230901\/debian\/12\/img\.tar\.lz4 already exists with other content \(and 4 more\), and metal-os\/20230901\/ is a release: its objects are immutable\n {2}fix: release under a new date, or re-run with make release FORCE=1 to overwrite\n/);
  assert.is(await text(`${prefix}/debian/12/img.tar.lz4.md5`), `${first.md5}  img.tar.lz4\n`);
  const forced = await make(checkout.dir, ['release', 'FORCE=1']);
  assert.is(forced.code, 0, forced.stderr);
  assert.match(forced.stdout, /warning: forced: overwriting 5 object\(s\) of release metal-os\/20230901\//);
  const now = await text(`${prefix}/debian/12/img.tar.lz4.md5`);
  assert.ok(now !== `${first.md5}  img.tar.lz4\n`);
  rmSync(join(checkout.dir, '.env'));
});

test.run();
