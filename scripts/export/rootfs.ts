// The container's file system as a tar, without docker's export stream.
//
// `docker export` mounts the container's overlay (its empty rw layer, docker's init layer, the
// image's layers) and tars it in a helper process, which the daemon copies into an HTTP stream,
// which the CLI copies into a pipe: about 5 CPU-seconds for the Debian image's 900 MB here,
// 20% of the whole export. Mounting the same layers read-only and letting GNU tar read them
// costs under 1 CPU-second. The tar holds the same entries in the same order with the same
// types, permissions, owners, mtimes (whole seconds), link targets, contents and
// security.capability xattrs (tests/integration/lz4compat.test.ts compares them entry by entry);
// only the mode field differs, which GNU tar writes as permission bits alone (as POSIX says) where
// Go's archive/tar adds the file-type bits. Docker's init layer is part of the mount, so the
// machine gets docker's empty /etc/hostname, /etc/hosts and /etc/resolv.conf, exactly as with
// docker export, and not the build host's copies that sit in the bootstrapped base layer.
//
// Needs root and docker's overlay2 driver; otherwise the export uses docker export.
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { config } from '../lib/config.ts';
import { onCleanup } from '../lib/cleanup.ts';
import { processAlive, read, run } from '../lib/shell.ts';

/** Pure: the overlay's layer dirs, top first, from `docker inspect`'s GraphDriver; null if not overlay2. */
export function overlayLayers(driver: { Name?: string; Data?: Record<string, string> | null }): string[] | null {
  const d = driver.Data;
  if (driver.Name !== 'overlay2' || !d?.UpperDir) return null;
  return [d.UpperDir, ...(d.LowerDir ? d.LowerDir.split(':') : [])];
}

/** Pure: mount options for a read-only overlay of the layers; null if one mount call cannot take them. */
export function overlayMountOptions(layers: readonly string[]): string | null {
  if (layers.some((l) => l === '' || /[:,]/.test(l))) return null;
  const opts = `ro,lowerdir=${layers.join(':')}`;
  return opts.length < 4000 ? opts : null; // the kernel reads mount options from one page
}

/**
 * Pure: GNU tar writing the tree at `dir` as docker export writes a container: top-level names
 * without "./", sorted in byte order, numeric owners (docker's names come from the image, the
 * host's would be wrong), mtimes in whole seconds (no PAX time records), file capabilities.
 * Mtimes later than `mtimeEpoch` (the commit date) become it, so what the build and docker's
 * per-container init layer created does not change the bytes: the same image, the same tar.
 */
export function rootfsTarArgv(dir: string, topLevel: readonly string[], exclude: readonly string[], mtimeEpoch: number): string[] {
  return [
    'tar', '--create', '--file=-', `--directory=${dir}`,
    '--format=pax', '--pax-option=delete=atime,delete=ctime,delete=mtime',
    '--numeric-owner', '--xattrs', '--xattrs-include=security.capability',
    `--mtime=@${Math.floor(mtimeEpoch)}`, '--clamp-mtime',
    '--sort=name', '--warning=no-file-ignored',
    '--anchored', '--no-wildcards', ...exclude.map((e) => `--exclude=${e}`),
    '--', ...topLevel,
  ];
}

/** Pure: byte-order sort (what GNU tar --sort=name and Go's filepath.Walk use). */
export function byteOrder(names: readonly string[]): string[] {
  return [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

/** The runtime leftovers (see leftovers.ts) in a mounted tree: /.dockerenv and /dev's device nodes. */
export function mountedLeftovers(dir: string): string[] {
  const out: string[] = [];
  if (existsSync(join(dir, '.dockerenv'))) out.push('.dockerenv');
  const dev = join(dir, 'dev');
  if (existsSync(dev)) {
    for (const name of byteOrder(readdirSync(dev))) {
      const st = lstatSync(join(dev, name));
      if (st.isCharacterDevice() || st.isBlockDevice()) out.push(`dev/${name}`);
    }
  }
  return out;
}

/** rmdir, never recursive: if the unmount failed, nothing is deleted through the mount. */
function removeEmptyDir(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // still mounted or not empty: leave it for the operator to see
  }
}

/** Unmount (lazily if busy, e.g. a killed tar still exiting) and remove the mount point. */
async function unmountDir(dir: string): Promise<void> {
  const u = await run(['umount', dir], { nothrow: true });
  if (u.code !== 0) await run(['umount', '--lazy', dir], { nothrow: true });
  removeEmptyDir(dir);
}

/**
 * Pure: mount points in /proc/self/mounts text that an export under `exportDir` left behind when
 * it was killed (SIGKILL; Ctrl-C unmounts): rootfs-<pid>-<id> whose pid is not alive.
 */
export function staleMounts(mounts: string, exportDir: string, alive: (pid: number) => boolean): string[] {
  const out: string[] = [];
  for (const line of mounts.split('\n')) {
    const point = line.split(' ')[1]?.replace(/\\040/g, ' ');
    if (!point?.startsWith(`${exportDir}/`)) continue;
    const m = /\/rootfs-(\d+)-[0-9a-f]+$/.exec(point);
    if (m && !alive(Number(m[1]))) out.push(point);
  }
  return out;
}

/** Unmount what killed exports left (read-only mounts pin the image's layer directories). */
async function sweepStaleMounts(exportDir: string): Promise<void> {
  for (const point of staleMounts(readFileSync('/proc/self/mounts', 'utf8'), exportDir, processAlive)) await unmountDir(point);
}

export interface MountedRootfs {
  dir: string;
  /** Docker's init layer of the container (its empty /etc/hostname, hosts, resolv.conf). */
  initLayer: string;
  /** Top-level names, byte order. */
  topLevel: string[];
  unmount(): Promise<void>;
}

/** Mount container `id`'s layers read-only; a reason string when that is not possible here. */
export async function mountContainer(id: string): Promise<MountedRootfs | string> {
  if (process.getuid?.() !== 0) return 'not root (mounting the layers needs root)';
  const driver = JSON.parse(await read(['docker', 'container', 'inspect', '--format', '{{json .GraphDriver}}', id])) as { Name?: string; Data?: Record<string, string> };
  const layers = overlayLayers(driver);
  if (!layers) return `docker's storage driver is ${driver.Name ?? 'unknown'}, not overlay2`;
  const initLayer = layers.find((l) => /-init\/diff$/.test(l));
  if (!initLayer || !existsSync(join(initLayer, 'etc', 'hostname'))) return 'the container has no docker init layer with /etc/hostname to export';
  const opts = overlayMountOptions(layers);
  if (!opts) return `the image has too many layers (${layers.length}) for one overlay mount`;
  const exportDir = join(config().stateDir, 'export');
  await sweepStaleMounts(exportDir);
  const dir = join(exportDir, `rootfs-${process.pid}-${id.slice(0, 12)}`);
  mkdirSync(dir, { recursive: true });
  const r = await run(['mount', '-t', 'overlay', 'overlay', '-o', opts, dir], { nothrow: true });
  if (r.code !== 0) {
    removeEmptyDir(dir);
    return `mount -t overlay failed: ${(r.stderr || r.stdout).trim().split('\n').pop()}`;
  }
  const drop = onCleanup(`unmount ${dir}`, () => unmountDir(dir));
  return { dir, initLayer, topLevel: byteOrder(readdirSync(dir)), unmount: drop };
}
