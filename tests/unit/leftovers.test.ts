// The export cuts container-runtime leftovers out of the docker export stream with GNU tar
// --delete (scripts/export/leftovers.ts). These tests run the real tar on crafted archives: the
// output must be the input minus exactly the named members, every other byte unchanged.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { run } from '../../scripts/lib/shell.ts';
import { deviceNodes, tarDeleteArgv } from '../../scripts/export/leftovers.ts';
import { TarReader, type TarEntry } from '../../scripts/lint/tar-stream.ts';
import { tarball, type FixtureEntry } from './tar-fixture.ts';

async function tarDelete(input: Buffer, names: string[]): Promise<Buffer> {
  const r = await run(tarDeleteArgv(names), { input, encoding: 'buffer' });
  return r.stdoutBuffer!;
}

function paths(tar: Buffer): string[] {
  const out: TarEntry[] = [];
  new TarReader({ onEntry: (e) => out.push(e) }).push(tar);
  return out.map((e) => e.path);
}

/** GNU tar pads its output with zeros to a whole record (10 KiB): compare up to the end marker. */
function assertSameEntries(got: Buffer, want: Buffer, msg: string): void {
  const body = want.length - 1024;
  assert.ok(got.length >= want.length, `${msg}: output shorter than expected (${got.length} < ${want.length})`);
  assert.ok(got.subarray(0, body).equals(want.subarray(0, body)), `${msg}: kept entries differ byte-wise`);
  assert.ok(got.subarray(body).every((b) => b === 0), `${msg}: only zeros after the last entry`);
}

const DEV: FixtureEntry[] = [
  { path: 'dev/', type: '5' },
  { path: 'dev/console', body: '' },
  { path: 'dev/fd', type: '2', linkpath: '/proc/self/fd' },
  { path: 'dev/null', type: '3', devmajor: 1, devminor: 3 },
  { path: 'dev/sda', type: '4', devmajor: 8, devminor: 0 },
  { path: 'dev/pts/', type: '5' },
];

test('deviceNodes: character and block devices under dev/ only, as archive paths', () => {
  assert.equal(deviceNodes(DEV.map((e) => ({ path: e.path, type: e.type ?? '0' }))), ['dev/null', 'dev/sda']);
  assert.equal(deviceNodes([{ path: './dev/zero', type: '3' }, { path: 'srv/dev/null', type: '3' }, { path: 'dev/', type: '5' }]), ['dev/zero']);
});

test('tarDeleteArgv: literal member names (no wildcards), end of options before the names', () => {
  assert.equal(tarDeleteArgv(['.dockerenv', 'dev/[x]']), ['tar', '--delete', '--no-wildcards', '--file=-', '--', '.dockerenv', 'dev/[x]']);
});

test('tar --delete drops a leading .dockerenv and the device nodes, nothing else', async () => {
  const big = Buffer.alloc(1500, 7);
  const input = tarball([{ path: '.dockerenv' }, { path: 'a', body: big }, ...DEV, { path: 'etc/hostname', body: 'x\n' }]);
  const want = tarball([{ path: 'a', body: big }, ...DEV.filter((e) => e.type !== '3' && e.type !== '4'), { path: 'etc/hostname', body: 'x\n' }]);
  const got = await tarDelete(input, ['.dockerenv', 'dev/null', 'dev/sda']);
  assert.equal(paths(got), ['a', 'dev/', 'dev/console', 'dev/fd', 'dev/pts/', 'etc/hostname']);
  assertSameEntries(got, want, 'leading .dockerenv');
});

test('tar --delete keeps look-alikes: a nested .dockerenv, a body holding a .dockerenv header, PAX xattrs of neighbours', async () => {
  const fake = tarball([{ path: '.dockerenv' }], { end: false });
  const entries: FixtureEntry[] = [
    { path: 'blob', body: fake },
    { path: 'srv/.dockerenv', body: 'keep' },
    { path: 'usr/bin/ping', body: 'ELF', pax: { 'SCHILY.xattr.security.capability': Buffer.from([1, 0, 0, 2, 0, 32, 0, 0]) } },
  ];
  const input = tarball([...entries.slice(0, 2), { path: '.dockerenv' }, entries[2]!]);
  const got = await tarDelete(input, ['.dockerenv']);
  assert.equal(paths(got), ['blob', 'srv/.dockerenv', 'usr/bin/ping']);
  assertSameEntries(got, tarball(entries), 'look-alikes');
});

test.run();
