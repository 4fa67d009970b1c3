// A push-based tar header reader for the lint (pure: bytes in, entries out, no I/O).
// Not the `tar` package's Parser: that one drops entries it finds invalid (bad checksum, a linkpath
// on a non-link), sends unknown types to 'ignoredEntry', rewrites paths, and its PAX reader keeps
// only a fixed set of keys, so SCHILY.xattr.* (file capabilities) never reach the caller. The lint
// must see what the metal-hammer's Go archive/tar reader sees: raw paths, raw type flags and every
// PAX record. Bodies are skipped by arithmetic; only the few files the caller asks for are copied.

export interface TarEntry {
  /** Position among the data entries (PAX and GNU long-name headers are folded in, not counted). */
  index: number;
  /** The path as stored (after PAX `path` or a GNU long name), not normalised. */
  path: string;
  /** The raw type flag: '0' or '\0' file, '1' hardlink, '2' symlink, '3' char, '4' block, '5' dir, '6' fifo, 'g' PAX global, ... */
  type: string;
  linkpath: string;
  /** Permission and set-id bits (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Modification time in whole seconds (PAX mtime, if present, truncated). */
  mtime: number;
  devmajor: number;
  devminor: number;
  /** SCHILY.xattr.<name> records of the entry's PAX header, raw values. */
  xattrs: Record<string, Buffer>;
  /** The body, only for entries the caller asked to capture. */
  body?: Buffer;
}

export class TarFormatError extends Error {
  constructor(message: string, readonly offset: number) {
    super(`${message} (at byte ${offset} of the tar)`);
  }
}

export interface TarReaderOptions {
  /** Called for every data entry, in archive order. */
  onEntry: (e: TarEntry) => void;
  /** Should this entry's body be captured? Asked only for regular files. */
  capture?: (path: string, size: number) => boolean;
}

const BLOCK = 512;
/** Go's archive/tar refuses PAX and GNU long-name bodies above 1 MiB; so do we. */
const MAX_META = 1 << 20;

interface Pending {
  kind: 'pax' | 'longname' | 'longlink' | 'body';
  buf: Buffer;
  fill: number;
  entry?: TarEntry;
  pad: number;
}

export class TarReader {
  /** Bytes consumed so far. */
  offset = 0;
  /** Data entries seen. */
  count = 0;
  /** True once the end-of-archive marker (two zero blocks) was read. */
  ended = false;
  private readonly hdr = Buffer.alloc(BLOCK);
  private hdrFill = 0;
  private skip = 0;
  private pending: Pending | null = null;
  private zeroBlocks = 0;
  private pax: Record<string, Buffer> | null = null;
  private longName: string | null = null;
  private longLink: string | null = null;
  /** Old-GNU sparse headers may be followed by extension blocks before the data. */
  private sparseExt = false;
  private sparseSkip = 0;

  constructor(private readonly opts: TarReaderOptions) {}

  push(chunk: Buffer): void {
    let i = 0;
    const n = chunk.length;
    while (i < n && !this.ended) {
      if (this.pending) {
        const p = this.pending;
        const take = Math.min(p.buf.length - p.fill, n - i);
        chunk.copy(p.buf, p.fill, i, i + take);
        p.fill += take;
        i += take;
        this.offset += take;
        if (p.fill === p.buf.length) {
          this.pending = null;
          this.skip = p.pad;
          this.finishPending(p);
        }
      } else if (this.skip > 0) {
        const take = Math.min(this.skip, n - i);
        this.skip -= take;
        i += take;
        this.offset += take;
      } else if (this.hdrFill === 0 && n - i >= BLOCK) {
        const block = chunk.subarray(i, i + BLOCK);
        i += BLOCK;
        this.offset += BLOCK;
        this.header(block);
      } else {
        const take = Math.min(BLOCK - this.hdrFill, n - i);
        chunk.copy(this.hdr, this.hdrFill, i, i + take);
        this.hdrFill += take;
        i += take;
        this.offset += take;
        if (this.hdrFill === BLOCK) {
          this.hdrFill = 0;
          this.header(this.hdr);
        }
      }
    }
  }

  /** The input is complete: fail if it stopped inside an entry. A missing end marker is fine (Go's reader accepts it). */
  end(): void {
    if (this.ended) return;
    if (this.pending || this.skip > 0 || this.hdrFill > 0) throw new TarFormatError('the tar is truncated inside an entry', this.offset);
    if (this.pax || this.longName !== null || this.longLink !== null) throw new TarFormatError('the tar ends after an extended header without its entry', this.offset);
  }

  private header(b: Buffer): void {
    const at = this.offset - BLOCK;
    if (this.sparseExt) {
      this.sparseExt = b[504] !== 0;
      if (!this.sparseExt) this.skip = this.sparseSkip;
      return;
    }
    if (isZero(b)) {
      this.zeroBlocks++;
      if (this.zeroBlocks === 2) this.ended = true;
      return;
    }
    if (this.zeroBlocks === 1) throw new TarFormatError('a single zero block is followed by more entries', at);
    if (!checksumOk(b)) throw new TarFormatError('header checksum mismatch (not a tar, or corrupt)', at);
    const type = String.fromCharCode(b[156]!);
    const size = num(b, 124, 12, at);
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;

    if (type === 'x' || type === 'L' || type === 'K') {
      if (size > MAX_META) throw new TarFormatError(`extended header of ${size} bytes is larger than 1 MiB`, at);
      this.pending = { kind: type === 'x' ? 'pax' : type === 'L' ? 'longname' : 'longlink', buf: Buffer.alloc(size), fill: 0, pad };
      if (size === 0) this.flushEmpty();
      return;
    }

    const ustar = b.toString('latin1', 257, 263) === 'ustar\0';
    let path = cstr(b, 0, 100);
    if (ustar) {
      const prefix = cstr(b, 345, 155);
      if (prefix) path = `${prefix}/${path}`;
    }
    let linkpath = cstr(b, 157, 100);
    let uid = num(b, 108, 8, at);
    let gid = num(b, 116, 8, at);
    let bodySize = size;
    let mtime = num(b, 136, 12, at);
    const xattrs: Record<string, Buffer> = {};
    if (this.longName !== null) path = this.longName;
    if (this.longLink !== null) linkpath = this.longLink;
    const pax = this.pax;
    if (pax) {
      const s = (k: string): string | undefined => pax[k]?.toString('utf8');
      path = s('path') ?? path;
      linkpath = s('linkpath') ?? linkpath;
      const u = s('uid'), g = s('gid'), z = s('size');
      if (u !== undefined) uid = Number(u);
      if (g !== undefined) gid = Number(g);
      if (z !== undefined) bodySize = Number(z);
      const t = s('mtime');
      if (t !== undefined) mtime = Math.floor(Number(t));
      for (const [k, v] of Object.entries(pax)) if (k.startsWith('SCHILY.xattr.')) xattrs[k.slice('SCHILY.xattr.'.length)] = v;
    }
    this.pax = null;
    this.longName = null;
    this.longLink = null;

    // Hardlinks, symlinks, devices, fifos and directories carry no body whatever the size field says
    // (Go's reader does the same); every other type, known or not, is followed by `size` bytes.
    const noBody = type === '1' || type === '2' || type === '3' || type === '4' || type === '5' || type === '6';
    const length = noBody ? 0 : bodySize;
    const entry: TarEntry = {
      index: this.count++,
      path,
      type,
      linkpath,
      mode: num(b, 100, 8, at) & 0o7777,
      uid,
      gid,
      size: length,
      mtime,
      devmajor: type === '3' || type === '4' ? num(b, 329, 8, at) : 0,
      devminor: type === '3' || type === '4' ? num(b, 337, 8, at) : 0,
      xattrs,
    };
    const isFile = type === '0' || type === '\0';
    if (isFile && length > 0 && length <= MAX_META && this.opts.capture?.(path, length)) {
      this.pending = { kind: 'body', buf: Buffer.alloc(length), fill: 0, entry, pad: (BLOCK - (length % BLOCK)) % BLOCK };
      return;
    }
    if (isFile && length === 0 && this.opts.capture?.(path, 0)) entry.body = Buffer.alloc(0);
    this.opts.onEntry(entry);
    this.skip = length + ((BLOCK - (length % BLOCK)) % BLOCK);
    if (type === 'S' && !ustar && b[482] !== 0) {
      this.sparseExt = true;
      this.sparseSkip = this.skip;
      this.skip = 0;
    }
  }

  private flushEmpty(): void {
    const p = this.pending!;
    this.pending = null;
    this.skip = p.pad;
    this.finishPending(p);
  }

  private finishPending(p: Pending): void {
    if (p.kind === 'body') {
      p.entry!.body = p.buf;
      this.opts.onEntry(p.entry!);
    } else if (p.kind === 'pax') this.pax = { ...this.pax, ...parsePax(p.buf, this.offset) };
    else if (p.kind === 'longname') this.longName = cstr(p.buf, 0, p.buf.length);
    else this.longLink = cstr(p.buf, 0, p.buf.length);
  }
}

/** PAX records are "<len> <key>=<value>\n" with binary-safe values; the length counts the whole record. */
export function parsePax(buf: Buffer, offset = 0): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  let i = 0;
  while (i < buf.length) {
    if (buf[i] === 0) break; // NUL padding
    const sp = buf.indexOf(0x20, i);
    const len = sp > i ? Number(buf.toString('latin1', i, sp)) : NaN;
    if (!Number.isInteger(len) || len <= sp - i || i + len > buf.length || buf[i + len - 1] !== 0x0a) {
      throw new TarFormatError('malformed PAX record', offset);
    }
    const eq = buf.indexOf(0x3d, sp + 1);
    if (eq < 0 || eq >= i + len - 1) throw new TarFormatError('malformed PAX record', offset);
    out[buf.toString('utf8', sp + 1, eq)] = buf.subarray(eq + 1, i + len - 1);
    i += len;
  }
  return out;
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < BLOCK; i += 8) if (b.readBigUInt64LE(i) !== 0n) return false;
  return true;
}

/** The header checksum: the sum of its bytes with the checksum field read as spaces (signed sums are historic but accepted). */
function checksumOk(b: Buffer): boolean {
  const stored = parseInt(b.toString('latin1', 148, 156).replace(/[\0 ]+$/, '').trim(), 8);
  let u = 0, s = 0;
  for (let i = 0; i < BLOCK; i++) {
    const v = i >= 148 && i < 156 ? 0x20 : b[i]!;
    u += v;
    s += v > 127 ? v - 256 : v;
  }
  return stored === u || stored === s;
}

function cstr(b: Buffer, at: number, len: number): string {
  const end = b.indexOf(0, at);
  return b.toString('utf8', at, end >= 0 && end < at + len ? end : at + len);
}

/** A numeric field: NUL/space-terminated octal, or base-256 when the top bit of the first byte is set. */
function num(b: Buffer, at: number, len: number, offset: number): number {
  if (b[at]! & 0x80) {
    let v = b[at]! & 0x7f;
    for (let i = at + 1; i < at + len; i++) v = v * 256 + b[i]!;
    return v;
  }
  const s = b.toString('latin1', at, at + len).replace(/^ +/, '').replace(/[\0 ].*$/s, '');
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarFormatError(`bad numeric field ${JSON.stringify(s)} in header`, offset);
  return parseInt(s, 8);
}
