import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Readable } from 'node:stream';
import { TarEntryFilter, RUNTIME_LEFTOVERS } from '../../scripts/export/tar-filter.ts';
import { tarball } from './tar-fixture.ts';

async function filterIn(data: Buffer, chunk: number): Promise<{ out: Buffer; dropped: string[] }> {
  const pieces: Buffer[] = [];
  for (let i = 0; i < data.length; i += chunk) pieces.push(data.subarray(i, i + chunk));
  const f = new TarEntryFilter(RUNTIME_LEFTOVERS);
  const out: Buffer[] = [];
  for await (const b of Readable.from(pieces).pipe(f)) out.push(b as Buffer);
  return { out: Buffer.concat(out), dropped: f.dropped };
}

const CHUNKS = [1, 100, 511, 512, 513, 4096, 1 << 20];

test('drops a leading /.dockerenv and nothing else, whatever the chunking', async () => {
  const withEnv = tarball([{ path: '.dockerenv' }, { path: 'etc/', type: '5' }, { path: 'etc/hostname', body: 'x\n' }]);
  const without = tarball([{ path: 'etc/', type: '5' }, { path: 'etc/hostname', body: 'x\n' }]);
  for (const c of CHUNKS) {
    const r = await filterIn(withEnv, c);
    assert.equal(r.dropped, ['/.dockerenv'], `chunk ${c}`);
    assert.ok(r.out.equals(without), `chunk ${c}: output differs`);
  }
});

test('drops ./.dockerenv in the middle of the archive, keeps bodies of neighbours intact', async () => {
  const big = Buffer.alloc(1500, 7);
  const withEnv = tarball([{ path: 'a', body: big }, { path: './.dockerenv' }, { path: 'b', body: 'bbb' }]);
  const without = tarball([{ path: 'a', body: big }, { path: 'b', body: 'bbb' }]);
  for (const c of CHUNKS) {
    const r = await filterIn(withEnv, c);
    assert.equal(r.dropped, ['/.dockerenv']);
    assert.ok(r.out.equals(without), `chunk ${c}: output differs`);
  }
});

test('keeps a .dockerenv that is not at the root, one that is a directory, and one with a PAX header', async () => {
  const t = tarball([
    { path: 'srv/.dockerenv', body: 'keep' },
    { path: '.dockerenv/', type: '5' },
    { path: '.dockerenv', body: '', pax: { 'SCHILY.xattr.user.x': 'y' } },
  ]);
  for (const c of CHUNKS) {
    const r = await filterIn(t, c);
    assert.equal(r.dropped, []);
    assert.ok(r.out.equals(t), `chunk ${c}: output differs`);
  }
});

test('a body that looks like a .dockerenv header is data, not a header', async () => {
  const fake = tarball([{ path: '.dockerenv' }], { end: false });
  const t = tarball([{ path: 'blob', body: fake }, { path: 'z', body: 'z' }]);
  const r = await filterIn(t, 512);
  assert.equal(r.dropped, []);
  assert.ok(r.out.equals(t));
});

test('drops device nodes under /dev only when asked, keeps /dev itself and other nodes', async () => {
  const t = tarball([
    { path: 'dev/', type: '5' },
    { path: 'dev/null', type: '3', devmajor: 1, devminor: 3 },
    { path: 'dev/sda', type: '4', devmajor: 8, devminor: 0 },
    { path: 'dev/shm/', type: '5' },
    { path: 'srv/null', type: '3', devmajor: 1, devminor: 3 },
  ]);
  const expected = tarball([{ path: 'dev/', type: '5' }, { path: 'dev/shm/', type: '5' }, { path: 'srv/null', type: '3', devmajor: 1, devminor: 3 }]);
  for (const c of CHUNKS) {
    const f = new TarEntryFilter(RUNTIME_LEFTOVERS, true);
    const out: Buffer[] = [];
    for await (const b of Readable.from(t.length > c ? [t.subarray(0, c), t.subarray(c)] : [t]).pipe(f)) out.push(b as Buffer);
    assert.equal(f.dropped, ['/dev/null', '/dev/sda']);
    assert.ok(Buffer.concat(out).equals(expected), `chunk ${c}`);
  }
  assert.ok((await filterIn(t, 512)).out.equals(t), 'without dropDevNodes nothing is dropped');
});

test.run();
