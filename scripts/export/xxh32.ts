// XXH32, the checksum of the LZ4 frame format (header checksum and content checksum).
// Streaming, with a fast path over 4-byte-aligned buffers.

const P1 = 0x9e3779b1;
const P2 = 0x85ebca77;
const P3 = 0xc2b2ae3d;
const P4 = 0x27d4eb2f;
const P5 = 0x165667b1;

const rotl = (x: number, r: number): number => (x << r) | (x >>> (32 - r));
const round = (acc: number, lane: number): number => Math.imul(rotl((acc + Math.imul(lane, P2)) | 0, 13), P1);

export class XXH32 {
  private v1: number;
  private v2: number;
  private v3: number;
  private v4: number;
  private total = 0;
  private readonly mem = Buffer.alloc(16);
  private memSize = 0;
  constructor(private readonly seed = 0) {
    this.v1 = (seed + P1 + P2) | 0;
    this.v2 = (seed + P2) | 0;
    this.v3 = seed | 0;
    this.v4 = (seed - P1) | 0;
  }

  update(input: Uint8Array): this {
    let buf = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    this.total += buf.length;
    if (this.memSize > 0) {
      const take = Math.min(16 - this.memSize, buf.length);
      buf.copy(this.mem, this.memSize, 0, take);
      this.memSize += take;
      buf = buf.subarray(take);
      if (this.memSize < 16) return this;
      this.stripes(this.mem, 0, 16);
      this.memSize = 0;
    }
    const full = buf.length - (buf.length % 16);
    if (full > 0) this.stripes(buf, 0, full);
    if (full < buf.length) {
      buf.copy(this.mem, 0, full);
      this.memSize = buf.length - full;
    }
    return this;
  }

  private stripes(buf: Buffer, start: number, end: number): void {
    let { v1, v2, v3, v4 } = this;
    if ((buf.byteOffset + start) % 4 === 0) {
      const w = new Uint32Array(buf.buffer, buf.byteOffset + start, (end - start) >>> 2);
      for (let i = 0; i < w.length; i += 4) {
        v1 = round(v1, w[i]!);
        v2 = round(v2, w[i + 1]!);
        v3 = round(v3, w[i + 2]!);
        v4 = round(v4, w[i + 3]!);
      }
    } else {
      for (let p = start; p < end; p += 16) {
        v1 = round(v1, buf.readUInt32LE(p));
        v2 = round(v2, buf.readUInt32LE(p + 4));
        v3 = round(v3, buf.readUInt32LE(p + 8));
        v4 = round(v4, buf.readUInt32LE(p + 12));
      }
    }
    this.v1 = v1;
    this.v2 = v2;
    this.v3 = v3;
    this.v4 = v4;
  }

  digest(): number {
    let h: number;
    if (this.total >= 16) h = (rotl(this.v1, 1) + rotl(this.v2, 7) + rotl(this.v3, 12) + rotl(this.v4, 18)) | 0;
    else h = (this.seed + P5) | 0;
    h = (h + this.total) | 0;
    let p = 0;
    const m = this.mem;
    for (; p + 4 <= this.memSize; p += 4) h = Math.imul(rotl((h + Math.imul(m.readUInt32LE(p), P3)) | 0, 17), P4);
    for (; p < this.memSize; p++) h = Math.imul(rotl((h + Math.imul(m[p]!, P5)) | 0, 11), P1);
    h ^= h >>> 15;
    h = Math.imul(h, P2);
    h ^= h >>> 13;
    h = Math.imul(h, P3);
    h ^= h >>> 16;
    return h >>> 0;
  }
}

export function xxh32(data: Uint8Array, seed = 0): number {
  return new XXH32(seed).update(data).digest();
}
