// The metal-hammer decompresses images with Go's github.com/pierrec/lz4/v4 v4.1.22 (docs/contract.md
// §2). tests/lz4compat is a small Go program built against exactly that version; it prints the
// sha256 and length of what lz4.NewReader yields. Here it must reproduce the exported tar's bytes.
//
// Two `docker export`s of one image differ (docker creates /.dockerenv, /etc/hostname, /etc/hosts
// and /etc/resolv.conf in every new container, with that second as mtime), while two exports of
// the same container are identical. So the exact comparison compresses one container and hashes
// a second export of it, and the run of exportImage itself is tied to its input by the frame's
// content checksum (xxh32 of the tar as read), which pierrec and lz4 -d both verify.
// Both compressors are covered: lz4 1.10 with threads (the default; make setup builds it) and
// the block-parallel fallback with the distro lz4. They must write the same bytes.
// The integration suite builds images/debian/12 first; a missing image fails here, it is not skipped.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { config, ROOT } from '../../scripts/lib/config.ts';
import { createContainer, imageExists, removeContainer } from '../../scripts/lib/docker.ts';
import { imageTag, loadImageDef } from '../../scripts/lib/image-def.ts';
import { md5OfFile, parseMd5File } from '../../scripts/lib/md5file.ts';
import { read, run, stream } from '../../scripts/lib/shell.ts';
import { compressThreaded } from '../../scripts/export/threaded-lz4.ts';
import { findLz4Mt } from '../../scripts/export/lz4-mt.ts';
import { containerLeftovers, tarDeleteArgv } from '../../scripts/export/leftovers.ts';
import { mountContainer, mountedLeftovers, rootfsTarArgv } from '../../scripts/export/rootfs.ts';
import { TarReader } from '../../scripts/lint/tar-stream.ts';
import { DEFAULT_LEVEL, exportImage } from '../../scripts/export/export.ts';
import { openTarSource } from '../../scripts/export/tar-source.ts';
import { ensureDebianArtifact } from '../helpers/debian.ts';

// the shared Debian fixture, built by its named helper if missing (no dependency on file order)
test.before(async () => {
  await ensureDebianArtifact();
});

const SRC = join(ROOT, 'tests', 'lz4compat');
const BIN = join(config().binDir, 'lz4compat');
const def = loadImageDef('debian');
const IMAGE = imageTag(def);
const DEBIAN_ARTIFACT = join(config().imagesDir, def.os, def.version, 'img.tar.lz4');

/** Build the Go decoder into .state/bin unless it is newer than its sources. */
async function buildDecoder(): Promise<string> {
  const newest = Math.max(...['main.go', 'go.mod', 'go.sum'].map((f) => statSync(join(SRC, f)).mtimeMs));
  if (existsSync(BIN) && statSync(BIN).mtimeMs > newest) return BIN;
  mkdirSync(config().binDir, { recursive: true });
  await run(['go', 'build', '-trimpath', '-o', BIN, '.'], { cwd: SRC, env: { GOFLAGS: '-mod=readonly' }, hint: 'is the Go module proxy reachable? (go mod download in tests/lz4compat)' });
  return BIN;
}

/** sha256 and length as the Go decoder reports them. */
async function goDecode(file: string): Promise<{ sha256: string; bytes: number }> {
  const line = await read([await buildDecoder(), file]);
  const m = /^([0-9a-f]{64}) (\d+)$/.exec(line);
  assert.ok(m, `unexpected lz4compat output: ${line}`);
  return { sha256: m![1]!, bytes: Number(m![2]) };
}

/** sha256 and length of a command's stdout, streamed. */
async function hashOutput(argv: string[]): Promise<{ sha256: string; bytes: number }> {
  const p = stream(argv);
  const h = createHash('sha256');
  let bytes = 0;
  p.stdout.on('data', (d: Buffer) => {
    h.update(d);
    bytes += d.length;
  });
  await p.done;
  return { sha256: h.digest('hex'), bytes };
}

function sha256(b: Buffer): { sha256: string; bytes: number } {
  return { sha256: createHash('sha256').update(b).digest('hex'), bytes: b.length };
}

/** A write callback into a file, with backpressure, and the function that closes it. */
function fileSink(file: string): { write: (b: Buffer) => Promise<void> | void; close: () => Promise<void> } {
  const out = createWriteStream(file);
  return {
    write: (b) => {
      if (!out.write(b)) return new Promise<void>((r) => out.once('drain', () => r()));
    },
    close: () => new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve()))),
  };
}

/** The export's compressor: one lz4 1.10 process with threads, reading `src` through a pipe (cat). */
async function compressThreadedTo(file: string, src: string, opts: { threads: number; level: number; contentChecksum: boolean }): Promise<{ inBytes: number }> {
  const mt = await findLz4Mt();
  assert.ok(mt, '.state/bin/lz4-1.10 is not built: make setup builds it (make test-integration runs setup)');
  const cat = stream(['cat', src]);
  const sink = fileSink(file);
  const r = await compressThreaded(cat.stdout, { ...opts, bin: mt!.path, write: sink.write });
  await cat.done;
  await sink.close();
  return r;
}

/** sha256 of a file. */
function fileSha(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** 2500-01-01: later than every mtime, so GNU tar --clamp-mtime changes none. */
const NO_CLAMP = 16725225600;
/** An epoch in the past, so the clamp applies. */
const EPOCH = 1700000000;

const scratch = (): string => {
  mkdirSync(join(config().stateDir, 'tmp'), { recursive: true });
  return mkdtempSync(join(config().stateDir, 'tmp', 'lz4compat-'));
};

test('tests/lz4compat pins github.com/pierrec/lz4/v4 v4.1.22 (the metal-hammer\'s decoder)', async () => {
  assert.match(readFileSync(join(SRC, 'go.mod'), 'utf8'), /^require github\.com\/pierrec\/lz4\/v4 v4\.1\.22$/m);
  assert.match(readFileSync(join(SRC, 'go.sum'), 'utf8'), /^github\.com\/pierrec\/lz4\/v4 v4\.1\.22 h1:/m);
  await buildDecoder();
  assert.ok(existsSync(BIN));
});

test('lz4 1.10 -T writes the frame a single thread writes, at every level tried; pierrec decodes it', async () => {
  const dir = scratch();
  try {
    // a 13 MiB input: some text-like, some noise, some zeros
    const data = Buffer.alloc(13 * 1024 * 1024 + 4567);
    for (let i = 0; i < data.length; i++) data[i] = i % 3 === 0 ? (i * 2654435761) >>> 27 : i % 1000 < 700 ? 0x61 + ((i >> 7) % 26) : 0;
    const src = join(dir, 'input');
    writeFileSync(src, data);
    const want = sha256(data);
    for (const [level, workers, contentChecksum] of [[DEFAULT_LEVEL, 2, true], [6, 2, true], [9, 3, true], [1, 1, false], [12, 2, true]] as const) {
      const what = `level ${level}, ${workers} threads, content checksum ${contentChecksum}`;
      const one = join(dir, `l${level}t1.lz4`);
      const threads = join(dir, `l${level}t${workers}.lz4`);
      await compressThreadedTo(one, src, { level, threads: 1, contentChecksum });
      await compressThreadedTo(threads, src, { level, threads: workers, contentChecksum });
      assert.is(fileSha(threads), fileSha(one), `${what}: the frame depends on the thread count`);
      assert.equal(await goDecode(threads), want, what);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('pierrec v4.1.22 reads only the first of concatenated frames (why the export writes one)', async () => {
  const dir = scratch();
  try {
    const a = Buffer.from('first frame\n'.repeat(1000));
    const b = Buffer.from('second frame\n'.repeat(1000));
    const fa = join(dir, 'a.lz4');
    const fb = join(dir, 'b.lz4');
    writeFileSync(join(dir, 'a'), a);
    writeFileSync(join(dir, 'b'), b);
    await compressThreadedTo(fa, join(dir, 'a'), { level: 9, threads: 1, contentChecksum: true });
    await compressThreadedTo(fb, join(dir, 'b'), { level: 9, threads: 1, contentChecksum: true });
    const both = join(dir, 'both.lz4');
    writeFileSync(both, Buffer.concat([readFileSync(fa), readFileSync(fb)]));
    assert.equal(await goDecode(both), sha256(a), 'pierrec stops after the first frame, without an error');
    assert.equal(await hashOutput(['lz4', '-d', '-q', '-c', both]), sha256(Buffer.concat([a, b])), 'lz4 -d decodes both');
    // a corrupted content checksum is an error for pierrec, so a passing decode proves it was checked
    const bad = readFileSync(fa);
    bad[bad.length - 1] = bad[bad.length - 1]! ^ 0x01;
    writeFileSync(fa, bad);
    const r = await run([await buildDecoder(), fa], { nothrow: true });
    assert.is(r.code, 1);
    assert.match(r.stderr, /invalid frame checksum/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test(`one container of ${IMAGE} via the docker export source: one frame, and pierrec returns exactly the filtered tar`, async () => {
  assert.ok(await imageExists(IMAGE), `${IMAGE} is not built: run make debian`);
  const dir = scratch();
  const id = await createContainer(IMAGE);
  try {
    const mt = await findLz4Mt();
    const source = await openTarSource(id, { want: 'docker', mtimeEpoch: 0 });
    const sink = fileSink(join(dir, 'threads.lz4'));
    const a = await compressThreaded(source.stdout, { level: DEFAULT_LEVEL, threads: availableParallelism(), contentChecksum: true, bin: mt!.path, write: sink.write });
    await source.verify();
    await sink.close();
    assert.is(source.kind, 'docker');
    assert.ok(source.leftovers.includes('.dockerenv'), `docker adds /.dockerenv to every container: ${source.leftovers.join(' ')}`);
    assert.ok(source.leftovers.includes('dev/null'), `the base has device nodes: ${source.leftovers.join(' ')}`);

    // the same container exported again and filtered the same way: the bytes the frame holds
    const again = stream(['docker', 'export', id]);
    const filtered = stream(tarDeleteArgv(source.leftovers), { stdin: again.stdout });
    const h = createHash('sha256');
    let bytes = 0;
    filtered.stdout.on('data', (d: Buffer) => {
      h.update(d);
      bytes += d.length;
    });
    await Promise.all([again.done, filtered.done]);
    const want = { sha256: h.digest('hex'), bytes };
    assert.ok(want.bytes > 100e6, `a real image tar is over 100 MB, got ${want.bytes}`);
    assert.is(a.inBytes, want.bytes, 'the byte count lz4 reported');

    const file = join(dir, 'threads.lz4');
    assert.equal(await goDecode(file), want, 'pierrec/lz4 v4.1.22 output vs the filtered tar');
    assert.equal(await hashOutput(['lz4', '-d', '-q', '-c', file]), want, 'lz4 -dc output vs the filtered tar');
    const listing = await read(['sh', '-c', 'lz4 -dc "$1" | tar -t', 'sh', file]);
    for (const gone of source.leftovers) assert.not.ok(listing.split('\n').includes(gone), `${gone} is still in the tar`);
    assert.ok(listing.split('\n').includes('dev/'), 'the /dev directory itself stays (the hammer binds /dev onto it)');
  } finally {
    await removeContainer(id);
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Every entry of a tar stream: path -> type, permission bits, owner, mtime, link, size, xattrs, device, and the sha256 of bodies up to 1 MiB (the reader's capture limit). */
async function entriesOf(tar: Readable): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const reader = new TarReader({
    capture: () => true,
    onEntry: (e) => {
      const sha = e.body ? createHash('sha256').update(e.body).digest('hex') : '';
      const xattrs = Object.entries(e.xattrs).map(([k, v]) => `${k}=${v.toString('hex')}`).sort().join(',');
      out.set(e.path.replace(/\/$/, ''), [e.type === '\0' ? '0' : e.type, (e.mode & 0o7777).toString(8), e.uid, e.gid, e.mtime, e.linkpath, e.size, sha, xattrs, e.devmajor, e.devminor].join(' '));
    },
  });
  for await (const chunk of tar as AsyncIterable<Buffer>) reader.push(chunk);
  assert.ok(reader.ended, 'the tar has its end-of-archive marker');
  return out;
}

test(`the mounted layers (the default source) hold what docker export holds, entry by entry (bodies up to 1 MiB hashed); the frame decodes to that tar`, async () => {
  const id = await createContainer(IMAGE);
  const dir = scratch();
  try {
    const mounted = await mountContainer(id);
    assert.type(mounted, 'object', `the integration suite runs as root with overlay2: ${String(mounted)}`);
    const m = mounted as Exclude<typeof mounted, string>;
    const leftovers = mountedLeftovers(m.dir);
    // no clamping here (an epoch far in the future): the mtimes must equal docker's
    const viaMount = stream(rootfsTarArgv(m.dir, m.topLevel, leftovers, NO_CLAMP), { env: { LC_ALL: 'C' } });
    const fromMount = await entriesOf(viaMount.stdout);
    await viaMount.done;
    await m.unmount();

    const names = await containerLeftovers(id);
    const exporter = stream(['docker', 'export', id]);
    const filtered = stream(tarDeleteArgv(names), { stdin: exporter.stdout }); // handed over in the same tick
    const fromDocker = await entriesOf(filtered.stdout);
    await Promise.all([exporter.done, filtered.done]);

    assert.ok(fromDocker.size > 10000, `a real image has many entries: ${fromDocker.size}`);
    const differ = [...new Set([...fromMount.keys(), ...fromDocker.keys()])].filter((k) => fromMount.get(k) !== fromDocker.get(k));
    assert.equal(differ.slice(0, 5).map((k) => `${k}: docker ${fromDocker.get(k)} | mount ${fromMount.get(k)}`), [], `${differ.length} entries differ`);
    assert.ok([...fromMount.values()].some((v) => v.includes('security.capability')), 'file capabilities (ping) are kept');
    for (const f of ['etc/hostname', 'etc/hosts', 'etc/resolv.conf']) assert.match(fromMount.get(f) ?? '', /^0 755 0 0 \d+  0 /, `${f} is docker's empty init-layer file, not the build host's`);

    // the export's source: the frame decodes to exactly what GNU tar writes from the mount
    const file = join(dir, 'img.tar.lz4');
    const sink = fileSink(file);
    const mt = await findLz4Mt(); // before the source starts: its stdout is handed over in the tick it is created
    const source = await openTarSource(id, { mtimeEpoch: EPOCH });
    await compressThreaded(source.stdout, { level: DEFAULT_LEVEL, threads: availableParallelism(), contentChecksum: true, bin: mt!.path, write: sink.write });
    assert.is(source.kind, 'mount');
    await source.verify();
    await source.close();
    await sink.close();
    const again = await mountContainer(id);
    const a = again as Exclude<typeof again, string>;
    const tar = stream(rootfsTarArgv(a.dir, a.topLevel, mountedLeftovers(a.dir), EPOCH), { env: { LC_ALL: 'C' } });
    const h = createHash('sha256');
    let bytes = 0;
    tar.stdout.on('data', (d: Buffer) => {
      h.update(d);
      bytes += d.length;
    });
    await tar.done;
    await a.unmount();
    assert.equal(await goDecode(file), { sha256: h.digest('hex'), bytes }, 'pierrec output vs GNU tar of the mount');
    assert.not.ok(readFileSync('/proc/self/mounts', 'utf8').includes(`rootfs-${process.pid}-`), 'every mount was undone');
  } finally {
    await removeContainer(id);
    rmSync(dir, { recursive: true, force: true });
  }
});

test(`exportImage (the code path of make debian) writes one frame pierrec decodes, checksums verified`, async () => {
  const dir = scratch();
  try {
    const r = await exportImage(IMAGE, def.packages_command, dir, { quiet: true });
    const got = await goDecode(r.image); // verifies the xxh32 of the tar exportImage read
    assert.is(got.bytes, r.tarBytes, 'decoded length vs the tar bytes exportImage counted');
    assert.equal(await hashOutput(['lz4', '-d', '-q', '-c', r.image]), got, 'lz4 -dc agrees with pierrec');
    assert.is(parseMd5File(readFileSync(join(dir, 'img.tar.lz4.md5'), 'utf8'), 'img.tar.lz4'), await md5OfFile(r.image));
    assert.is(statSync(r.image).size, r.lz4Bytes);
    // exactly one frame of independent 4 MiB blocks (lz4 --list counts the frames in the file)
    const list = await read(['lz4', '--list', r.image]);
    assert.match(list, /^\s*1\s+LZ4Frame\s+B7I\s/m, list);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the real artifact images/debian/12/img.tar.lz4 decodes with pierrec as with lz4 -d', async () => {
  assert.ok(existsSync(DEBIAN_ARTIFACT), `${DEBIAN_ARTIFACT} is missing: run make debian`);
  // a hard link pins this version: a concurrent re-export renames a new file into place
  const dir = scratch();
  try {
    const file = join(dir, 'img.tar.lz4');
    linkSync(DEBIAN_ARTIFACT, file);
    const got = await goDecode(file);
    assert.ok(got.bytes > 100e6, `decoded ${got.bytes} bytes`);
    assert.equal(await hashOutput(['lz4', '-d', '-q', '-c', file]), got);
    assert.match(await read(['lz4', '--list', file]), /^\s*1\s+LZ4Frame\s+B7I\s/m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
