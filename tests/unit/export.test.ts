// Pure parts of the export: options from the environment, the lz4 >= 1.10 command line and what it
// reports on stderr, and which failure of the docker export | tar | lz4 chain is the cause.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ToolError, UsageError } from '../../scripts/lib/errors.ts';
import { stream } from '../../scripts/lib/shell.ts';
import { orphanContainers } from '../../scripts/lib/docker.ts';
import { tarDeleteArgv } from '../../scripts/export/leftovers.ts';
import { tarball } from './tar-fixture.ts';
import { byteOrder, overlayLayers, overlayMountOptions, rootfsTarArgv, staleMounts } from '../../scripts/export/rootfs.ts';
import { lz4Progress, lz4Totals, threadedLz4Argv } from '../../scripts/export/threaded-lz4.ts';
import { DEFAULT_LEVEL, exportOptionsFromEnv, mtimeEpochOf, pickCause, settleChain } from '../../scripts/export/export.ts';
import { provablyAbandoned, type Owner } from '../../scripts/lib/ownership.ts';
import { OWNER_PS_FORMAT } from '../../scripts/lib/docker.ts';

test('exportOptionsFromEnv: level, workers and source; bad values are usage errors naming the fix', () => {
  assert.equal(exportOptionsFromEnv({}), {});
  assert.equal(exportOptionsFromEnv({ LZ4_LEVEL: '9', EXPORT_WORKERS: '4' }), { level: 9, workers: 4 });
  assert.equal(exportOptionsFromEnv({ EXPORT_SOURCE: '' }), {});
  assert.equal(exportOptionsFromEnv({ EXPORT_SOURCE: 'docker' }), { source: 'docker' });
  for (const [env, pattern] of [
    [{ LZ4_LEVEL: '13' }, /LZ4_LEVEL=13 is not a level 1\.\.12/],
    [{ LZ4_LEVEL: 'fast' }, /LZ4_LEVEL=fast/],
    [{ EXPORT_WORKERS: '0' }, /EXPORT_WORKERS=0 is not a count/],
    [{ EXPORT_SOURCE: 'podman' }, /EXPORT_SOURCE=podman is not one of mount, docker/],
  ] as const) {
    try {
      exportOptionsFromEnv(env);
      assert.unreachable(`${JSON.stringify(env)} was accepted`);
    } catch (e) {
      assert.instance(e, UsageError);
      assert.match((e as Error).message, pattern);
    }
  }
  try {
    exportOptionsFromEnv({ LZ4_LEVEL: '0' });
    assert.unreachable('LZ4_LEVEL=0 was accepted');
  } catch (e) {
    assert.match((e as UsageError).hint ?? '', new RegExp(`default ${DEFAULT_LEVEL}`), 'the hint names the real default');
  }
});

test('threadedLz4Argv: level, threads, explicit 4 MiB independent blocks, -v for the byte counts', () => {
  assert.equal(threadedLz4Argv('/x/lz4', 5, 2, true), ['/x/lz4', '-5', '-T2', '-B7', '-BI', '-v', '-c']);
  assert.equal(threadedLz4Argv('lz4', 9, 8, false), ['lz4', '-9', '-T8', '-B7', '-BI', '--no-frame-crc', '-v', '-c']);
});

// stderr of `head -c 20000000 img.tar | lz4-1.10 -5 -T2 -v -c`, as captured (\r between updates)
const STDERR =
  '*** LZ4 command line interface 64-bits v1.10.0, by Yann Collet ***\nUsing stdin for input\nUsing stdout for output\n' +
  '\rRead : 0 MiB   ==> inf%   \rRead : 16 MiB   ==> 110.69%   \r' + ' '.repeat(79) + '\r' +
  'Compressed 20000000 bytes into 18570784 bytes ==> 92.85%\nDone in 0.36 s ==> 52.80 MiB/s  (cpu load : 165%)\n';

test('lz4Progress: the last "Read : N MiB" in bytes; nothing before the first one', () => {
  assert.is(lz4Progress(STDERR), 16 * 1024 * 1024);
  assert.is(lz4Progress('*** LZ4 command line interface ***\n'), null);
});

test('lz4Totals: the closing count, or null when lz4 did not finish', () => {
  assert.equal(lz4Totals(STDERR), { inBytes: 20000000, outBytes: 18570784 });
  assert.is(lz4Totals('\rRead : 16 MiB   ==> 110.69%   '), null);
});

test('pickCause: the first real failure upstream-first; SIGPIPE and our SIGTERM are echoes', () => {
  const exportFailed = new ToolError('docker export c0ffee', 1, null, 'Error response from daemon: No such container');
  const tarEof = new ToolError('tar --delete', 2, null, 'tar: Unexpected EOF in archive');
  const tarPipe = new ToolError('tar --delete', null, 'SIGPIPE', '');
  const lz4Term = new ToolError('lz4 -6 -T2', null, 'SIGTERM', '');
  const diskFull = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  assert.is(pickCause([exportFailed, tarEof, lz4Term]), exportFailed, 'docker export died: its own error, not tar\'s EOF');
  assert.is(pickCause([tarPipe, diskFull]), diskFull, 'the disk filled: not the broken pipe upstream');
  assert.is(pickCause([lz4Term, tarPipe]), lz4Term, 'only echoes: the first');
});

test('a chain whose source dies mid-stream fails with the source\'s error (tar and the reader may see a clean end)', async () => {
  const tar = tarball([{ path: '.dockerenv' }, { path: 'a', body: Buffer.alloc(5000, 1) }], { end: false });
  // stands in for `docker export`: half an archive, then exit 1
  const source = stream(['sh', '-c', 'head -c 2048; echo "write /dev/stdout: daemon went away" >&2; exit 1'], { stdin: 'pipe' });
  source.stdin!.end(tar);
  const filter = stream(tarDeleteArgv(['.dockerenv']), { stdin: source.stdout });
  const reader = stream(['wc', '-c'], { stdin: filter.stdout });
  reader.stdout.resume();
  const killAll = (): void => [source, filter, reader].forEach((p) => p.kill());
  try {
    await settleChain([source.done, filter.done, reader.done], killAll);
    assert.unreachable('the chain succeeded');
  } catch (e) {
    assert.instance(e, ToolError);
    assert.match((e as ToolError).command, /^sh -c/);
    assert.match((e as ToolError).stderrTail, /daemon went away/);
  }
});

test('stream() hands a pipe over only untouched: bytes node already buffered would be lost to the child', async () => {
  const first = stream(['sh', '-c', 'echo hello; sleep 0.3; echo world']);
  await new Promise((r) => setTimeout(r, 150)); // the event loop runs: node reads "hello" into its buffer
  assert.throws(() => stream(['cat'], { stdin: first.stdout }), /already read from/);
  first.kill();
  const fresh = stream(['sh', '-c', 'echo hello; echo world']);
  const cat = stream(['cat'], { stdin: fresh.stdout });
  let out = '';
  cat.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await Promise.all([fresh.done, cat.done]);
  assert.is(out, 'hello\nworld\n', 'handed over in the same tick, every byte arrives');
});

test('overlayLayers: overlay2 only, top layer first; overlayMountOptions: read-only, refuses what one mount cannot take', () => {
  const data = { UpperDir: '/d/overlay2/c/diff', LowerDir: '/d/overlay2/c-init/diff:/d/overlay2/b/diff:/d/overlay2/a/diff', WorkDir: '/d/overlay2/c/work', MergedDir: '/d/overlay2/c/merged' };
  const layers = overlayLayers({ Name: 'overlay2', Data: data });
  assert.equal(layers, ['/d/overlay2/c/diff', '/d/overlay2/c-init/diff', '/d/overlay2/b/diff', '/d/overlay2/a/diff']);
  assert.equal(overlayLayers({ Name: 'overlay2', Data: { UpperDir: '/u' } }), ['/u'], 'a single-layer image has no LowerDir');
  assert.is(overlayLayers({ Name: 'btrfs', Data: data }), null);
  assert.is(overlayLayers({ Name: 'overlay2', Data: null }), null);
  assert.is(overlayMountOptions(layers!), 'ro,lowerdir=/d/overlay2/c/diff:/d/overlay2/c-init/diff:/d/overlay2/b/diff:/d/overlay2/a/diff');
  assert.is(overlayMountOptions(['/a,b']), null, 'a comma would end the option');
  assert.is(overlayMountOptions(['/a:b']), null, 'a colon would split the layer');
  assert.is(overlayMountOptions(Array.from({ length: 60 }, (_, i) => `/var/lib/docker/overlay2/${'f'.repeat(64)}${i}/diff`)), null, 'over one page of options');
});

test('staleMounts: our rootfs mounts under the export dir whose pid is gone, nothing else', () => {
  const mounts = [
    'overlay /var/lib/docker/overlay2/abc/merged overlay rw,lowerdir=x 0 0',
    'overlay /w/.state/export/rootfs-111-0123456789ab overlay ro,lowerdir=x 0 0',
    'overlay /w/.state/export/rootfs-222-0123456789ab overlay ro,lowerdir=x 0 0',
    'overlay /w/.state/export/other overlay ro 0 0',
    'overlay /w/.state/export2/rootfs-111-0123456789ab overlay ro 0 0',
    'overlay /w/my\\040dir/.state/export/rootfs-333-abcdef012345 overlay ro 0 0',
  ].join('\n');
  assert.equal(staleMounts(mounts, '/w/.state/export', (pid) => pid === 222), ['/w/.state/export/rootfs-111-0123456789ab']);
  assert.equal(staleMounts(mounts, '/w/my dir/.state/export', () => false), ['/w/my dir/.state/export/rootfs-333-abcdef012345'], 'octal-escaped spaces');
});

const me: Owner = { pid: 100, host: 'build1', pidns: 'pid:[4026531836]', checkout: '/work/main' };

test('orphans: only this checkout\'s, on this host, in this PID namespace, and only when the creator is dead', () => {
  assert.is(OWNER_PS_FORMAT.split('\t').length, 5);
  const row = (id: string, pid: string, host = me.host, pidns = me.pidns, checkout = me.checkout): string => [id, pid, host, pidns, checkout].join('\t');
  const ps = [
    row('aaa111', '1304'),
    row('bbb222', '2222'),
    row('ccc333', ''),
    row('ddd444', '<no value>'),
    row('eee555', '1304', 'build2'),
    row('fff666', '1304', me.host, 'pid:[4026532999]'),
    row('ggg777', '1304', me.host, me.pidns, '/work/other-checkout'),
    ['hhh888', '1304', '<no value>', '<no value>', '<no value>'].join('\t'),
  ].join('\n');
  assert.equal(orphanContainers(ps, me, (pid) => pid === 2222), ['aaa111']);
  assert.equal(orphanContainers('', me, () => false), []);
  assert.not.ok(provablyAbandoned({ pid: 5, host: me.host, checkout: me.checkout, pidns: '' }, { ...me, pidns: '' }, () => false), 'no PID namespace known: never provable');
});

test('mtimeEpochOf: the image\'s build date label, else its creation time', () => {
  assert.is(mtimeEpochOf({ 'org.opencontainers.image.created': '2026-12-01T22:32:12Z' }, '2026-12-02T10:00:00.123Z'), 1796164332);
  assert.is(mtimeEpochOf({}, '2026-12-02T10:00:00.123Z'), 1796205600);
});

test('rootfsTarArgv: docker-export-like GNU tar; byteOrder sorts as GNU tar --sort=name in the C locale', () => {
  const argv = rootfsTarArgv('/m', ['bin', 'etc'], ['.dockerenv', 'dev/null'], 1796164332);
  assert.equal(argv.slice(0, 4), ['tar', '--create', '--file=-', '--directory=/m']);
  for (const flag of ['--mtime=@1796164332', '--clamp-mtime', '--format=pax', '--numeric-owner', '--xattrs', '--xattrs-include=security.capability', '--sort=name', '--anchored', '--no-wildcards', '--exclude=.dockerenv', '--exclude=dev/null']) assert.ok(argv.includes(flag), flag);
  assert.match(argv.find((a) => a.startsWith('--pax-option='))!, /delete=mtime/);
  assert.equal(argv.slice(-3), ['--', 'bin', 'etc']);
  assert.equal(byteOrder(['usr', 'Zeta', '.dockerenv', 'a b', 'boot', '\u00e9t\u00e9']), ['.dockerenv', 'Zeta', 'a b', 'boot', 'usr', '\u00e9t\u00e9']);
});

test.run();
