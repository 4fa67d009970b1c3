import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  cacheControl,
  compareObject,
  downloadsMarkdown,
  imageId,
  listedImages,
  majorMinor,
  multipartEtag,
  normalizeBaseUrl,
  objectKey,
  prefixDate,
  publicUrl,
  type RemoteObject,
} from '../../scripts/release/plan.ts';
import { hashFile } from '../../scripts/release/local.ts';
import { explainS3Error, storeSettings } from '../../scripts/release/store.ts';
import { promoteTarget } from '../../scripts/release/promote.ts';
import { downloadsPrefix } from '../../scripts/release/downloads.ts';
import { MetalError, PreconditionError, UsageError } from '../../scripts/lib/errors.ts';

function throws(fn: () => unknown, cls: abstract new (...a: never[]) => MetalError, message: string, hint?: string): void {
  try {
    fn();
  } catch (e) {
    assert.instance(e, cls);
    assert.is((e as MetalError).message, message);
    if (hint !== undefined) assert.is((e as MetalError).hint, hint);
    return;
  }
  assert.unreachable(`expected ${cls.name} with: ${message}`);
}

test('keys and URLs', () => {
  const key = objectKey('metal-os/20230710', 'debian', '12', 'img.tar.lz4');
  assert.is(key, 'metal-os/20230710/debian/12/img.tar.lz4');
  assert.is(publicUrl('https://images.metal-stack.io', key), 'https://images.metal-stack.io/metal-os/20230710/debian/12/img.tar.lz4');
  assert.is(publicUrl('https://images.metal-stack.io///', key), 'https://images.metal-stack.io/metal-os/20230710/debian/12/img.tar.lz4');
  assert.is(objectKey('metal-os/stable', 'firewall', '3.0-ubuntu', 'img.tar.lz4.md5'), 'metal-os/stable/firewall/3.0-ubuntu/img.tar.lz4.md5');
  assert.is(normalizeBaseUrl(undefined), 'https://images.metal-stack.io/');
  assert.is(normalizeBaseUrl('http://127.0.0.1:9000/bucket'), 'http://127.0.0.1:9000/bucket/');
  throws(() => normalizeBaseUrl('ftp://x/'), UsageError, 'PUBLIC_BASE_URL="ftp://x/" must be http(s)');
  throws(() => objectKey('metal-os/stable', '..', '12', 'img.tar.lz4'), UsageError, '".." is not an OS folder name ([a-z0-9-])');
  throws(() => objectKey('metal-os/stable', 'debian', '12/../../x', 'img.tar.lz4'), UsageError, '"12/../../x" is not an image version (<major>[.<minor>][-<flavour>])');
});

test('image ids', () => {
  assert.is(majorMinor('12'), '12.0');
  assert.is(majorMinor('22.04'), '22.04');
  assert.is(majorMinor('3.0-ubuntu'), '3.0-ubuntu');
  assert.is(majorMinor('3-debian'), '3.0-debian');
  assert.is(imageId('debian', '12', '20230710'), 'debian-12.0.20230710');
  assert.is(imageId('ubuntu', '22.04', '20230710'), 'ubuntu-22.04.20230710');
  assert.is(imageId('firewall', '3.0-ubuntu', '20230710'), 'firewall-3.0-ubuntu.20230710');
  assert.is(imageId('almalinux', '9', '20240101'), 'almalinux-9.0.20240101');
  throws(() => imageId('debian', '12', 'stable'), UsageError, 'patch "stable" is not a date YYYYMMDD');
  assert.is(prefixDate('metal-os/20230710'), '20230710');
  assert.is(prefixDate('metal-os/stable'), null);
  assert.is(prefixDate('metal-os/pull_requests/x'), null);
  assert.is(prefixDate('metal-os'), null);
});

test('cache headers per channel', () => {
  assert.is(cacheControl('stable'), 'no-store');
  assert.is(cacheControl('pull_request'), 'no-store');
  assert.is(cacheControl('release'), undefined);
});

test('multipart ETag and the one-pass file hash', async () => {
  const md5 = (s: string): Buffer => createHash('md5').update(s).digest();
  assert.is(multipartEtag([md5('01234'), md5('56789'), md5('abc')]), '54d31756f3db9fea0d5009f62317cfa1-3');
  const dir = mkdtempSync(join(tmpdir(), 'plan-'));
  try {
    writeFileSync(join(dir, 'f13'), '0123456789abc');
    writeFileSync(join(dir, 'f10'), '0123456789');
    writeFileSync(join(dir, 'f5'), '01234');
    assert.equal(await hashFile(join(dir, 'f13'), 5), { size: 13, md5: '2d31d97199fb287d6fcb4f82ebd1b3f2', etag: '54d31756f3db9fea0d5009f62317cfa1-3' });
    // exactly two parts: lib-storage splits only when more than a part is left
    assert.equal(await hashFile(join(dir, 'f10'), 5), { size: 10, md5: '781e5e245d69b566979b86e28d23f2c7', etag: '9a6dbec798b1bfe66cc7659d2bb41720-2' });
    // a file of exactly one part size is one PUT: its ETag is its md5
    const one = await hashFile(join(dir, 'f5'), 5);
    assert.is(one.etag, one.md5);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('remote vs local comparison', () => {
  const local = { size: 10, md5: 'a'.repeat(32), etag: `${'b'.repeat(32)}-2` };
  const remote = (o: Partial<RemoteObject>): RemoteObject => ({ size: 10, etag: 'c'.repeat(32), md5Meta: undefined, lastModified: undefined, cacheControl: undefined, contentType: undefined, ...o });
  assert.is(compareObject(null, local), 'absent');
  assert.is(compareObject(remote({ etag: local.md5 }), local), 'same');
  assert.is(compareObject(remote({ etag: local.etag }), local), 'same');
  assert.is(compareObject(remote({ etag: `${'d'.repeat(32)}-3`, md5Meta: local.md5 }), local), 'same');
  assert.is(compareObject(remote({ etag: local.md5, size: 11 }), local), 'different');
  assert.is(compareObject(remote({}), local), 'different');
  assert.is(compareObject(remote({ etag: `${'d'.repeat(32)}-3` }), local), 'different');
});

test('listing seen as metal-image-cache-sync sees it', () => {
  const t = new Date('2023-07-11T01:02:03Z');
  const o = (key: string, size = 1) => ({ key, size, lastModified: t });
  const objects = [
    o('metal-os/20230710/debian/12/img.tar.lz4', 100),
    o('metal-os/20230710/debian/12/img.tar.lz4.md5'),
    o('metal-os/20230710/debian/12/packages.txt'),
    o('metal-os/20230710/ubuntu/22.04/img.tar.lz4', 200), // no .md5: does not count
    o('metal-os/20230710/ubuntu/22.04/packages.txt'),
    o('metal-os/20230710/firewall/3.0-ubuntu/img.tar.lz4', 300), // no packages.txt: counts
    o('metal-os/20230710/firewall/3.0-ubuntu/img.tar.lz4.md5'),
    o('metal-os/stable/debian/12/img.tar.lz4', 400),
    o('metal-os/stable/debian/12/img.tar.lz4.md5'),
    o('metal-os/20230710/Bad/12/img.tar.lz4'),
    o('metal-os/20230710/Bad/12/img.tar.lz4.md5'),
  ];
  const dated = listedImages(objects, 'metal-os/20230710');
  assert.equal(
    dated.map((i) => [i.prefix, i.os, i.version, i.size, i.packagesKey]),
    [
      ['metal-os/20230710', 'debian', '12', 100, 'metal-os/20230710/debian/12/packages.txt'],
      ['metal-os/20230710', 'firewall', '3.0-ubuntu', 300, null],
    ],
  );
  assert.equal(
    listedImages(objects, 'metal-os').map((i) => i.imageKey),
    ['metal-os/20230710/debian/12/img.tar.lz4', 'metal-os/20230710/firewall/3.0-ubuntu/img.tar.lz4', 'metal-os/stable/debian/12/img.tar.lz4'],
  );
  assert.equal(listedImages(objects, 'metal-os/2023'), []);
});

test('downloads table', () => {
  const md = downloadsMarkdown([
    { id: 'debian-12.0.20230710', url: 'https://i/metal-os/20230710/debian/12/img.tar.lz4', md5: 'a'.repeat(32), packagesUrl: 'https://i/metal-os/20230710/debian/12/packages.txt', tested: 'lint ok, VM 114/114 goss' },
    { id: 'firewall-3.0-ubuntu.20230710', url: 'https://i/f', md5: null, packagesUrl: null, tested: 'no build record' },
  ]);
  assert.is(
    md,
    '| Image | URL | MD5 | Packages | Tested |\n' +
      '| --- | --- | --- | --- | --- |\n' +
      `| debian-12.0.20230710 | https://i/metal-os/20230710/debian/12/img.tar.lz4 | ${'a'.repeat(32)} | [packages.txt](https://i/metal-os/20230710/debian/12/packages.txt) | lint ok, VM 114/114 goss |\n` +
      '| firewall-3.0-ubuntu.20230710 | https://i/f | (invalid .md5) | - | no build record |\n',
  );
});

test('store settings from the environment', () => {
  const full = { S3_ENDPOINT: 'http://127.0.0.1:7070/', S3_BUCKET: 'images', S3_ACCESS_KEY_ID: 'AK', S3_SECRET_ACCESS_KEY: 'sekrit' };
  assert.equal(storeSettings(full), { stallTimeoutMs: 30_000, endpoint: 'http://127.0.0.1:7070', region: 'us-east-1', bucket: 'images', forcePathStyle: true, accessKeyId: 'AK', secretAccessKey: 'sekrit' });
  assert.is(storeSettings({ ...full, S3_STALL_TIMEOUT: '2.5' }).stallTimeoutMs, 2500);
  throws(() => storeSettings({ ...full, S3_STALL_TIMEOUT: '0' }), UsageError, 'S3_STALL_TIMEOUT=0 is not a number of seconds from 1 to 3600');
  assert.is(storeSettings({ ...full, S3_FORCE_PATH_STYLE: '0' }).forcePathStyle, false);
  assert.is(storeSettings({ ...full, S3_ENDPOINT: undefined }).forcePathStyle, false);
  throws(() => storeSettings({ ...full, S3_BUCKET: undefined }), PreconditionError, 'S3_BUCKET is not set', 'set S3_BUCKET in .env (see .env.example)');
  throws(() => storeSettings({ ...full, S3_SECRET_ACCESS_KEY: undefined }), PreconditionError, 'S3_SECRET_ACCESS_KEY not set');
  throws(() => storeSettings({ ...full, S3_ENDPOINT: 'http://AK:sekrit@host' }), UsageError, 'S3_ENDPOINT must not carry credentials');
});

test('S3 failures become one-line typed errors', () => {
  const where = 'S3 store http://h:1';
  const e = (o: object) => explainS3Error(o, where, 'list metal-os/stable/', 'images');
  const creds = e({ name: 'SignatureDoesNotMatch', $metadata: { httpStatusCode: 403 } });
  assert.instance(creds, PreconditionError);
  assert.is(creds.message, 'S3 store http://h:1 rejected the credentials (SignatureDoesNotMatch)');
  assert.is(creds.hint, 'check S3_ACCESS_KEY_ID/S3_SECRET_ACCESS_KEY in .env');
  assert.is(e({ name: 'InvalidAccessKeyId' }).message, 'S3 store http://h:1 rejected the credentials (InvalidAccessKeyId)');
  assert.is(e({ name: 'NoSuchBucket' }).message, 'bucket "images" does not exist at S3 store http://h:1');
  assert.is(e({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }).message, 'S3 store http://h:1 denied list metal-os/stable/ in bucket "images" (AccessDenied)');
  assert.is(e({ name: 'Error', code: 'ECONNREFUSED' }).message, 'S3 store http://h:1 is not reachable (ECONNREFUSED) during list metal-os/stable/');
  assert.is(e({ name: 'AggregateError', errors: [{ code: 'ECONNREFUSED' }] }).message, 'S3 store http://h:1 is not reachable (ECONNREFUSED) during list metal-os/stable/');
  assert.is(e({ name: 'TimeoutError', message: 'socket timed out' }).message, 'S3 store http://h:1 is not reachable (timed out) during list metal-os/stable/');
  const other = e({ name: 'InternalError', message: 'We encountered an internal error.\nPlease try again.', $metadata: { httpStatusCode: 500 } });
  assert.is(other.kind, 'tool');
  assert.is(other.message, 'list metal-os/stable/ failed at S3 store http://h:1: InternalError (HTTP 500): We encountered an internal error.');
});

test('promote and downloads: which prefix', () => {
  assert.is(promoteTarget('20230710', {}).prefix, 'metal-os/20230710');
  assert.is(promoteTarget(undefined, { CI_COMMIT_TAG: '20230801' }).prefix, 'metal-os/20230801');
  throws(() => promoteTarget('2023-07-10', {}), UsageError, 'DATE=2023-07-10 is not a date YYYYMMDD', 'e.g. make promote DATE=20230710');
  throws(() => promoteTarget(undefined, { CI_COMMIT_REF_NAME: 'master' }), UsageError, 'DATE is not set: promote copies metal-os/stable/ to metal-os/<DATE>/');
  assert.is(downloadsPrefix('stable', {}), 'metal-os/stable');
  assert.is(downloadsPrefix('metal-os/', {}), 'metal-os');
  assert.is(downloadsPrefix(undefined, { GITHUB_ACTIONS: 'true', GITHUB_REF: 'refs/tags/20230710' }), 'metal-os/20230710');
  throws(() => downloadsPrefix(undefined, {}), UsageError, 'no PREFIX given, and this environment names no publish target');
  throws(() => downloadsPrefix(undefined, { CI_COMMIT_TAG: 'v1' }), UsageError, 'GitLab tag "v1" is not a release date YYYYMMDD: releases are published as metal-os/<YYYYMMDD>/');
  throws(() => downloadsPrefix('../x', {}), UsageError, 'PREFIX="../x" is not metal-os/stable, metal-os/<YYYYMMDD> or metal-os/pull_requests/<slug>');
});

test.run();
