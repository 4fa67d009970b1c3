// The LZ4 frame pieces the exporter writes and reads (scripts/export/lz4frame.ts, xxh32.ts), and
// the block-parallel compressor (parallel-lz4.ts) on small synthetic inputs against the real lz4
// CLI: the frame must round-trip through `lz4 -dc` and equal what one `lz4 -<level> -B7 -BI`
// writes for the same bytes, whatever the number of workers.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Readable } from 'node:stream';
import { BLOCK_SIZE, MAGIC, frameHeader, frameTrailer, parseFrameHeader } from '../../scripts/export/lz4frame.ts';
import { XXH32, xxh32 } from '../../scripts/export/xxh32.ts';
import { compressParallel } from '../../scripts/export/parallel-lz4.ts';
import { stream } from '../../scripts/lib/shell.ts';

/** Deterministic bytes that compress like a file system: text-ish runs, zeros and noise. */
function synthetic(size: number, seed = 1): Buffer {
  let s = seed >>> 0;
  const rnd = (): number => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x100000000;
  };
  const words = ['metal', 'stack', 'image', 'kernel', 'systemd', 'frr', '/usr/lib/', 'debian', '\n', ' ', 'lz4', '0755'].map((w) => Buffer.from(w));
  const out = Buffer.alloc(size);
  let p = 0;
  while (p < size) {
    const kind = rnd();
    const len = Math.min(size - p, 1 + Math.floor(rnd() * 4096));
    if (kind < 0.6) {
      for (let e = p + len; p < e; ) {
        const w = words[Math.floor(rnd() * words.length)]!;
        p += w.copy(out, p, 0, Math.min(w.length, e - p));
      }
    } else if (kind < 0.75) {
      p += len; // zeros
    } else {
      for (const e = p + len; p < e; p++) out[p] = Math.floor(rnd() * 256);
    }
  }
  return out;
}

/** Run a command with `input` on stdin and collect its binary stdout. */
async function pipeThrough(argv: string[], input: Buffer): Promise<Buffer> {
  const p = stream(argv, { stdin: 'pipe' });
  const chunks: Buffer[] = [];
  p.stdout.on('data', (d: Buffer) => chunks.push(d));
  p.stdin!.end(input);
  await p.done;
  return Buffer.concat(chunks);
}

/** compressParallel fed in uneven pieces (as docker export delivers them), collected in memory. */
async function compress(input: Buffer, workers: number, level: number, contentChecksum = true): Promise<{ frame: Buffer; inBytes: number; outBytes: number; blocks: number }> {
  const pieces: Buffer[] = [];
  for (let off = 0, i = 0; off < input.length; i++) {
    const n = [65536, 1, 777, 300000, 4 * 1024 * 1024 + 5][i % 5]!;
    pieces.push(input.subarray(off, off + n));
    off += n;
  }
  const out: Buffer[] = [];
  const r = await compressParallel(Readable.from(pieces), { workers, level, contentChecksum, write: (b) => void out.push(Buffer.from(b)) });
  const frame = Buffer.concat(out);
  return { frame, ...r };
}

test('xxh32 matches the reference vectors', () => {
  assert.is(xxh32(Buffer.alloc(0)), 0x02cc5d05);
  assert.is(xxh32(Buffer.from('a')), 0x550d7456);
  assert.is(xxh32(Buffer.from('abc')), 0x32d153ff);
  // 16+ bytes take the four-lane path; value from the xxHash reference implementation
  assert.is(xxh32(Buffer.from('Nobody inspects the spammish repetition')), 0xe2293b2f);
  assert.is(xxh32(Buffer.from('abc'), 1), xxh32(Buffer.from('abc'), 1));
  assert.is.not(xxh32(Buffer.from('abc'), 1), 0x32d153ff);
});

test('xxh32 streamed in odd pieces, at odd offsets, equals one shot', () => {
  const data = synthetic(1024 * 1024 + 3, 7);
  const whole = xxh32(data);
  for (const sizes of [[1], [3, 5, 7], [15, 16, 17], [4093, 1]]) {
    const h = new XXH32();
    for (let off = 0, i = 0; off < data.length; i++) {
      const n = sizes[i % sizes.length]!;
      h.update(data.subarray(off, off + n)); // subarray offsets are not 4-byte aligned
      off += n;
    }
    assert.is(h.digest(), whole, `pieces ${sizes.join(',')}`);
  }
  // an unaligned copy (byteOffset 1) takes the slow path and must agree
  const shifted = Buffer.alloc(data.length + 1);
  data.copy(shifted, 1);
  assert.is(xxh32(shifted.subarray(1)), whole);
});

test('frameHeader writes what lz4 -B7 -BI writes, with and without content checksum', () => {
  assert.equal([...frameHeader(true)], [0x04, 0x22, 0x4d, 0x18, 0x64, 0x70, 0xb9]);
  assert.equal([...frameHeader(false)], [0x04, 0x22, 0x4d, 0x18, 0x60, 0x70, 0x73]);
  assert.is(frameHeader(true).readUInt32LE(0), MAGIC);
});

test('parseFrameHeader reads flags back and checks the header checksum', () => {
  const { flags, length } = parseFrameHeader(frameHeader(true));
  assert.is(length, 7);
  assert.equal(flags, { blockIndependent: true, blockChecksum: false, contentSize: false, contentChecksum: true, blockMaxSize: BLOCK_SIZE });
  assert.is(parseFrameHeader(frameHeader(false)).flags.contentChecksum, false);
  // lz4's own small-input header: 64 KiB blocks
  assert.is(parseFrameHeader(Buffer.from([0x04, 0x22, 0x4d, 0x18, 0x64, 0x40, 0xa7])).flags.blockMaxSize, 64 * 1024);

  const bad = Buffer.from(frameHeader(true));
  bad[6] = bad[6]! ^ 0xff;
  assert.throws(() => parseFrameHeader(bad), /LZ4 frame header checksum mismatch/);
  const flipped = Buffer.from(frameHeader(true));
  flipped[5] = 0x60; // claims 1 MiB blocks, checksum still for 4 MiB
  assert.throws(() => parseFrameHeader(flipped), /checksum mismatch/);
  assert.throws(() => parseFrameHeader(frameHeader(true).subarray(0, 6)), /truncated/);
  assert.throws(() => parseFrameHeader(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0])), /not an LZ4 frame \(magic fd2fb528\)/);
  const v0 = Buffer.from(frameHeader(true));
  v0[4] = 0x24;
  assert.throws(() => parseFrameHeader(v0), /unsupported LZ4 frame version 0/);
  // content size announced: 8 more header bytes, which must be present
  const withSize = Buffer.from([0x04, 0x22, 0x4d, 0x18, 0x6c, 0x70]);
  assert.throws(() => parseFrameHeader(Buffer.concat([withSize, Buffer.alloc(1)])), /truncated/);
});

test('frameTrailer: end mark, then the content checksum little-endian', () => {
  assert.equal([...frameTrailer(null)], [0, 0, 0, 0]);
  assert.equal([...frameTrailer(0x02cc5d05)], [0, 0, 0, 0, 0x05, 0x5d, 0xcc, 0x02]);
});

const INPUT = synthetic(9 * 1024 * 1024 + 123);

test('compressParallel at level 9 equals lz4 -9 -B7 -BI byte for byte, for 1, 2 and 3 workers', async () => {
  const reference = await pipeThrough(['lz4', '-9', '-B7', '-BI', '-q', '-c'], INPUT);
  assert.equal([...reference.subarray(0, 7)], [...frameHeader(true)], 'lz4 wrote a 4 MiB-block frame with content checksum');
  for (const workers of [1, 2, 3]) {
    const r = await compress(INPUT, workers, 9);
    assert.is(r.inBytes, INPUT.length);
    assert.is(r.outBytes, r.frame.length);
    assert.is(r.blocks, 3);
    assert.ok(r.frame.equals(reference), `${workers} workers: ${r.frame.length} bytes vs lz4's ${reference.length}`);
  }
});

test('compressParallel round-trips through lz4 -dc at the default level 6, and equals lz4 -6', async () => {
  const reference = await pipeThrough(['lz4', '-6', '-B7', '-BI', '-q', '-c'], INPUT);
  for (const workers of [1, 3]) {
    const r = await compress(INPUT, workers, 6);
    assert.ok(r.frame.equals(reference), `${workers} workers differ from lz4 -6`);
    const back = await pipeThrough(['lz4', '-d', '-q', '-c'], r.frame);
    assert.ok(back.equals(INPUT), `${workers} workers: lz4 -dc gave ${back.length} bytes, input was ${INPUT.length}`);
  }
  assert.ok(reference.length < INPUT.length * 0.8, 'the synthetic input is compressible');
});

test('compressParallel without content checksum equals lz4 --no-frame-crc', async () => {
  const reference = await pipeThrough(['lz4', '-9', '-B7', '-BI', '--no-frame-crc', '-q', '-c'], INPUT);
  const r = await compress(INPUT, 2, 9, false);
  assert.ok(r.frame.equals(reference));
  assert.is(r.frame.subarray(-4).readUInt32LE(0), 0, 'ends with the end mark, no checksum');
});

test('compressParallel: empty input and exact multiples of the block size', async () => {
  const empty = await compress(Buffer.alloc(0), 2, 9);
  assert.equal([...empty.frame], [...frameHeader(true), 0, 0, 0, 0, 0x05, 0x5d, 0xcc, 0x02]);
  assert.is(empty.blocks, 0);
  assert.ok((await pipeThrough(['lz4', '-d', '-q', '-c'], empty.frame)).equals(Buffer.alloc(0)));
  const exact = INPUT.subarray(0, 2 * BLOCK_SIZE);
  const r = await compress(exact, 3, 9);
  assert.is(r.blocks, 2);
  assert.ok(r.frame.equals(await pipeThrough(['lz4', '-9', '-B7', '-BI', '-q', '-c'], exact)));
});

test('compressParallel: more workers than chunks, and a worker whose only chunk is short', async () => {
  // lz4 fits the announced block size to an input smaller than one block (here 64 KiB for a
  // worker that gets nothing, 256 KiB for one that gets only a 100 kB tail); the blocks are the
  // same, so after the header the frame equals one lz4 run over the whole input (whose own header
  // is fitted too when the whole input is under 4 MiB).
  for (const [size, workers] of [
    [100_000, 2],
    [BLOCK_SIZE + 100_000, 3],
    [2 * BLOCK_SIZE + 100_000, 8],
  ] as const) {
    const data = INPUT.subarray(0, size);
    const r = await compress(data, workers, 9);
    const reference = await pipeThrough(['lz4', '-9', '-B7', '-BI', '-q', '-c'], data);
    assert.equal([...r.frame.subarray(0, 7)], [...frameHeader(true)]);
    assert.ok(r.frame.subarray(7).equals(reference.subarray(7)), `${size} bytes, ${workers} workers`);
    assert.ok((await pipeThrough(['lz4', '-d', '-q', '-c'], r.frame)).equals(data));
  }
});

test('compressParallel fails when a compressor cannot start', async () => {
  const path = process.env['PATH'];
  process.env['PATH'] = '/nonexistent';
  try {
    await compress(INPUT.subarray(0, 1000), 2, 9);
    assert.unreachable('compressParallel succeeded without lz4');
  } catch (e) {
    assert.match((e as Error).message, /^lz4 .* exited 127 \(command not found\)/);
  } finally {
    process.env['PATH'] = path;
  }
});

test.run();
