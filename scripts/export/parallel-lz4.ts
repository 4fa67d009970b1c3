// Block-parallel LZ4 HC compression into ONE standard frame.
//
// The input is cut into 4 MiB chunks; chunk i goes to compressor process i mod N, a plain
// `lz4 -<level> -B7` reading a stream. With independent blocks (lz4's default) and a block size
// equal to the chunk size, each process emits exactly one block per chunk it received. We parse
// the processes' frames, take their blocks back in input order, and write them under our own
// frame header. The result is byte-for-byte what a single `lz4 -<level> -B7 -BI` would have
// compressed, block by block, but made on all cores; memory stays bounded by the chunks in flight.
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { stream, type Streaming } from '../lib/shell.ts';
import { BLOCK_SIZE, frameHeader, frameTrailer, parseFrameHeader } from './lz4frame.ts';
import { XXH32 } from './xxh32.ts';

export interface CompressOptions {
  workers: number;
  level: number;
  /** Write the xxh32 content checksum (lz4's default); costs one pass over the input in JS. */
  contentChecksum: boolean;
  /** Called with every piece of the output frame, in order; awaited (backpressure). */
  write: (buf: Buffer) => Promise<void> | void;
  /** Called with the running input byte count. */
  onProgress?: (inBytes: number) => void;
}

export interface CompressResult {
  inBytes: number;
  outBytes: number;
  blocks: number;
}

/** One waiter at a time, woken by the other side of a producer/consumer pair. */
class Signal {
  private waiter: (() => void) | null = null;
  wait(): Promise<void> {
    return new Promise((r) => (this.waiter = r));
  }
  fire(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }
}

/** Reads one compressor's frame: header once, then block payloads (with their size word). */
class BlockReader {
  private bufs: Buffer[] = [];
  private have = 0;
  private headerDone = false;
  private ended = false;
  private waiter: (() => void) | null = null;
  private error: Error | null = null;
  blocksOut = 0;

  constructor(private readonly proc: Streaming) {
    proc.stdout.on('data', (d: Buffer) => {
      this.bufs.push(d);
      this.have += d.length;
      // Keep at most ~2 compressed blocks buffered per process.
      if (this.have > 2 * BLOCK_SIZE + 1024) proc.stdout.pause();
      this.wake();
    });
    proc.stdout.on('end', () => {
      this.ended = true;
      this.wake();
    });
    proc.done.catch((e: Error) => {
      this.error = e;
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  private peek(n: number): Buffer | null {
    if (this.have < n) return null;
    if (this.bufs[0]!.length < n) this.bufs = [Buffer.concat(this.bufs)];
    return this.bufs[0]!.subarray(0, n);
  }

  private take(n: number): Buffer {
    const out = Buffer.concat(this.bufs, this.have);
    this.bufs = out.length > n ? [out.subarray(n)] : [];
    this.have -= n;
    if (this.have <= 2 * BLOCK_SIZE) this.proc.stdout.resume();
    return out.subarray(0, n);
  }

  private async need(n: number): Promise<Buffer> {
    for (;;) {
      if (this.error) throw this.error;
      const b = this.peek(n);
      if (b) return b;
      if (this.ended) throw new Error(`lz4 output ended early (wanted ${n} bytes, have ${this.have})`);
      await new Promise<void>((r) => (this.waiter = r));
    }
  }

  /** Next block including its 4-byte size word, or null at the frame's end mark. */
  async next(): Promise<Buffer | null> {
    if (!this.headerDone) {
      const { flags, length } = parseFrameHeader(await this.need(7));
      // A compressor whose whole input is smaller than one block (it got no chunk, or only the
      // short last one) announces a smaller block size (lz4 fits it to the input): still fine.
      if (length !== 7 || !flags.blockIndependent || flags.blockChecksum || flags.contentChecksum || flags.blockMaxSize > BLOCK_SIZE) {
        throw new Error(`lz4 wrote an unexpected frame header (${JSON.stringify(flags)})`);
      }
      this.take(length);
      this.headerDone = true;
    }
    const word = (await this.need(4)).readUInt32LE(0);
    if (word === 0) {
      this.take(4);
      return null;
    }
    const size = word & 0x7fffffff;
    if (size > BLOCK_SIZE) throw new Error(`lz4 block of ${size} bytes exceeds the block size`);
    await this.need(4 + size);
    this.blocksOut++;
    return Buffer.from(this.take(4 + size)); // copy: the slice would pin the concatenated buffer
  }
}

export function lz4WorkerArgv(level: number): string[] {
  // -B7: 4 MiB blocks; -BI: independent blocks; no content or block checksum (we write our own).
  return ['lz4', `-${level}`, '-B7', '-BI', '--no-frame-crc', '-q', '-c'];
}

export async function compressParallel(input: Readable, opts: CompressOptions): Promise<CompressResult> {
  const n = Math.max(1, opts.workers);
  const procs = Array.from({ length: n }, () => stream(lz4WorkerArgv(opts.level), { stdin: 'pipe', hint: 'is lz4 installed? run make setup' }));
  const readers = procs.map((p) => new BlockReader(p));
  const sent = new Array<number>(n).fill(0);
  const xxh = opts.contentChecksum ? new XXH32() : null;
  const maxInFlight = n * 3;
  let chunkIndex = 0;
  let written = 0;
  let inBytes = 0;
  let outBytes = 0;
  const writerWake = new Signal();
  const producerWake = new Signal();
  let producerDone = false;
  const kill = (): void => procs.forEach((p) => p.kill());

  const emit = async (b: Buffer): Promise<void> => {
    outBytes += b.length;
    await opts.write(b);
  };

  const producer = (async () => {
    let chunk = Buffer.allocUnsafe(BLOCK_SIZE);
    let fill = 0;
    const dispatch = async (buf: Buffer): Promise<void> => {
      while (chunkIndex - written >= maxInFlight) await producerWake.wait();
      xxh?.update(buf);
      const w = chunkIndex % n;
      sent[w]!++;
      chunkIndex++;
      writerWake.fire();
      const stdin = procs[w]!.stdin!;
      if (!stdin.write(buf)) await once(stdin, 'drain');
    };
    for await (const data of input as AsyncIterable<Buffer>) {
      let off = 0;
      while (off < data.length) {
        const take = Math.min(BLOCK_SIZE - fill, data.length - off);
        data.copy(chunk, fill, off, off + take);
        fill += take;
        off += take;
        inBytes += take;
        if (fill === BLOCK_SIZE) {
          await dispatch(chunk);
          chunk = Buffer.allocUnsafe(BLOCK_SIZE);
          fill = 0;
        }
      }
      opts.onProgress?.(inBytes);
    }
    if (fill > 0) await dispatch(chunk.subarray(0, fill));
    producerDone = true;
    writerWake.fire();
    for (const p of procs) p.stdin!.end();
  })();

  const writer = (async () => {
    await emit(frameHeader(opts.contentChecksum));
    for (let i = 0; ; i++) {
      while (i >= chunkIndex && !producerDone) await writerWake.wait();
      if (i >= chunkIndex && producerDone) break;
      const block = await readers[i % n]!.next();
      if (block === null) throw new Error(`compressor ${i % n} ended its frame before block ${i}`);
      await emit(block);
      written = i + 1;
      producerWake.fire();
    }
    // Every compressor must now be at its end mark, having emitted one block per chunk it got.
    for (let w = 0; w < n; w++) {
      if ((await readers[w]!.next()) !== null) throw new Error(`compressor ${w} emitted more blocks than chunks it was sent`);
      if (readers[w]!.blocksOut !== sent[w]) throw new Error(`compressor ${w} emitted ${readers[w]!.blocksOut} blocks for ${sent[w]} chunks`);
    }
    await emit(frameTrailer(xxh ? xxh.digest() : null));
  })();

  try {
    await Promise.all([producer, writer, ...procs.map((p) => p.done)]);
  } catch (e) {
    kill();
    throw e;
  }
  return { inBytes, outBytes, blocks: chunkIndex };
}
