// Crafted tarballs for the lint tests. Writes the 512-byte headers by hand (with checksums) so a test
// can make any entry a real tar writer refuses to: contiguous and sparse types, absolute paths,
// forward hardlinks, PAX xattrs with binary values, GNU long names.

export interface FixtureEntry {
  path: string;
  /** Raw type flag; default '0' (or '5' when the path ends in /). */
  type?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  body?: string | Buffer;
  linkpath?: string;
  devmajor?: number;
  devminor?: number;
  /** PAX records written as an 'x' header before the entry (values may be binary). */
  pax?: Record<string, string | Buffer>;
  /** Put the path into a GNU 'L' long-name entry instead of the header. */
  gnuLongName?: boolean;
  /** Write the GNU magic ("ustar  \0") instead of POSIX ustar. */
  gnu?: boolean;
  /** Size field when it should differ from the body (e.g. a hardlink header that claims a size). */
  sizeField?: number;
}

const BLOCK = 512;

function octal(b: Buffer, at: number, len: number, n: number): void {
  b.write(`${n.toString(8).padStart(len - 1, '0')}\0`, at, len, 'latin1');
}

/** One header block with a correct checksum. */
export function header(f: { path: string; type: string; mode: number; uid: number; gid: number; size: number; linkpath: string; devmajor: number; devminor: number; gnu: boolean; prefix?: string }): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(f.path, 0, 100, 'utf8');
  octal(b, 100, 8, f.mode);
  octal(b, 108, 8, f.uid);
  octal(b, 116, 8, f.gid);
  octal(b, 124, 12, f.size);
  octal(b, 136, 12, 1700000000);
  b.write(f.type, 156, 1, 'latin1');
  b.write(f.linkpath, 157, 100, 'utf8');
  b.write(f.gnu ? 'ustar  \0' : 'ustar\x0000', 257, 8, 'latin1');
  b.write(f.uid === 0 ? 'root' : 'user', 265, 32, 'latin1');
  b.write(f.gid === 0 ? 'root' : 'group', 297, 32, 'latin1');
  octal(b, 329, 8, f.devmajor);
  octal(b, 337, 8, f.devminor);
  if (f.prefix && !f.gnu) b.write(f.prefix, 345, 155, 'utf8');
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const v of b) sum += v;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return b;
}

/** PAX records: "<len> <key>=<value>\n", the length counting the whole record including itself. */
export function paxBody(records: Record<string, string | Buffer>): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(records)) {
    const value = typeof v === 'string' ? Buffer.from(v) : v;
    const rest = Buffer.byteLength(` ${k}=`) + value.length + 1;
    let len = rest + String(rest).length;
    if (String(len).length !== String(rest).length) len = rest + String(len).length;
    parts.push(Buffer.from(`${len} ${k}=`), value, Buffer.from('\n'));
  }
  return Buffer.concat(parts);
}

function padded(body: Buffer): Buffer[] {
  const pad = (BLOCK - (body.length % BLOCK)) % BLOCK;
  return [body, Buffer.alloc(pad)];
}

/** A tar of the entries, ending in the two zero blocks unless `end` is false. */
export function tarball(entries: FixtureEntry[], opts: { end?: boolean } = {}): Buffer {
  const out: Buffer[] = [];
  for (const e of entries) {
    const body = e.body === undefined ? Buffer.alloc(0) : typeof e.body === 'string' ? Buffer.from(e.body) : e.body;
    const type = e.type ?? (e.path.endsWith('/') ? '5' : '0');
    const base = { uid: e.uid ?? 0, gid: e.gid ?? 0, linkpath: e.linkpath ?? '', devmajor: e.devmajor ?? 0, devminor: e.devminor ?? 0, gnu: e.gnu ?? false };
    if (e.pax) {
      const p = paxBody(e.pax);
      out.push(header({ ...base, path: 'PaxHeaders/entry', type: 'x', mode: 0o644, size: p.length, linkpath: '', uid: 0, gid: 0 }), ...padded(p));
    }
    let path = e.path;
    if (e.gnuLongName) {
      const name = Buffer.from(`${e.path}\0`);
      out.push(header({ ...base, path: '././@LongLink', type: 'L', mode: 0o644, size: name.length, linkpath: '', uid: 0, gid: 0, gnu: true }), ...padded(name));
      path = e.path.slice(0, 99);
    }
    out.push(header({ ...base, path, type, mode: e.mode ?? (type === '5' ? 0o755 : 0o644), size: e.sizeField ?? body.length }), ...padded(body));
  }
  if (opts.end !== false) out.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(out);
}

export const KERNEL = '6.1.0-28-amd64';

/**
 * A minimal image that satisfies the contract of `testContract`: usrmerge symlinks, one kernel,
 * systemd as /sbin/init via two symlinks, users, FRR, an installer and the required commands.
 */
export function goodImage(): FixtureEntry[] {
  return [
    { path: 'bin', type: '2', linkpath: 'usr/bin', mode: 0o777 },
    { path: 'boot/' },
    { path: `boot/System.map-${KERNEL}`, body: 'ffffffff81000000 T _text\n' },
    { path: `boot/initrd.img-${KERNEL}`, body: 'initrd' },
    { path: `boot/vmlinuz-${KERNEL}`, body: 'kernel' },
    { path: 'etc/' },
    { path: 'etc/frr/' },
    { path: 'etc/frr/daemons', body: '# daemons\nzebra=yes\nbgpd=yes\nospfd=no\n' },
    { path: 'etc/group', body: 'root:x:0:\nsudo:x:27:\nusers:x:100:\n' },
    { path: 'etc/passwd', body: 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' },
    { path: 'install.sh', mode: 0o755, body: '#!/bin/bash\n' },
    { path: 'lib', type: '2', linkpath: 'usr/lib', mode: 0o777 },
    { path: 'sbin', type: '2', linkpath: 'usr/sbin', mode: 0o777 },
    { path: 'usr/' },
    { path: 'usr/bin/' },
    { path: 'usr/bin/bash', mode: 0o755, body: 'ELF' },
    { path: 'usr/bin/cloud-init', mode: 0o755, body: '#!/usr/bin/python3\n' },
    { path: 'usr/lib/' },
    { path: 'usr/lib/modules/' },
    { path: `usr/lib/modules/${KERNEL}/` },
    { path: 'usr/lib/systemd/' },
    { path: 'usr/lib/systemd/systemd', mode: 0o755, body: 'ELF' },
    { path: 'usr/sbin/' },
    { path: 'usr/sbin/grub-install', mode: 0o755, body: 'ELF' },
    { path: 'usr/sbin/init', type: '2', linkpath: '../lib/systemd/systemd', mode: 0o777 },
  ];
}
