// Which folders under images/ release publishes (scripts/release/local.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PreconditionError } from '../../scripts/lib/errors.ts';
import { checkLocalImage, definedImages, findLocalImages } from '../../scripts/release/local.ts';

const scratch = mkdtempSync(join(tmpdir(), 'release-local-'));
const defined = [
  { os: 'debian', version: '12' },
  { os: 'firewall', version: '3.0-ubuntu' },
  { os: 'firewall', version: '3.0-debian' },
];

function artifactSet(dir: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'img.tar.lz4'), 'image');
  writeFileSync(join(dir, 'img.tar.lz4.md5'), '5b5e3cba0d7d5e1d4bd4c7e4e0d0ae56  img.tar.lz4\n');
  writeFileSync(join(dir, 'packages.txt'), 'ii bash\n');
  writeFileSync(join(dir, 'img.tar.lz4.spdx.json'), '{}\n');
}

function refused(fn: () => unknown, message: string): void {
  try {
    fn();
  } catch (e) {
    assert.instance(e, PreconditionError);
    assert.is((e as Error).message, message);
    return;
  }
  assert.unreachable(`expected: ${message}`);
}

test.after(() => rmSync(scratch, { recursive: true, force: true }));

test('the pairs the checkout defines, variants included', () => {
  const pairs = definedImages().map((p) => `${p.os}/${p.version}`);
  for (const p of ['debian/12', 'firewall/3.0-ubuntu', 'firewall/3.0-debian', 'ubuntu/22.04', 'almalinux/9', 'nvidia/12']) assert.ok(pairs.includes(p), `${p} in ${pairs.join(' ')}`);
});

test('only folders of a defined pair are published: 12-bak and 11 are set aside, by name', () => {
  const images = join(scratch, 'a');
  artifactSet(join(images, 'debian', '12'));
  artifactSet(join(images, 'debian', '12-bak'));
  artifactSet(join(images, 'debian', '11'));
  artifactSet(join(images, 'firewall', '3.0-debian'));
  mkdirSync(join(images, 'debian', '13')); // no image: not mentioned
  const l = findLocalImages(images, defined);
  assert.equal(l.found.map((f) => `${f.os}/${f.version}`), ['debian/12', 'firewall/3.0-debian']);
  assert.equal(l.setAside.map((s) => s.replace(`${scratch}/`, '')), [
    'a/debian/11: no image.yaml defines debian/11 (defined: debian/12, firewall/3.0-ubuntu, firewall/3.0-debian)',
    'a/debian/12-bak: no image.yaml defines debian/12-bak (defined: debian/12, firewall/3.0-ubuntu, firewall/3.0-debian)',
  ]);
});

test('a symlink on the way to a published image is refused', async () => {
  const elsewhere = join(scratch, 'elsewhere', '12');
  artifactSet(elsewhere);
  const images = join(scratch, 'b');
  mkdirSync(join(images, 'debian'), { recursive: true });
  symlinkSync(elsewhere, join(images, 'debian', '12'));
  refused(() => findLocalImages(images, defined), `${join(images, 'debian', '12')} is a symlink: release publishes only what the export wrote under images/`);

  const c = join(scratch, 'c');
  mkdirSync(c);
  symlinkSync(join(scratch, 'elsewhere'), join(c, 'debian'));
  refused(() => findLocalImages(c, defined), `${join(c, 'debian')} is a symlink: release publishes only what the export wrote under images/`);

  // a symlinked file inside a real folder: refused when the set is checked
  const d = join(scratch, 'd', 'debian', '12');
  artifactSet(d);
  rmSync(join(d, 'img.tar.lz4'));
  symlinkSync(join(elsewhere, 'img.tar.lz4'), join(d, 'img.tar.lz4'));
  const [found] = findLocalImages(join(scratch, 'd'), defined).found;
  let err: unknown;
  await checkLocalImage(found!).then((i) => i.close(), (e: unknown) => (err = e));
  assert.instance(err, PreconditionError);
  assert.match((err as Error).message, /img\.tar\.lz4 is a symlink: release publishes only what the export wrote$/);
});

test.run();
