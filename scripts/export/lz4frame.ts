// The LZ4 frame format (lz4_Frame_format.md), the parts the exporter writes and reads: a frame of
// independent blocks, each compressed separately, so blocks can be made in parallel and still form
// one standard frame.
import { xxh32 } from './xxh32.ts';

export const MAGIC = 0x184d2204;
export const BLOCK_SIZE = 4 * 1024 * 1024; // block max size id 7
const BLOCK_SIZE_ID = 7;

export interface FrameFlags {
  blockIndependent: boolean;
  blockChecksum: boolean;
  contentSize: boolean;
  contentChecksum: boolean;
  blockMaxSize: number;
}

/** Pure: the 7-byte header of a frame of independent 4 MiB blocks. */
export function frameHeader(contentChecksum: boolean): Buffer {
  const h = Buffer.alloc(7);
  h.writeUInt32LE(MAGIC, 0);
  h[4] = (1 << 6) | (1 << 5) | (contentChecksum ? 1 << 2 : 0); // version 01, block independence
  h[5] = BLOCK_SIZE_ID << 4;
  h[6] = (xxh32(h.subarray(4, 6)) >>> 8) & 0xff;
  return h;
}

/** Pure: parse and check a frame header at the start of buf; returns flags and header length. */
export function parseFrameHeader(buf: Buffer): { flags: FrameFlags; length: number } {
  if (buf.length < 7) throw new Error('LZ4 frame header truncated');
  if (buf.readUInt32LE(0) !== MAGIC) throw new Error(`not an LZ4 frame (magic ${buf.readUInt32LE(0).toString(16)})`);
  const flg = buf[4]!;
  const bd = buf[5]!;
  if (flg >> 6 !== 1) throw new Error(`unsupported LZ4 frame version ${flg >> 6}`);
  const flags: FrameFlags = {
    blockIndependent: Boolean(flg & 0x20),
    blockChecksum: Boolean(flg & 0x10),
    contentSize: Boolean(flg & 0x08),
    contentChecksum: Boolean(flg & 0x04),
    blockMaxSize: 1 << (8 + 2 * ((bd >> 4) & 7)),
  };
  const dictId = Boolean(flg & 0x01);
  const length = 7 + (flags.contentSize ? 8 : 0) + (dictId ? 4 : 0);
  if (buf.length < length) throw new Error('LZ4 frame header truncated');
  const hc = (xxh32(buf.subarray(4, length - 1)) >>> 8) & 0xff;
  if (buf[length - 1] !== hc) throw new Error('LZ4 frame header checksum mismatch');
  return { flags, length };
}

/** Pure: the end mark, with the content checksum when the header announced one. */
export function frameTrailer(contentChecksum: number | null): Buffer {
  const t = Buffer.alloc(contentChecksum === null ? 4 : 8);
  if (contentChecksum !== null) t.writeUInt32LE(contentChecksum >>> 0, 4);
  return t;
}
