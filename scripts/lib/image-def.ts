// Image definitions are data: each OS folder has an image.yaml. This module parses and
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
  /**
   * Image reference the Dockerfile builds FROM (passed as build arg BASE_IMAGE). With `from`, it is
   * that folder's body (bodyTag), and its kernel stage is passed as BASE_KERNEL_IMAGE.
   */
  image: string;
  /** The OS folder whose body this image is built on (a dependency), if any. */
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

/** What docs/contract.md §3/§6 installers run on a Debian-like image; almalinux lists grub2-mkconfig and dracut instead. */
export const DEFAULT_REQUIRED_COMMANDS = [
  'bash', 'systemctl', 'useradd', 'userdel', 'chpasswd', 'sudo', 'sshd', 'grub-install', 'update-grub2', 'efibootmgr',
  'mdadm', 'lvm', 'update-initramfs', 'vtysh', 'ignition|cloud-init',
];

/**
 * Units of image.yaml (and of its layers, and of the image it is built on): the finalize stage
 * renders them into the preset the installer's `systemctl preset-all` keeps, and checks them.
 */
export interface Units {
  enable: string[];
  disable: string[];
  mask: string[];
  /** e.g. multi-user.target; empty: inherited (or the image's default). */
  default_target: string;
}

export type UnitState = 'enable' | 'disable' | 'mask';

export interface Variant {
  version?: string;
  base?: Partial<Base>;
  build_args?: Record<string, string>;
  packages?: Record<string, string[]>;
  units?: Units;
  /** Folder (relative to the OS folder) staged over the OS folder's context/, e.g. "13/context". */
  context?: string;
}

/** A file layer under layers/<name>/: context/ staged below the OS folder's, and layer.yaml data. */
export interface Layer {
  name: string;
  dir: string;
  packages: Record<string, string[]>;
  units: Units;
  build_args: Record<string, string>;
}

export interface ImageDef {
  os: string;
  version: string;
  description: string;
  supported: boolean;
  /** Names of the layers under layers/, lowest first (as written in image.yaml). */
  layers: string[];
  base: Base;
  /** Build args: the layers' defaults, then image.yaml's, then the variant's; package lists joined in. */
  build_args: Record<string, string>;
  /** Package lists by build arg name (joined into build_args): the layers' lists plus image.yaml's. */
  packages: Record<string, string[]>;
  /** Effective units, in order: the base image's, the layers', image.yaml's, the variant's (last word wins). */
  units: { order: string[]; state: Record<string, UnitState>; default_target: string };
  /** Extra keys of /etc/metal/build.yaml: key → shell command run in the finished image ({k} = kernel). */
  build_meta: Record<string, string>;
  /** The <os> of the image store and of the image id (metal-os/<prefix>/<publish_as>/<version>); default the folder. */
  publish_as: string;
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
  /** The body's Dockerfile: the OS folder's own, else the last layer's. Absolute. */
  dockerfile: string;
  /** Context dirs staged in this order (later wins): the layers', the OS folder's, the variant's. */
  contextDirs: string[];
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
  image: { check: str, default: '' },
  from: { check: str, default: '' },
  bootstrap: { check: nullable(obj(bootstrapShape)), default: null },
};
const unitName: Check = (v, p) => {
  const u = str(v, p) as string;
  if (!/^[A-Za-z0-9:_.\\@-]+\.(service|socket|timer|target|path|mount|automount|swap|slice)$/.test(u)) {
    throw new SchemaError(`field "${p}" is "${u}": expected a unit name such as ssh.service or serial-getty@ttyS1.service`);
  }
  return u;
};
const unitsShape: Shape = {
  enable: { check: list(unitName), default: [] },
  disable: { check: list(unitName), default: [] },
  mask: { check: list(unitName), default: [] },
  default_target: { check: str, default: '' },
};
const packageLists = mapOf(list(str));
const buildMetaShape: Check = (v, p) => {
  const m = strMap(v, p) as Record<string, string>;
  for (const k of Object.keys(m)) if (!/^[a-z][a-z0-9_]*$/.test(k)) throw new SchemaError(`field "${p}.${k}": build metadata keys are lower_snake_case`);
  return m;
};
const layerSchema = obj({
  description: { check: str, default: '' },
  build_args: { check: strMap, default: {} },
  packages: { check: packageLists, default: {} },
  units: { check: obj(unitsShape), default: { enable: [], disable: [], mask: [], default_target: '' } },
});
const schema = obj({
  os: { check: str },
  version: { check: str },
  description: { check: str, default: '' },
  supported: { check: bool, default: true },
  layers: { check: list(str), default: [] },
  base: { check: obj(baseShape) },
  build_args: { check: strMap, default: {} },
  packages: { check: packageLists, default: {} },
  units: { check: obj(unitsShape), default: { enable: [], disable: [], mask: [], default_target: '' } },
  build_meta: { check: buildMetaShape, default: {} },
  publish_as: { check: str, default: '' },
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
    check: mapOf(obj({
      version: { check: str },
      base: { check: obj(baseShape, true) },
      build_args: { check: strMap },
      packages: { check: packageLists },
      units: { check: obj(unitsShape) },
      context: { check: str },
    }, true)),
    default: {},
  },
});

/** image.yaml as written (before layers, base and variant are applied). */
export type RawImageDef = Omit<ImageDef, 'dir' | 'variant' | 'dockerfile' | 'contextDirs' | 'units'> & { units: Units };

function parseYaml(text: string, file: string, check: Check): unknown {
  const lines = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter: lines });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const pos = lines.linePos(e.pos[0]);
    throw new UsageError(`${file}${pos ? `:${pos.line}:${pos.col}` : ''}: YAML error: ${e.message.split('\n')[0]}`, `fix the YAML syntax in ${file}`);
  }
  try {
    return check(doc.toJS(), '');
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
}

/** Pure: validate a layers/<name>/layer.yaml text. */
export function parseLayer(text: string, file: string): Omit<Layer, 'name' | 'dir'> {
  return parseYaml(text, file, layerSchema) as Omit<Layer, 'name' | 'dir'>;
}

/** Pure: validate a parsed YAML text as an image definition. `file` is used in messages only. */
export function parseImageDef(text: string, file: string, folder: string): RawImageDef {
  const def = parseYaml(text, file, schema) as RawImageDef;
  const bad = (msg: string): never => {
    throw new UsageError(`${file}: ${msg}`, `edit ${file}`);
  };
  if (def.os !== folder) bad(`field "os" is "${def.os}" but the folder is "${folder}"`);
  if (!/^[0-9]+(\.[0-9]+)?(-[a-z0-9]+)?$/.test(def.version)) bad(`field "version" "${def.version}" is not <major>[.<minor>][-<flavour>]`);
  if (def.packages_command.length === 0) bad('field "packages_command" must not be empty');
  if (!def.base.image && !def.base.from) bad('field "base" needs "image" (a base image) or "from" (the OS folder whose body it builds on)');
  if (def.base.image && def.base.from) bad('field "base" has both "image" and "from": with "from", the base is that folder\'s body');
  for (const [name, v] of Object.entries(def.variants)) {
    if (v.base?.image && v.base?.from) bad(`field "variants.${name}.base" has both "image" and "from"`);
    if (v.context !== undefined && (v.context.startsWith('/') || v.context.split('/').includes('..'))) bad(`field "variants.${name}.context" must be a folder inside ${folder}/`);
  }
  for (const l of def.layers) if (!/^[a-z0-9-]+$/.test(l) || l === 'finalize') bad(`field "layers": "${l}" is not a layer name`);
  if (def.publish_as && !/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/.test(def.publish_as)) bad(`field "publish_as" "${def.publish_as}" is not an image name ([a-z0-9-])`);
  def.publish_as ||= folder;
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

/** The finalize stage every image passes through: layers/finalize/ (not a file layer). */
export const FINALIZE_DIR = 'layers/finalize';

/** Load layers/<name>/layer.yaml (optional) of the named layer. */
export function loadLayer(name: string, root = ROOT): Layer {
  const dir = join(root, 'layers', name);
  if (!existsSync(join(dir, 'context')) && !existsSync(join(dir, 'layer.yaml'))) {
    const known = existsSync(join(root, 'layers')) ? readdirSync(join(root, 'layers')).filter((d) => d !== 'finalize').sort() : [];
    throw new UsageError(`unknown layer "${name}" (known: ${known.join(', ') || 'none'})`, `create layers/${name}/ or fix "layers" in the image.yaml`);
  }
  const file = join(dir, 'layer.yaml');
  const data = existsSync(file) ? parseLayer(readFileSync(file, 'utf8'), relative(process.cwd(), file) || file) : { description: '', build_args: {}, packages: {}, units: emptyUnits() };
  return { name, dir, ...data };
}

function emptyUnits(): Units {
  return { enable: [], disable: [], mask: [], default_target: '' };
}

/** Pure: apply unit lists in order; a later word about a unit replaces an earlier one. */
export function mergeUnits(base: ImageDef['units'], ...more: Units[]): ImageDef['units'] {
  const order = [...base.order];
  const state: Record<string, UnitState> = { ...base.state };
  let target = base.default_target;
  for (const u of more) {
    for (const [list, st] of [[u.enable, 'enable'], [u.disable, 'disable'], [u.mask, 'mask']] as const) {
      for (const name of list) {
        if (!(name in state)) order.push(name);
        state[name] = st;
      }
    }
    if (u.default_target) target = u.default_target;
  }
  return { order, state, default_target: target };
}

/**
 * Pure: package lists joined per name, duplicates dropped, first occurrence's position kept. An
 * entry "-<package>" takes a package of a lower list out again (e.g. a Debian version that no
 * longer has it).
 */
export function mergePackages(...lists: Record<string, string[]>[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const l of lists) {
    for (const [k, v] of Object.entries(l)) {
      const drop = new Set(v.filter((p) => p.startsWith('-')).map((p) => p.slice(1)));
      out[k] = [...new Set([...(out[k] ?? []), ...v.filter((p) => !p.startsWith('-'))])].filter((p) => !drop.has(p));
    }
  }
  return out;
}

/** Load <root>/<os>/image.yaml, apply its layers, its base and a variant if asked, and check dependencies. */
export function loadImageDef(os: string, variant = '', root = ROOT, seen: string[] = []): ImageDef {
  const known = listOsFolders(root);
  if (!/^[a-z0-9-]+$/.test(os) || !known.includes(os)) {
    throw new UsageError(`unknown OS "${os}" (known: ${known.join(', ')})`, `run one of: ${known.map((k) => `make ${k}`).join(', ')}`);
  }
  const dir = join(root, os);
  const file = relative(process.cwd(), join(dir, 'image.yaml')) || 'image.yaml';
  const raw = parseImageDef(readFileSync(join(dir, 'image.yaml'), 'utf8'), file, os);
  let v: Variant = {};
  if (variant) {
    const found = raw.variants[variant];
    if (!found) {
      const names = Object.keys(raw.variants);
      throw new UsageError(
        `${os} has no variant "${variant}" (${names.length ? `known: ${names.join(', ')}` : 'it has none'})`,
        names.length ? `run make ${os} VARIANT=${names[0]}` : `run make ${os}`,
      );
    }
    v = found;
  }
  const where = variant ? `variants.${variant}.base` : 'base';
  const base: Base = v.base
    ? { image: v.base.image ?? '', from: v.base.from ?? '', bootstrap: v.base.bootstrap ?? null }
    : { ...raw.base };
  if (v.base && !base.image && !base.from) Object.assign(base, raw.base);

  // the image it is built on: its units come first, its body is the base
  let units: ImageDef['units'] = { order: [], state: {}, default_target: '' };
  if (base.from) {
    if (!known.includes(base.from)) throw new UsageError(`${file}: field "${where}.from" names "${base.from}", which is not an OS folder`, `edit ${file}`);
    if (seen.includes(base.from) || base.from === os) throw new UsageError(`image dependency cycle: ${[...seen, os, base.from].join(' → ')}`, `fix base.from in ${file}`);
    const dep = loadImageDef(base.from, '', root, [...seen, os]);
    base.image = bodyTag(dep);
    units = dep.units;
  }
  const layers = raw.layers.map((l) => loadLayer(l, root));
  units = mergeUnits(units, ...layers.map((l) => l.units), raw.units, ...(v.units ? [v.units] : []));
  const packages = mergePackages(...layers.map((l) => l.packages), raw.packages, v.packages ?? {});
  const build_args = {
    ...Object.assign({}, ...layers.map((l) => l.build_args)),
    ...raw.build_args,
    ...v.build_args,
    ...Object.fromEntries(Object.entries(packages).map(([k, list]) => [k, list.join(' ')])),
  } as Record<string, string>;

  const own = join(dir, 'Dockerfile');
  const fromLayer = [...layers].reverse().find((l) => existsSync(join(l.dir, 'Dockerfile')));
  const dockerfile = existsSync(own) ? own : fromLayer ? join(fromLayer.dir, 'Dockerfile') : own;
  const contextDirs = [...layers.map((l) => join(l.dir, 'context')), join(dir, 'context')];
  if (v.context) {
    const c = join(dir, v.context);
    if (!existsSync(c)) throw new UsageError(`${file}: field "variants.${variant}.context" names ${os}/${v.context}, which does not exist`, `create it or drop the field`);
    contextDirs.push(c);
  }
  return {
    ...raw,
    dir,
    variant,
    version: v.version ?? raw.version,
    base,
    build_args,
    packages,
    units,
    dockerfile,
    contextDirs,
  };
}

/** Tag of the image a definition builds, e.g. metal-images/debian:12. */
export function imageTag(def: Pick<ImageDef, 'os' | 'version'>): string {
  return `metal-images/${def.os}:${def.version}`;
}

/** Tag of its body (no installer, no build metadata: the same across commits), e.g. metal-images/debian:12-body. */
export function bodyTag(def: Pick<ImageDef, 'os' | 'version'>): string {
  return `${imageTag(def)}-body`;
}

/** Tag of its body's "kernel" stage, where the body's Dockerfile has one, e.g. metal-images/debian:12-kernel. */
export function kernelTag(def: Pick<ImageDef, 'os' | 'version'>): string {
  return `${imageTag(def)}-kernel`;
}

/** The image as people and the metal-api name it without the patch, e.g. debian-12 or firewall-3.0-ubuntu (the image id is that plus .<patch>: scripts/release/plan.ts imageId). */
export function imageName(def: Pick<ImageDef, 'os' | 'version'>): string {
  return `${def.os}-${def.version}`;
}
