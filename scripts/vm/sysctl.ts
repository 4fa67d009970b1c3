// The kernel parameters an image sets, read from its sysctl.d the way systemd-sysctl applies them,
// so the goss spec can check every one of them in the booted VM. Pure except readSysctlFiles().
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** systemd-sysctl's search path, highest priority first. A file name in an earlier dir masks later ones. */
export const SYSCTL_DIRS = ['/etc/sysctl.d', '/run/sysctl.d', '/usr/local/lib/sysctl.d', '/usr/lib/sysctl.d', '/lib/sysctl.d'];

export interface SysctlFile {
  dir: string;
  name: string;
  text: string;
}

export interface SysctlEntry {
  key: string;
  value: string;
  /** "-key = value": failures to set it are ignored by systemd-sysctl, so it is not checked. */
  optional: boolean;
}

/** Pure: the assignments of one sysctl.d file (comments, blank lines and includes left out). */
export function parseSysctl(text: string): SysctlEntry[] {
  const out: SysctlEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    let key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    const optional = key.startsWith('-');
    if (optional) key = key.slice(1).trim();
    // "a/b/c" and "a.b.c" name the same parameter
    if (key.includes('/')) key = key.replace(/\./g, '\u0000').replace(/\//g, '.').replace(/\u0000/g, '/');
    out.push({ key, value, optional });
  }
  return out;
}

/**
 * Pure: the settings in effect after systemd-sysctl ran: files ordered by name across all
 * directories, a name in a higher-priority directory masking the same name elsewhere, later
 * assignments winning. Glob keys (net.ipv4.conf.*.x) and optional ("-") keys are left out.
 */
export function effectiveSysctl(files: readonly SysctlFile[]): Map<string, string> {
  const byName = new Map<string, SysctlFile>();
  for (const f of files) {
    const prev = byName.get(f.name);
    if (!prev || SYSCTL_DIRS.indexOf(f.dir) < SYSCTL_DIRS.indexOf(prev.dir)) byName.set(f.name, f);
  }
  const out = new Map<string, string>();
  for (const name of [...byName.keys()].sort()) {
    for (const e of parseSysctl(byName.get(name)!.text)) {
      if (/[*?[]/.test(e.key)) continue;
      if (e.optional) {
        out.delete(e.key);
        continue;
      }
      out.set(e.key, e.value);
    }
  }
  return new Map([...out.entries()].sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** Pure: a regexp for the value as /proc/sys prints it (vectors like "2 4 1 7" come back tab-separated). */
export function valuePattern(value: string): string {
  const words = value.trim().split(/\s+/).map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return `^${words.join('\\s+')}$`;
}

/** The *.conf files of every sysctl.d directory of an unpacked image (symlinks resolved inside it). */
export function readSysctlFiles(root: string): SysctlFile[] {
  const out: SysctlFile[] = [];
  for (const dir of SYSCTL_DIRS) {
    const abs = join(root, dir);
    if (!existsSync(abs) || !statSync(abs).isDirectory()) continue;
    for (const name of readdirSync(abs)) {
      if (!name.endsWith('.conf')) continue;
      const file = resolveInside(root, join(dir, name));
      if (file && statSync(file).isFile()) out.push({ dir, name, text: readFileSync(file, 'utf8') });
    }
  }
  return out;
}

/** Follow symlinks of an image path without leaving the image (absolute targets are image paths). */
function resolveInside(root: string, path: string, depth = 0): string | null {
  const abs = join(root, path);
  if (!existsSync(abs) && !isLink(abs)) return null;
  if (!isLink(abs)) return abs;
  if (depth > 10) return null;
  const target = readlinkSync(abs);
  return resolveInside(root, target.startsWith('/') ? target : join(dirname(path), target), depth + 1);
}

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}
