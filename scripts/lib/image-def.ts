// Image definitions are data (STYLE.md §2): each OS folder has an image.yaml. This module parses and
// validates it; scripts read fields and never branch on an OS name.
import { readFileSync, existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseDocument, LineCounter } from 'yaml';
import { UsageError } from './errors.ts';
import { ROOT } from './config.ts';

export interface Bootstrap {
  /** Only mmdebstrap is implemented: it reads a Debian-style archive. */
  tool: 'mmdebstrap';
  suite: string;
  /** Archive URL. Empty: the host's configured Debian mirror. */
  mirror: string;
  components: string[];
  /** Extra suites from the same archive, e.g. bookworm-updates. */
  extra_suites: string[];
  /** Security archive URL and suite; empty to leave out. */
  security: string;
  variant: string;
  include: string[];
  /** Keyring file for a foreign archive (e.g. ubuntu-archive-keyring). */
  keyring: string;
}

export interface Base {
  /** Image reference the Dockerfile builds FROM (passed as build arg BASE_IMAGE). */
  image: string;
  /** The OS folder whose build produces `image` (a dependency), if any. */
  from: string;
  /** How to make `image` when it is neither local nor pullable. */
  bootstrap: Bootstrap | null;
}

export interface Contract {
  /** Initrd file name for kernel version {k}, e.g. "initrd.img-{k}" or "initramfs-{k}.img". */
  initrd: string;
  /** Group the installer puts user metal in (sudo, or wheel on almalinux). */
  sudo_group: string;
  /** Lint budget for the uncompressed tar. */
  size_budget_mib: number;
  /** Commands the installer runs, looked up on PATH inside the image by the lint; "a|b" accepts either. */
  required_commands: string[];
}

/**
 * Per-OS commands and paths of the in-image installer (scripts/installer), handed to it in
 * installer/os.yaml. The defaults fit Debian and Ubuntu; almalinux sets its own.
 */
export interface InstallerContract {
  /** grub-install, or grub2-install. */
  grub_install: string[];
  /** update-grub2, or [grub2-mkconfig, -o, /boot/grub2/grub.cfg]. */
  grub_mkconfig: string[];
  /** Regenerates the initrd after mdadm.conf changed (RAID): update-initramfs -u, or dracut. */
  initramfs_update: string[];
  mdadm_conf: string;
  /** Time client of machines (firewalls always use chrony). */
  ntp_client: 'timesyncd' | 'chrony';
  chrony_conf: string;
  nftables_conf: string;
}

/** What REFERENCE.md §3/§6 installers run on a Debian-like image; almalinux lists grub2-mkconfig and dracut instead. */
export const DEFAULT_REQUIRED_COMMANDS = [
  'bash', 'systemctl', 'useradd', 'userdel', 'chpasswd', 'sudo', 'sshd', 'grub-install', 'update-grub2', 'efibootmgr',
  'mdadm', 'lvm', 'update-initramfs', 'vtysh', 'ignition|cloud-init',
];

export interface Variant {
  version?: string;
  base?: Partial<Base>;
  build_args?: Record<string, string>;
}

export interface ImageDef {
  os: string;
  version: string;
  description: string;
  supported: boolean;
  base: Base;
  build_args: Record<string, string>;
  /** Command run in the built image whose stdout becomes packages.txt. */
  packages_command: string[];
  machine_type: 'machine' | 'firewall';
  /** Host-built Go tools (names from tools/tools.yaml) copied into the build context's tools/. */
  go_tools: string[];
  contract: Contract & InstallerContract;
  variants: Record<string, Variant>;
  /** The OS folder, absolute. */
  dir: string;
  /** The selected variant, if any. */
  variant: string;
}

// ---- a tiny schema checker: every error names the file and the field path --------------------

type Check = (v: unknown, path: string) => unknown;
class SchemaError extends Error {
  /** The field whose YAML node the message is about (its line is added), e.g. "variants.debian.version". */
  constructor(message: string, readonly field?: string) {
    super(message);
  }
}

// A YAML number is never taken for a string: `version: 12.10` would be the number 12.1.
const str: Check = (v, p) => {
  if (typeof v === 'number') throw new SchemaError(`field "${p}" must be a string, but YAML reads it as the number ${v}`, p);
  if (typeof v !== 'string') throw new SchemaError(`field "${p}" must be a string, got ${kind(v)}`);
  return v;
};
const bool: Check = (v, p) => {
  if (typeof v !== 'boolean') throw new SchemaError(`field "${p}" must be true or false, got ${kind(v)}`);
  return v;
};
const posInt: Check = (v, p) => {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new SchemaError(`field "${p}" must be a positive integer, got ${kind(v)}`);
  return v;
};
const oneOf = (...vals: string[]): Check => (v, p) => {
  if (typeof v !== 'string' || !vals.includes(v)) throw new SchemaError(`field "${p}" must be one of ${vals.join(', ')}, got ${JSON.stringify(v)}`);
  return v;
};
const list = (item: Check): Check => (v, p) => {
  if (!Array.isArray(v)) throw new SchemaError(`field "${p}" must be a list, got ${kind(v)}`);
  return v.map((x, i) => item(x, `${p}[${i}]`));
};
const strMap: Check = (v, p) => {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new SchemaError(`field "${p}" must be a mapping, got ${kind(v)}`);
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new SchemaError(`field "${p}.${k}" is not a valid build-arg name`);
    out[k] = str(x, `${p}.${k}`) as string;
  }
  return out;
};
type Shape = Record<string, { check: Check; default?: unknown }>;
const obj = (shape: Shape, partial = false): Check => (v, p) => {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new SchemaError(`field "${p || '(top)'}" must be a mapping, got ${kind(v)}`);
  const out: Record<string, unknown> = {};
  const rec = v as Record<string, unknown>;
  for (const k of Object.keys(rec)) {
    if (!(k in shape)) throw new SchemaError(`field "${p ? `${p}.` : ''}${k}" is not known (expected one of: ${Object.keys(shape).join(', ')})`);
  }
  for (const [k, s] of Object.entries(shape)) {
    const fp = p ? `${p}.${k}` : k;
    if (rec[k] === undefined || rec[k] === null) {
      if (partial) continue;
      if (s.default === undefined) throw new SchemaError(`field "${fp}" is required`);
      out[k] = structuredClone(s.default);
    } else out[k] = s.check(rec[k], fp);
  }
  return out;
};
const nullable = (c: Check): Check => (v, p) => (v === null ? null : c(v, p));
const mapOf = (item: Check): Check => (v, p) => {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new SchemaError(`field "${p}" must be a mapping, got ${kind(v)}`);
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, item(x, `${p}.${k}`)]));
};
function kind(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}

const bootstrapShape: Shape = {
  tool: { check: oneOf('mmdebstrap') },
  suite: { check: str },
  mirror: { check: str, default: '' },
  components: { check: list(str), default: ['main'] },
  extra_suites: { check: list(str), default: [] },
  security: { check: str, default: '' },
  variant: { check: oneOf('minbase', 'essential', 'apt', 'required', 'important', 'standard'), default: 'minbase' },
  include: { check: list(str), default: [] },
  keyring: { check: str, default: '' },
};
const baseShape: Shape = {
  image: { check: str },
  from: { check: str, default: '' },
  bootstrap: { check: nullable(obj(bootstrapShape)), default: null },
};
const schema = obj({
  os: { check: str },
  version: { check: str },
  description: { check: str, default: '' },
  supported: { check: bool, default: true },
  base: { check: obj(baseShape) },
  build_args: { check: strMap, default: {} },
  packages_command: { check: list(str) },
  machine_type: { check: oneOf('machine', 'firewall') },
  go_tools: { check: list(str), default: [] },
  contract: {
    check: obj({
      initrd: { check: str, default: 'initrd.img-{k}' },
      sudo_group: { check: str, default: 'sudo' },
      size_budget_mib: { check: posInt },
      required_commands: { check: list(str), default: DEFAULT_REQUIRED_COMMANDS },
      grub_install: { check: list(str), default: ['grub-install'] },
      grub_mkconfig: { check: list(str), default: ['update-grub2'] },
      initramfs_update: { check: list(str), default: ['update-initramfs', '-u'] },
      mdadm_conf: { check: str, default: '/etc/mdadm/mdadm.conf' },
      ntp_client: { check: oneOf('timesyncd', 'chrony'), default: 'timesyncd' },
      chrony_conf: { check: str, default: '/etc/chrony/chrony.conf' },
      nftables_conf: { check: str, default: '/etc/nftables.conf' },
    }),
  },
  variants: {
    check: mapOf(obj({ version: { check: str }, base: { check: obj(baseShape, true) }, build_args: { check: strMap } }, true)),
    default: {},
  },
});

/** Pure: validate a parsed YAML text as an image definition. `file` is used in messages only. */
export function parseImageDef(text: string, file: string, folder: string): Omit<ImageDef, 'dir' | 'variant'> {
  const lines = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter: lines });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const pos = lines.linePos(e.pos[0]);
    throw new UsageError(`${file}${pos ? `:${pos.line}:${pos.col}` : ''}: YAML error: ${e.message.split('\n')[0]}`, `fix the YAML syntax in ${file}`);
  }
  let def: Omit<ImageDef, 'dir' | 'variant'>;
  try {
    def = schema(doc.toJS(), '') as typeof def;
  } catch (e) {
    if (e instanceof SchemaError && e.field) {
      // e.g. "variants.debian.version" or "packages_command[0]": the node, its line and its text as written
      const path = e.field.split(/\.|\[(\d+)\]/).filter((x) => x !== undefined && x !== '').map((x) => (/^\d+$/.test(x) ? Number(x) : x));
      const node = doc.getIn(path, true) as { range?: [number, number, number] } | undefined;
      const pos = node?.range ? lines.linePos(node.range[0]) : undefined;
      const written = node?.range ? text.slice(node.range[0], node.range[1]).trim() : '';
      const name = String(path[path.length - 1]);
      const quoted = typeof path[path.length - 1] === 'number' ? `"${written}"` : `${name}: "${written}"`;
      throw new UsageError(`${file}${pos ? `:${pos.line}` : ''}: ${e.message}`, `quote it in ${file}: ${quoted}`);
    }
    if (e instanceof SchemaError) throw new UsageError(`${file}: ${e.message}`, `edit ${file}`);
    throw e;
  }
  const bad = (msg: string): never => {
    throw new UsageError(`${file}: ${msg}`, `edit ${file}`);
  };
  if (def.os !== folder) bad(`field "os" is "${def.os}" but the folder is "${folder}"`);
  if (!/^[0-9]+(\.[0-9]+)?(-[a-z0-9]+)?$/.test(def.version)) bad(`field "version" "${def.version}" is not <major>[.<minor>][-<flavour>]`);
  if (def.packages_command.length === 0) bad('field "packages_command" must not be empty');
  if (!def.contract.initrd.includes('{k}')) bad('field "contract.initrd" must contain {k} (the kernel version)');
  for (const [name, v] of Object.entries(def.variants)) {
    if (!/^[a-z0-9-]+$/.test(name)) bad(`variant name "${name}" must be lower-case letters, digits and -`);
    if (v.version !== undefined && !/^[0-9]+(\.[0-9]+)?(-[a-z0-9]+)?$/.test(v.version)) bad(`field "variants.${name}.version" "${v.version}" is not <major>[.<minor>][-<flavour>]`);
  }
  return def;
}

/** The OS folders: top-level directories that hold an image.yaml. */
export function listOsFolders(root = ROOT): string[] {
  return readdirSync(root)
    .filter((d) => !d.startsWith('.') && statSync(join(root, d)).isDirectory() && existsSync(join(root, d, 'image.yaml')))
    .sort();
}

/** Load <root>/<os>/image.yaml, apply a variant if asked, and check its dependencies exist. */
export function loadImageDef(os: string, variant = '', root = ROOT): ImageDef {
  const known = listOsFolders(root);
  if (!/^[a-z0-9-]+$/.test(os) || !known.includes(os)) {
    throw new UsageError(`unknown OS "${os}" (known: ${known.join(', ')})`, `run one of: ${known.map((k) => `make ${k}`).join(', ')}`);
  }
  const dir = join(root, os);
  const file = relative(process.cwd(), join(dir, 'image.yaml')) || 'image.yaml';
  const def = parseImageDef(readFileSync(join(dir, 'image.yaml'), 'utf8'), file, os);
  if (def.base.from && !known.includes(def.base.from)) {
    throw new UsageError(`${file}: field "base.from" names "${def.base.from}", which is not an OS folder`, `edit ${file}`);
  }
  let out: ImageDef = { ...def, dir, variant: '' };
  if (variant) {
    const v = def.variants[variant];
    if (!v) {
      const names = Object.keys(def.variants);
      throw new UsageError(
        `${os} has no variant "${variant}" (${names.length ? `known: ${names.join(', ')}` : 'it has none'})`,
        names.length ? `run make ${os} BASE=${names[0]}` : `run make ${os}`,
      );
    }
    out = {
      ...out,
      variant,
      version: v.version ?? def.version,
      base: { ...def.base, bootstrap: null, from: '', ...v.base },
      build_args: { ...def.build_args, ...v.build_args },
    };
    if (out.base.from && !known.includes(out.base.from)) {
      throw new UsageError(`${file}: field "variants.${variant}.base.from" names "${out.base.from}", which is not an OS folder`, `edit ${file}`);
    }
  }
  return out;
}

/** Tag of the image a definition builds, e.g. metal-images/debian:12. */
export function imageTag(def: Pick<ImageDef, 'os' | 'version'>): string {
  return `metal-images/${def.os}:${def.version}`;
}

/** Image id as the metal-api sees it without the patch, e.g. debian-12 or firewall-3.0-ubuntu. */
export function imageId(def: Pick<ImageDef, 'os' | 'version'>): string {
  return `${def.os}-${def.version}`;
}
