// The hammer VM's initramfs: rack-hammer as /init, the host's partitioning and mkfs tools with
// the shared libraries they link, the hammer's lvmlocal.conf, and the kernel modules the image's
// kernel needs for virtio disks and NICs, ext4, vfat and efivarfs (from the image's own
// /lib/modules, so they match the kernel the VM boots). The pure parts (cpio format, ldd output,
// module order) are unit-tested; buildInitramfs() runs tar and ldd.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PreconditionError } from '../lib/errors.ts';
import { run } from '../lib/shell.ts';

export interface CpioEntry {
  /** Path without a leading slash, e.g. usr/sbin/sgdisk. */
  path: string;
  kind: 'file' | 'dir' | 'symlink';
  /** Permission bits, e.g. 0o755. */
  mode: number;
  data?: Buffer;
  target?: string;
}

const TYPE = { file: 0o100000, dir: 0o040000, symlink: 0o120000 } as const;

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

/** Pure: a newc ("070701") cpio archive, the format the kernel unpacks as initramfs. */
export function cpioNewc(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  const one = (name: string, mode: number, data: Buffer): void => {
    const nameBuf = Buffer.from(`${name}\0`);
    const header = [
      '070701', hex8(ino++), hex8(mode), hex8(0), hex8(0), hex8(1), hex8(0), hex8(data.length),
      hex8(0), hex8(0), hex8(0), hex8(0), hex8(nameBuf.length), hex8(0),
    ].join('');
    parts.push(Buffer.from(header), nameBuf, Buffer.alloc(pad4(110 + nameBuf.length)), data, Buffer.alloc(pad4(data.length)));
  };
  for (const e of entries) {
    const data = e.kind === 'file' ? (e.data ?? Buffer.alloc(0)) : e.kind === 'symlink' ? Buffer.from(e.target ?? '') : Buffer.alloc(0);
    one(e.path, TYPE[e.kind] | e.mode, data);
  }
  ino = 0;
  one('TRAILER!!!', 0, Buffer.alloc(0));
  return Buffer.concat(parts);
}

/** Pure: the absolute library paths in `ldd` output (the loader included, vdso left out). */
export function parseLdd(output: string): string[] {
  const libs: string[] = [];
  for (const line of output.split('\n')) {
    const arrow = /=>\s+(\/\S+)\s+\(0x/.exec(line);
    const bare = /^\s*(\/\S+)\s+\(0x/.exec(line);
    const p = arrow?.[1] ?? bare?.[1];
    if (p && !libs.includes(p)) libs.push(p);
  }
  return libs;
}

/**
 * Pure: the modules to load for `wanted` (names like "ext4"), dependencies first, as paths
 * relative to /lib/modules/<k>/, from modules.dep. A module listed in modules.builtin is part of
 * the kernel itself (Debian 13's 6.12 builds virtio_pci in) and needs nothing loaded. Throws
 * naming a module the kernel has neither way.
 */
export function moduleLoadOrder(modulesDep: string, wanted: readonly string[], modulesBuiltin = ''): string[] {
  const name = (path: string): string => path.replace(/^.*\//, '').replace(/\.ko(\.\w+)?$/, '').replace(/-/g, '_');
  const builtin = new Set(modulesBuiltin.split('\n').map((l) => l.trim()).filter(Boolean).map(name));
  const deps = new Map<string, string[]>();
  const byName = new Map<string, string>();
  for (const line of modulesDep.split('\n')) {
    const m = /^([^:]+):\s*(.*)$/.exec(line.trim());
    if (!m) continue;
    deps.set(m[1]!, m[2]!.split(/\s+/).filter(Boolean));
    byName.set(name(m[1]!), m[1]!);
  }
  const order: string[] = [];
  const visit = (path: string): void => {
    if (order.includes(path)) return;
    // modules.dep lists every (transitive) dependency; the last ones are the deepest
    for (const d of [...(deps.get(path) ?? [])].reverse()) visit(d);
    if (!order.includes(path)) order.push(path);
  };
  for (const w of wanted) {
    const path = byName.get(w.replace(/-/g, '_'));
    if (!path && builtin.has(w.replace(/-/g, '_'))) continue;
    if (!path) throw new Error(`the image's kernel has no module ${w} (neither in modules.dep nor in modules.builtin)`);
    visit(path);
  }
  return order;
}

/** A module file as plain ELF: .ko as is, .ko.xz / .ko.zst / .ko.gz decompressed. */
async function plainModule(path: string): Promise<Buffer> {
  const tool = path.endsWith('.ko.xz') ? 'xz' : path.endsWith('.ko.zst') ? 'zstd' : path.endsWith('.ko.gz') ? 'gzip' : null;
  if (!tool) return readFileSync(path);
  const r = await run([tool, '--decompress', '--stdout', path], { hint: `decompressing the kernel module ${path} needs ${tool} (apt-get install ${tool === 'xz' ? 'xz-utils' : tool})`, encoding: 'buffer' });
  return r.stdoutBuffer!;
}

/** What the hammer VM needs from the host: the tools the hammer runs, by absolute path. */
export const HOST_TOOLS = ['/usr/sbin/sgdisk', '/usr/sbin/wipefs', '/usr/sbin/mkfs.vfat', '/usr/sbin/mkfs.ext4', '/usr/sbin/blkid', '/usr/bin/mount', '/usr/sbin/ip'] as const;
/** Debian packages that provide them (for the precondition message). */
export const HOST_TOOL_PACKAGES = 'gdisk util-linux dosfstools e2fsprogs mount iproute2';
/** Modules of the image's kernel the hammer VM loads (Debian builds these as modules). */
export const HAMMER_MODULES = ['virtio_pci', 'virtio_blk', 'virtio_net', 'crc32c_generic', 'ext4', 'nls_cp437', 'nls_ascii', 'vfat', 'efivarfs'];
/**
 * A firewall's installer checks its ruleset with `nft --check`, which asks the running kernel (the
 * hammer's): nf_tables and the expressions the rules use (ct, limit, log, NAT, masquerade). The
 * metal-hammer's kernel has them; without them the check fails with "Unable to initialize Netlink
 * socket: Protocol not supported" (the first firewall rack run found this).
 */
export const FIREWALL_HAMMER_MODULES = ['nfnetlink', 'nf_tables', 'nf_conntrack', 'nf_nat', 'nft_ct', 'nft_limit', 'nft_log', 'nf_log_syslog', 'nft_chain_nat', 'nft_nat', 'nft_masq', 'nft_redir'];

/**
 * The metal-hammer's own /etc/lvm/lvmlocal.conf, which it copies into an image that has /etc/lvm
 * (lvm without udev in the hammer's environment).
 */
export const HAMMER_LVMLOCAL = 'activation {\n    udev_sync = 0\n    udev_rules = 0\n}\ndevices {\n    multipath_component_detection = 0\n    md_component_detection = 0\n    obtain_device_list_from_udev = 0\n}';

/** Parent directories of `path` (without a leading slash), outermost first. */
function parents(path: string): string[] {
  const parts = path.split('/').slice(0, -1);
  return parts.map((_, i) => parts.slice(0, i + 1).join('/'));
}

export interface HammerBoot {
  kernel: string;
  initramfs: string;
  kernelVersion: string;
}

/**
 * Build the hammer VM's kernel and initramfs in `dir` from the artifact (its kernel and modules)
 * and the host (rack-hammer and the tools).
 */
export async function buildInitramfs(artifact: string, hammerBin: string, dir: string, extraModules: readonly string[] = []): Promise<HammerBoot> {
  const missing = HOST_TOOLS.filter((t) => {
    try {
      return !statSync(t).isFile();
    } catch {
      return true;
    }
  });
  if (missing.length) throw new PreconditionError(`the hammer VM needs ${missing.join(', ')} from the host`, `apt-get install ${HOST_TOOL_PACKAGES} (make setup does)`);
  const x = mkdtempSync(join(dir, 'kernel-'));
  try {
    // --no-anchored: members may be named ./boot/... (the hammer's untar takes both forms)
    await run(['tar', '--extract', '--use-compress-program=lz4', '--file', artifact, '--directory', x, '--wildcards', '--no-anchored', 'boot/vmlinuz-*', 'usr/lib/modules/*/modules.dep', 'usr/lib/modules/*/modules.builtin'], {
      hint: `the artifact may be damaged: re-run make export`,
    });
    const boot = join(x, 'boot');
    const kernels = readdirSync(boot).filter((n) => n.startsWith('vmlinuz-'));
    if (kernels.length !== 1) throw new PreconditionError(`${artifact} has ${kernels.length} kernels (/boot/vmlinuz-*), the hammer VM boots exactly one`, 'fix the image so that it has one kernel');
    const version = kernels[0]!.slice('vmlinuz-'.length);
    const modRoot = `usr/lib/modules/${version}`;
    const builtinFile = join(x, modRoot, 'modules.builtin');
    const builtin = existsSync(builtinFile) ? readFileSync(builtinFile, 'utf8') : '';
    const order = moduleLoadOrder(readFileSync(join(x, modRoot, 'modules.dep'), 'utf8'), [...HAMMER_MODULES, ...extraModules], builtin);
    await run(['tar', '--extract', '--use-compress-program=lz4', '--file', artifact, '--directory', x, '--wildcards', '--no-anchored', ...order.map((m) => `${modRoot}/${m}`)], { hint: 'the artifact may be damaged: re-run make export' });

    const entries: CpioEntry[] = [];
    const dirs = new Set<string>();
    const addDirs = (p: string): void => {
      for (const d of parents(p)) {
        if (dirs.has(d)) continue;
        dirs.add(d);
        entries.push({ path: d, kind: 'dir', mode: 0o755 });
      }
    };
    const addFile = (p: string, data: Buffer, mode: number): void => {
      addDirs(p);
      entries.push({ path: p, kind: 'file', mode, data });
    };
    for (const d of ['dev', 'proc', 'sys', 'tmp', 'run', 'rootfs']) addDirs(`${d}/x`);
    addFile('init', readFileSync(hammerBin), 0o755);
    const libs = new Set<string>();
    for (const tool of HOST_TOOLS) {
      addFile(tool.slice(1), readFileSync(realpathSync(tool)), 0o755);
      for (const l of parseLdd((await run(['ldd', tool])).stdout)) libs.add(l);
    }
    for (const l of libs) addFile(l.slice(1), readFileSync(realpathSync(l)), 0o755);
    addFile('etc/mke2fs.conf', readFileSync('/etc/mke2fs.conf'), 0o644);
    addFile('etc/lvm/lvmlocal.conf', Buffer.from(HAMMER_LVMLOCAL), 0o644);
    // the hammer hands each file to init_module, which takes plain ELF only: compressed modules
    // (Debian 13 ships .ko.xz) are decompressed here, on the host
    const modulePaths = order.map((m) => `lib/modules/${version}/${m.replace(/\.ko\.(xz|zst|gz)$/, '.ko')}`);
    for (let i = 0; i < order.length; i++) addFile(modulePaths[i]!, await plainModule(join(x, modRoot, order[i]!)), 0o644);
    addFile('etc/rack-hammer/modules', Buffer.from(`${modulePaths.map((p) => `/${p}`).join('\n')}\n`), 0o644);

    mkdirSync(dir, { recursive: true });
    const initramfs = join(dir, 'hammer.cpio');
    writeFileSync(initramfs, cpioNewc(entries));
    const kernel = join(dir, 'hammer-vmlinuz');
    writeFileSync(kernel, readFileSync(join(boot, kernels[0]!)));
    return { kernel, initramfs, kernelVersion: version };
  } finally {
    rmSync(x, { recursive: true, force: true });
  }
}
