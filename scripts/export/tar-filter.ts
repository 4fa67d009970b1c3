// Drops container-runtime leftovers from the `docker export` stream before compression.
// docker puts an empty /.dockerenv into every container; systemd-detect-virt takes that file as
// proof of running in a docker container, so on a real machine units with
// ConditionVirtualization=!container (systemd-timesyncd among them) would silently not start.
//
// Device nodes under /dev (from docker's container init layer) are left out too.
//
// A streaming ustar walker: it follows entry boundaries by arithmetic and forwards buffers
// untouched except where a dropped entry's header (and body) must be cut out.
import { Transform, type TransformCallback } from 'node:stream';

const BLOCK = 512;

function headerName(h: Buffer): string {
  const field = (off: number, len: number): string => {
    const end = h.indexOf(0, off);
    return h.toString('utf8', off, end >= 0 && end < off + len ? end : off + len);
  };
  const prefix = h.toString('latin1', 257, 263).startsWith('ustar') ? field(345, 155) : '';
  const name = field(0, 100);
  return prefix ? `${prefix}/${name}` : name;
}

function headerSize(h: Buffer): number {
  if (h[124]! & 0x80) {
    // GNU base-256 encoding for sizes >= 8 GiB
    let n = 0;
    for (let i = 125; i < 136; i++) n = n * 256 + h[i]!;
    return n;
  }
  const s = h.toString('latin1', 124, 136).replace(/\0.*$/s, '').trim();
  return s ? parseInt(s, 8) : 0;
}

export class TarEntryFilter extends Transform {
  /** Bytes of the current entry's body (incl. padding) still to pass or drop. */
  private remaining = 0;
  private dropping = false;
  /** Partial header block carried between chunks. */
  private head: Buffer | null = null;
  /** The previous header was a PAX/GNU extension: it belongs to the next entry, which we keep. */
  private extended = false;
  private ended = false;
  readonly dropped: string[] = [];

  /**
   * @param names regular files (paths without the leading /) to leave out
   * @param dropDevNodes leave out device nodes under /dev: docker's container init layer puts
   *   them there; at boot /dev is a devtmpfs, and the hammer's untar would write them as empty
   *   regular files anyway.
   */
  constructor(private readonly names: ReadonlySet<string>, private readonly dropDevNodes = false) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const keep: Buffer[] = [];
    let pos = 0;
    let runStart = 0;
    const flush = (end: number): void => {
      if (end > runStart) keep.push(chunk.subarray(runStart, end));
    };
    while (pos < chunk.length) {
      if (this.ended) {
        pos = chunk.length;
        break;
      }
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - pos);
        if (this.dropping) {
          flush(pos);
          runStart = pos + n;
        }
        pos += n;
        this.remaining -= n;
        continue;
      }
      // At a header boundary. Assemble a whole 512-byte block (it may straddle chunks).
      let h: Buffer;
      const carried = this.head;
      if (carried) {
        const need = BLOCK - carried.length;
        const take = Math.min(need, chunk.length - pos);
        this.head = Buffer.concat([carried, chunk.subarray(pos, pos + take)]);
        pos += take;
        runStart = pos;
        if (this.head.length < BLOCK) break;
        h = this.head;
        this.head = null;
      } else if (chunk.length - pos < BLOCK) {
        flush(pos);
        this.head = Buffer.from(chunk.subarray(pos));
        pos = chunk.length;
        runStart = pos;
        break;
      } else {
        h = chunk.subarray(pos, pos + BLOCK);
      }
      const headerStart = carried ? -1 : pos;
      if (!carried) pos += BLOCK;
      if (h.every((b) => b === 0)) {
        // End-of-archive marker: forward the rest as it is.
        if (carried) keep.push(h);
        this.ended = true;
        continue;
      }
      const type = String.fromCharCode(h[156]!);
      const size = headerSize(h);
      const body = Math.ceil(size / BLOCK) * BLOCK;
      const name = headerName(h).replace(/^\.?\//, '');
      const drop = !this.extended && (((type === '0' || type === '\0') && this.names.has(name)) || (this.dropDevNodes && (type === '3' || type === '4') && name.startsWith('dev/')));
      this.extended = type === 'x' || type === 'L' || type === 'K';
      if (drop) {
        this.dropped.push(`/${name}`);
        if (headerStart >= 0) flush(headerStart);
        runStart = pos;
      } else if (carried) {
        keep.push(h);
      }
      this.remaining = body;
      this.dropping = drop;
    }
    flush(pos);
    for (const b of keep) this.push(b);
    cb();
  }

  override _flush(cb: TransformCallback): void {
    if (this.head) this.push(this.head);
    cb();
  }
}

/** Entries docker adds to every exported container that do not belong in a machine image. */
export const RUNTIME_LEFTOVERS: ReadonlySet<string> = new Set(['.dockerenv']);
