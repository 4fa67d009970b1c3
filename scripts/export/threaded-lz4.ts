// LZ4 HC on all cores with ONE lz4 >= 1.10 process: `lz4 -<level> -T<n> -B7 -BI` reading the tar
// from the process before it (handed over as its stdin, never copied through node). lz4's own
// threads compress independent 4 MiB blocks and write them in order, with the xxh32 content
// checksum computed in C. The frame is byte-for-byte the one a single-threaded `lz4 -<level>`
// writes: one standard frame, which the metal-hammer's pierrec/lz4 reader decodes
// (tests/integration/lz4compat.test.ts).
import type { Readable } from 'node:stream';
import { MetalError } from '../lib/errors.ts';
import { stream } from '../lib/shell.ts';

/** lz4 -B7: independent 4 MiB blocks. */
export const BLOCK_SIZE = 4 * 1024 * 1024;

export interface CompressOptions {
  level: number;
  contentChecksum: boolean;
  /** Every piece of the frame, in order; awaited (backpressure). */
  write: (buf: Buffer) => Promise<void> | void;
  onProgress?: (tarBytes: number) => void;
}

export interface CompressResult {
  inBytes: number;
  outBytes: number;
  blocks: number;
}

const HINT = 'the lz4 >= 1.10 build may be broken: rm .state/bin/lz4-1.10* and run make setup';

/** Pure: the argv of the compressing process. -v: it reports progress and its byte counts on stderr. */
export function threadedLz4Argv(bin: string, level: number, threads: number, contentChecksum: boolean): string[] {
  // -B7 -BI are lz4's defaults, spelled out: the frame must not depend on a future default.
  return [bin, `-${level}`, `-T${threads}`, '-B7', '-BI', ...(contentChecksum ? [] : ['--no-frame-crc']), '-v', '-c'];
}

/** Pure: bytes read so far from lz4 -v's progress display ("Read : 16 MiB ..."), or null. */
export function lz4Progress(stderrTail: string): number | null {
  const all = [...stderrTail.matchAll(/Read : (\d+) MiB/g)];
  const last = all[all.length - 1];
  return last ? Number(last[1]) * 1024 * 1024 : null;
}

/** Pure: lz4 -v's closing count ("Compressed 904632320 bytes into 388632335 bytes ==> 42.96%"). */
export function lz4Totals(stderrTail: string): { inBytes: number; outBytes: number } | null {
  const m = /Compressed (\d+) bytes into (\d+) bytes/.exec(stderrTail);
  return m ? { inBytes: Number(m[1]), outBytes: Number(m[2]) } : null;
}

export async function compressThreaded(input: Readable, opts: CompressOptions & { threads: number; bin: string }): Promise<CompressResult> {
  const argv = threadedLz4Argv(opts.bin, opts.level, Math.max(1, opts.threads), opts.contentChecksum);
  const proc = stream(argv, { stdin: input, hint: HINT });
  let stderr = '';
  proc.child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('latin1')).slice(-4096);
    const n = lz4Progress(stderr);
    if (n !== null) opts.onProgress?.(n);
  });
  let outBytes = 0;
  try {
    for await (const data of proc.stdout as AsyncIterable<Buffer>) {
      outBytes += data.length;
      await opts.write(data);
    }
    await proc.done;
  } catch (e) {
    proc.kill();
    throw e;
  }
  const totals = lz4Totals(stderr);
  if (!totals) throw new MetalError('tool', `${argv[0]} did not report how many bytes it compressed`, HINT);
  if (totals.outBytes !== outBytes) throw new MetalError('tool', `${argv[0]} reports ${totals.outBytes} compressed bytes, but wrote ${outBytes}`, HINT);
  return { inBytes: totals.inBytes, outBytes, blocks: Math.ceil(totals.inBytes / BLOCK_SIZE) };
}
