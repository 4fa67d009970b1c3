// The installability contract as pure rules over tar entries (docs/contract.md §2, §3): what the
// metal-hammer's untar accepts, what it silently drops, and what the installer needs to find. No
// I/O here: lint.ts streams the artifact through TarReader into a ContractChecker; tests feed
// crafted entries. Per-OS data (initrd naming, sudo group, commands, size budget) comes from the
// image.yaml `contract`, never from the OS name.
import type { Contract } from '../lib/image-def.ts';
import { formatMd5File, parseMd5File } from '../lib/md5file.ts';
import type { TarEntry } from './tar-stream.ts';

export type Severity = 'error' | 'warning';

export interface Finding {
  severity: Severity;
  rule: RuleId;
  /** The entry as the image sees it (/etc/passwd), or an artifact file name (img.tar.lz4.md5). */
  path: string;
  message: string;
}

/** Every rule, in report order, with the one-line summary used when many findings are grouped. */
export const RULES = {
  tar: 'the artifact is not a readable LZ4 frame holding a tar',
  md5: 'the md5 file does not match the artifact or is not md5sum output',
  'entry-type': "entry types the metal-hammer's untar rejects",
  'unsafe-path': 'absolute paths or paths with ..',
  hardlink: 'hardlinks whose target is missing or comes later',
  collision: 'paths that appear twice where the second write fails or goes through a symlink',
  kernel: 'kernel, initrd, System.map or modules missing',
  init: '/sbin/init missing',
  installer: 'no installer for the metal-hammer to run',
  command: 'commands the installer runs are missing',
  users: 'user and group layout the installer relies on',
  frr: 'FRR is not set up to run zebra and bgpd',
  size: 'the uncompressed image is over (or close to) its size budget',
  owner: "non-root owners (the hammer's untar does not apply owners: everything becomes root:root)",
  'dir-mode': 'directories not 0755 (the hammer creates every directory 0755)',
  capability: 'file capabilities (dropped by the untar: the program loses them)',
  xattr: 'extended attributes (dropped by the untar)',
  tmp: 'files under /tmp (hidden by the tmpfs the hammer mounts there)',
  device: 'device nodes and fifos (the untar writes them as empty regular files)',
  duplicate: 'paths that appear twice (the later entry wins)',
  'container-marker': 'container marker files that make systemd believe it runs in a container',
  'host-identity': "hostname, hosts or resolv.conf with content: the build host's (or the base's) would ship",
  'package-cache': "downloaded packages or package indexes in the image (the build's apt cache mounts keep them out)",
} as const;
/** Pure: is a path a downloaded package or an apt package index, which an image must not ship? */
export function isPackageCache(path: string): boolean {
  return /^var\/cache\/apt\/archives\/(partial\/)?[^/]+\.deb$/.test(path) || /^var\/lib\/apt\/lists\/[^/]+_(Packages|Sources|InRelease|Release)(\.[a-z0-9]+)?$/.test(path);
}
/** Files the installer writes per machine: the image must ship them empty (docker's init layer does). */
export const HOST_IDENTITY_FILES = ['etc/hostname', 'etc/hosts', 'etc/resolv.conf'];
export type RuleId = keyof typeof RULES;

/** Commands are looked up in these directories (relative to the image root), like the installer's PATH. */
export const PATH_DIRS = ['usr/local/sbin', 'usr/local/bin', 'usr/sbin', 'usr/bin', 'sbin', 'bin'];
const MiB = 1024 * 1024;
/** Files whose bodies the rules read; everything else is skipped unread. */
const CAPTURE = new Set(['etc/passwd', 'etc/group', 'etc/frr/daemons']);
/** For TarReader: capture the bodies the rules need (small files only). */
export const captureFile = (raw: string, size: number): boolean => size <= 1 << 20 && CAPTURE.has(normalisePath(raw));

type Kind = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';
const KINDS: Record<string, Kind> = { '0': 'file', '\0': 'file', '1': 'hardlink', '2': 'symlink', '3': 'char', '4': 'block', '5': 'dir', '6': 'fifo' };
const KIND_NAMES: Record<Kind, string> = { file: 'file', dir: 'directory', symlink: 'symlink', hardlink: 'hardlink', char: 'character device', block: 'block device', fifo: 'fifo' };
const TYPE_NAMES: Record<string, string> = {
  '7': 'contiguous file', S: 'GNU sparse file', V: 'GNU volume label', M: 'GNU multi-volume continuation',
  D: 'GNU dump directory', N: 'old GNU long name', X: 'Solaris extended header', I: 'inode metadata',
};

interface Node {
  kind: Kind;
  index: number;
  mode: number;
  link: string;
}

type Resolved = { ok: true; path: string; kind: Kind | 'implied-dir'; mode: number } | { ok: false; path: string; why: 'missing' | 'loop' };

export interface DirSize {
  dir: string;
  bytes: number;
}

/** Normalise a tar path the way the untar joins it under /rootfs: no ./ prefix, no trailing /, no leading /. */
export function normalisePath(raw: string): string {
  let p = raw.replace(/\/+$/, '');
  while (p.startsWith('./')) p = p.slice(2);
  if (p === '.') p = '';
  return p.replace(/^\/+/, '').replace(/\/{2,}/g, '/');
}

const show = (p: string): string => `/${p}`;
const octal = (m: number): string => m.toString(8).padStart(4, '0');
function typeLabel(t: string): string {
  const code = t.charCodeAt(0);
  const printable = code >= 0x20 && code < 0x7f ? t : `\\x${code.toString(16).padStart(2, '0')}`;
  const name = TYPE_NAMES[t] ?? (t >= 'A' && t <= 'Z' ? 'vendor extension' : 'unknown');
  return `'${printable}' (${name})`;
}

/**
 * Checks one image, entry by entry, then the whole (kernel, users, commands, size) at finish().
 * Memory is one small record per path; bodies are kept only for the CAPTURE files.
 */
export class ContractChecker {
  readonly findings: Finding[] = [];
  /** The largest directories (file sizes summed 3 levels deep), filled by finish(). */
  topDirs: DirSize[] = [];
  entries = 0;
  private readonly nodes = new Map<string, Node>();
  private readonly impliedDirs = new Set<string>();
  private readonly bodies = new Map<string, Buffer>();
  private readonly systemMaps: string[] = [];
  private readonly forwardLinks: { path: string; target: string; index: number }[] = [];
  private readonly dirBytes = new Map<string, number>();
  private readonly identitySizes = new Map<string, number>();
  private estimatedBytes = 1024;

  constructor(private readonly contract: Contract) {}

  readonly capture = captureFile;

  add(e: TarEntry): void {
    this.estimatedBytes += 512 + Math.ceil(e.size / 512) * 512;
    if (e.type === 'g') return; // a PAX global header: the untar skips it
    this.entries++;
    const kind = KINDS[e.type];
    if (!kind) {
      this.push('error', 'entry-type', e.path, `entry type ${typeLabel(e.type)} is rejected by the metal-hammer's untar (it accepts dir, file, symlink, hardlink, char, block, fifo)`);
      return;
    }
    if (e.path.startsWith('/')) {
      this.push('error', 'unsafe-path', e.path, 'absolute path: entries must be relative to the image root');
      return;
    }
    if (e.path.split('/').includes('..')) {
      this.push('error', 'unsafe-path', e.path, "path contains '..': entries must stay inside the image root");
      return;
    }
    const path = normalisePath(e.path);
    if (path === '') return; // the root directory itself ("./")
    const where = show(path);

    // What is on disk after a second entry at the same path: the untar either fails (the first
    // stays), writes through the first (a symlink stays), or replaces it (a file).
    const prev = this.nodes.get(path);
    let replace = !prev;
    if (prev) {
      const both = `${KIND_NAMES[prev.kind]} then ${KIND_NAMES[kind]}`;
      if (prev.kind === 'dir' && kind === 'dir') {
        // mkdir -p of an existing directory: harmless
      } else if (prev.kind === 'symlink') {
        this.push('error', 'collision', where, `appears twice (${both}): the second write goes through the symlink to ${prev.link}`);
      } else if (kind === 'symlink' || kind === 'hardlink' || kind === 'dir' || prev.kind === 'dir') {
        this.push('error', 'collision', where, `appears twice (${both}): the untar cannot create the second one over the first`);
      } else {
        this.push('warning', 'duplicate', where, `appears twice (${both}): the later entry replaces the earlier`);
        replace = true;
      }
    }

    if (kind === 'hardlink') {
      const target = normalisePath(e.linkpath);
      if (!this.nodes.has(target) && !this.resolve(target, true).ok) this.forwardLinks.push({ path: where, target, index: e.index });
    }
    if (replace) this.nodes.set(path, { kind, index: e.index, mode: e.mode, link: e.linkpath });
    this.imply(path);

    if (kind === 'file' && e.body && CAPTURE.has(path)) this.bodies.set(path, e.body);
    if (kind === 'file' || kind === 'hardlink') {
      if (/^boot\/System\.map-[^/]+$/.test(path)) this.systemMaps.push(path);
    }
    if (kind === 'file') this.countSize(path, e.size);
    if (HOST_IDENTITY_FILES.includes(path)) this.identitySizes.set(path, kind === 'file' ? e.size : 0);

    // What the untar drops or changes: warnings, named per entry.
    if (e.uid !== 0 || e.gid !== 0) this.push('warning', 'owner', where, `owned by ${e.uid}:${e.gid}; it will be root:root`);
    if (kind === 'dir' && e.mode !== 0o755) this.push('warning', 'dir-mode', where, `directory mode ${octal(e.mode)}; it will be 0755`);
    for (const [name, value] of Object.entries(e.xattrs)) {
      if (name === 'security.capability') {
        this.push('warning', 'capability', where, `file capability ${describeCapability(value)} is dropped: the program loses it (set it in the installer, or run it as root)`);
      } else {
        this.push('warning', 'xattr', where, `extended attribute ${name} is dropped`);
      }
    }
    if (kind !== 'dir' && path.startsWith('tmp/')) this.push('warning', 'tmp', where, `${KIND_NAMES[kind]} under /tmp is hidden by the tmpfs the hammer mounts on /tmp, and cleaned at boot`);
    if (kind === 'char' || kind === 'block' || kind === 'fifo') {
      const dev = kind === 'fifo' ? 'fifo' : `${KIND_NAMES[kind]} ${e.devmajor},${e.devminor}`;
      const under = path.startsWith('dev/') ? ' (at boot /dev is a devtmpfs; leave /dev empty in the image)' : '';
      this.push('warning', 'device', where, `${dev} is written as an empty regular file by the untar${under}`);
    }
    if (kind === 'file' && isPackageCache(path)) {
      this.push('error', 'package-cache', where, 'left by the build: apt downloads and indexes belong in the cache mounts of /var/cache/apt and /var/lib/apt/lists, not in a layer');
    }
    if (path === '.dockerenv' || path === 'run/.containerenv') {
      this.push('warning', 'container-marker', where, 'container marker left by the build: systemd-detect-virt and similar checks take the machine for a container');
    }
  }

  /**
   * Whole-image rules; `tarBytes` is the uncompressed tar size (estimated from the entries if
   * omitted). For a tar that could not be read to its end (`complete` false) they are skipped:
   * "no kernel" after a corrupt header would only be noise.
   */
  finish(tarBytes = this.estimatedBytes, complete = true): Finding[] {
    if (!complete) return this.sorted();
    for (const l of this.forwardLinks) {
      const t = this.nodes.get(l.target);
      if (t && t.index > l.index) this.push('error', 'hardlink', l.path, `hardlink to ${show(l.target)}, which comes later in the tar: the untar needs the target first`);
      else this.push('error', 'hardlink', l.path, `hardlink to ${show(l.target)}, which is not in the tar`);
    }
    this.kernel();
    this.executable('sbin/init', 'init', 'the kernel command line boots init=/sbin/init (systemd-sysv provides it)');
    if (!this.isExecutable('install-go') && !this.isExecutable('install.sh')) {
      this.push('error', 'installer', '/install.sh', 'neither /install-go nor /install.sh is an executable file: the metal-hammer has nothing to run');
    }
    for (const want of this.contract.required_commands) {
      const names = want.split('|');
      if (names.some((n) => PATH_DIRS.some((d) => this.isExecutable(`${d}/${n}`)))) continue;
      this.push('error', 'command', names.join(' or '), `not found as an executable in ${PATH_DIRS.map(show).join(':')} (the installer runs it; contract.required_commands)`);
    }
    this.users();
    this.frr();
    for (const [path, size] of this.identitySizes) {
      if (size > 0) this.push('error', 'host-identity', show(path), `holds ${size} bytes: the image must ship it empty (the installer writes it per machine), or the build host's or the base layer's ${show(path)} reaches every machine (export a container whose docker init layer is there, bootstrap the base without it)`);
    }
    this.size(tarBytes);
    this.topDirs = [...this.dirBytes].map(([dir, bytes]) => ({ dir, bytes })).sort((a, b) => b.bytes - a.bytes || a.dir.localeCompare(b.dir)).slice(0, 15);
    return this.sorted();
  }

  /** Findings with errors first, then in RULES order, then in archive order. */
  sorted(): Finding[] {
    const order = Object.keys(RULES);
    return this.findings
      .map((f, i) => ({ f, i }))
      .sort((a, b) => (a.f.severity === b.f.severity ? 0 : a.f.severity === 'error' ? -1 : 1) || order.indexOf(a.f.rule) - order.indexOf(b.f.rule) || a.i - b.i)
      .map((x) => x.f);
  }

  private push(severity: Severity, rule: RuleId, path: string, message: string): void {
    this.findings.push({ severity, rule, path, message });
  }

  private imply(path: string): void {
    let i = path.lastIndexOf('/');
    while (i > 0) {
      const parent = path.slice(0, i);
      if (this.impliedDirs.has(parent)) return;
      this.impliedDirs.add(parent);
      i = parent.lastIndexOf('/');
    }
  }

  /** File sizes summed per directory, at most 3 levels deep (/usr/lib/firmware collects everything below it). */
  private countSize(path: string, size: number): void {
    let cut = -1;
    for (let level = 0; level < 3; level++) {
      const next = path.indexOf('/', cut + 1);
      if (next < 0) break;
      cut = next;
    }
    const dir = cut < 0 ? '/' : show(path.slice(0, cut));
    this.dirBytes.set(dir, (this.dirBytes.get(dir) ?? 0) + size);
  }

  /** Follow symlinks inside the image (like the kernel would after the untar), e.g. sbin/init -> usr/sbin/init -> ../lib/systemd/systemd. */
  resolve(path: string, followLast = true): Resolved {
    let rest = path.split('/');
    const done: string[] = [];
    let hops = 0;
    while (rest.length > 0) {
      const part = rest.shift()!;
      if (part === '' || part === '.') continue;
      if (part === '..') {
        done.pop();
        continue;
      }
      done.push(part);
      const cur = done.join('/');
      const node = this.nodes.get(cur);
      if (!node) {
        if (rest.length > 0 && this.impliedDirs.has(cur)) continue;
        return { ok: false, path: cur, why: 'missing' };
      }
      if (node.kind === 'symlink' && (rest.length > 0 || followLast)) {
        if (++hops > 40) return { ok: false, path: cur, why: 'loop' };
        done.pop();
        if (node.link.startsWith('/')) done.length = 0;
        rest = [...node.link.split('/'), ...rest];
      }
    }
    const final = done.join('/');
    const node = this.nodes.get(final);
    if (!node) return this.impliedDirs.has(final) || final === '' ? { ok: true, path: final, kind: 'implied-dir', mode: 0o755 } : { ok: false, path: final, why: 'missing' };
    // A hardlink is its target's inode: report the target's type and mode.
    const target = node.kind === 'hardlink' ? this.nodes.get(normalisePath(node.link)) : undefined;
    if (target && target.kind !== 'hardlink') return { ok: true, path: final, kind: target.kind, mode: target.mode };
    return { ok: true, path: final, kind: node.kind, mode: node.mode };
  }

  private isExecutable(path: string): boolean {
    const r = this.resolve(path);
    return r.ok && (r.kind === 'file' || r.kind === 'hardlink') && (r.mode & 0o111) !== 0;
  }

  /** An error unless `path` resolves to an executable file; the message says where resolution stopped. */
  private executable(path: string, rule: RuleId, why: string): void {
    const r = this.resolve(path);
    if (r.ok && (r.kind === 'file' || r.kind === 'hardlink') && (r.mode & 0o111) !== 0) return;
    this.push('error', rule, show(path), `${this.explain(path, r, 'an executable file')}: ${why}`);
  }

  private explain(path: string, r: Resolved, wanted: string): string {
    if (!r.ok) {
      if (r.why === 'loop') return 'is a symlink loop';
      return r.path === path ? 'missing' : `resolves to ${show(r.path)}, which is missing`;
    }
    const via = r.path === path ? '' : ` (via ${show(r.path)})`;
    return `is a ${r.kind === 'implied-dir' ? 'directory' : KIND_NAMES[r.kind]}${via}${r.kind === 'file' ? ` with mode ${octal(r.mode)}` : ''}, not ${wanted}`;
  }

  private kernel(): void {
    if (this.systemMaps.length !== 1) {
      const found = this.systemMaps.map(show).join(', ');
      this.push('error', 'kernel', '/boot', this.systemMaps.length === 0
        ? 'no /boot/System.map-<k>: the installer finds the kernel version from exactly one System.map (install the kernel package)'
        : `${this.systemMaps.length} kernels (${found}): the installer needs exactly one /boot/System.map-<k>`);
      return;
    }
    const k = this.systemMaps[0]!.slice('boot/System.map-'.length);
    for (const file of [`boot/vmlinuz-${k}`, `boot/${this.contract.initrd.replaceAll('{k}', k)}`]) {
      const r = this.resolve(file);
      if (!r.ok || (r.kind !== 'file' && r.kind !== 'hardlink')) this.push('error', 'kernel', show(file), `${this.explain(file, r, 'a file')}: the hammer kexecs kernel ${k} with it`);
    }
    const mods = `lib/modules/${k}`;
    const r = this.resolve(mods);
    if (!r.ok || (r.kind !== 'dir' && r.kind !== 'implied-dir')) this.push('error', 'kernel', show(mods), `${this.explain(mods, r, 'a directory')}: kernel ${k} cannot load its modules`);
  }

  private users(): void {
    const passwd = this.bodies.get('etc/passwd');
    if (!passwd) this.push('error', 'users', '/etc/passwd', 'missing: the installer adds user metal to it');
    else {
      for (const line of passwd.toString('utf8').split('\n')) {
        const [name, , uid] = line.split(':');
        if (uid === '1000') this.push('error', 'users', '/etc/passwd', `uid 1000 is taken by user "${name}": the installer creates user metal with uid 1000 (remove that user in the Dockerfile)`);
      }
    }
    const group = this.bodies.get('etc/group');
    const want = this.contract.sudo_group;
    if (!group) this.push('error', 'users', '/etc/group', `missing: the installer puts user metal in group "${want}"`);
    else if (!group.toString('utf8').split('\n').some((l) => l.split(':')[0] === want)) {
      this.push('error', 'users', '/etc/group', `no group "${want}": the installer makes it user metal's primary group (contract.sudo_group)`);
    }
  }

  private frr(): void {
    const body = this.bodies.get('etc/frr/daemons');
    if (!body) {
      this.push('error', 'frr', '/etc/frr/daemons', 'missing: machines speak BGP to the leaves (install frr, set zebra=yes and bgpd=yes)');
      return;
    }
    const value: Record<string, string> = {};
    for (const line of body.toString('utf8').split('\n')) {
      const m = /^\s*(zebra|bgpd)\s*=\s*["']?([A-Za-z]*)["']?\s*(#.*)?$/.exec(line);
      if (m) value[m[1]!] = m[2]!;
    }
    const bad = ['zebra', 'bgpd'].filter((d) => value[d] !== 'yes');
    if (bad.length > 0) {
      const has = bad.map((d) => (value[d] === undefined ? `${d} is not set` : `${d}=${value[d]}`)).join(', ');
      this.push('error', 'frr', '/etc/frr/daemons', `needs zebra=yes and bgpd=yes (${has}): machines speak BGP to the leaves`);
    }
  }

  private size(tarBytes: number): void {
    const budget = this.contract.size_budget_mib * MiB;
    const mib = (tarBytes / MiB).toFixed(1);
    if (tarBytes > budget) {
      this.push('error', 'size', 'img.tar', `${mib} MiB uncompressed, over the budget of ${this.contract.size_budget_mib} MiB (contract.size_budget_mib)`);
    } else if (tarBytes > budget * 0.9) {
      this.push('warning', 'size', 'img.tar', `${mib} MiB uncompressed, within 10% of the budget of ${this.contract.size_budget_mib} MiB (contract.size_budget_mib)`);
    }
  }
}

/** Pure convenience: check a whole sequence of entries. */
export function checkEntries(entries: Iterable<TarEntry>, contract: Contract, tarBytes?: number): { findings: Finding[]; topDirs: DirSize[]; entries: number } {
  const c = new ContractChecker(contract);
  for (const e of entries) c.add(e);
  const findings = c.finish(tarBytes);
  return { findings, topDirs: c.topDirs, entries: c.entries };
}

/** The md5 file must be exactly md5sum's output for the artifact (formatMd5File), and match its bytes. */
export function checkMd5File(text: string | null, actualHex: string, name = 'img.tar.lz4'): Finding[] {
  const finding = (message: string): Finding[] => [{ severity: 'error', rule: 'md5', path: `${name}.md5`, message }];
  if (text === null) return finding(`missing: the metal-hammer downloads it next to ${name}`);
  let stated: string;
  try {
    stated = parseMd5File(text, name);
  } catch (e) {
    return finding((e as Error).message);
  }
  if (text !== formatMd5File(stated, name)) {
    return finding(`not exactly md5sum output: expected ${JSON.stringify(formatMd5File(stated, name))}, got ${JSON.stringify(text)}`);
  }
  if (stated !== actualHex) return finding(`says ${stated}, but ${name} hashes to ${actualHex}`);
  return [];
}

const CAPS = [
  'chown', 'dac_override', 'dac_read_search', 'fowner', 'fsetid', 'kill', 'setgid', 'setuid', 'setpcap', 'linux_immutable',
  'net_bind_service', 'net_broadcast', 'net_admin', 'net_raw', 'ipc_lock', 'ipc_owner', 'sys_module', 'sys_rawio', 'sys_chroot',
  'sys_ptrace', 'sys_pacct', 'sys_admin', 'sys_boot', 'sys_nice', 'sys_resource', 'sys_time', 'sys_tty_config', 'mknod', 'lease',
  'audit_write', 'audit_control', 'setfcap', 'mac_override', 'mac_admin', 'syslog', 'wake_alarm', 'block_suspend', 'audit_read',
  'perfmon', 'bpf', 'checkpoint_restore',
];

/** Decode a security.capability value (struct vfs_cap_data) the way getcap prints it, e.g. "cap_net_raw=ep". */
export function describeCapability(v: Buffer): string {
  if (v.length < 12) return `(unreadable, ${v.length} bytes)`;
  const magic = v.readUInt32LE(0);
  const words = v.length >= 20 ? 2 : 1;
  let permitted = 0n, inheritable = 0n;
  for (let w = 0; w < words; w++) {
    permitted |= BigInt(v.readUInt32LE(4 + w * 8)) << BigInt(32 * w);
    inheritable |= BigInt(v.readUInt32LE(8 + w * 8)) << BigInt(32 * w);
  }
  const names: string[] = [];
  for (let bit = 0; bit < 64; bit++) {
    if (((permitted | inheritable) >> BigInt(bit)) & 1n) names.push(`cap_${CAPS[bit] ?? bit}`);
  }
  const flags = `${magic & 1 ? 'e' : ''}${inheritable ? 'i' : ''}${permitted ? 'p' : ''}`;
  return `${names.join(',') || '(none)'}=${flags}`;
}
