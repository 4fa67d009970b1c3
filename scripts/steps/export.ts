// Export in one pass: the container's tar (GNU tar over its mounted layers, or docker export) →
// LZ4 HC on all cores → file, with the md5 of the compressed bytes computed on the fly and the
// package list collected in parallel. No temporary full-size tar. Two compressors write the same bytes: one lz4 >= 1.10 process with -T<cores> (built by
// make setup; the default), or, without it, N distro lz4 processes whose blocks are reassembled
// into one frame here (compressParallel). Files are written under .partial names and renamed into place, the
// md5 last, so an interrupted run never leaves an md5 that matches a partial image.
import { createHash } from 'node:crypto';
import { createWriteStream, mkdirSync, renameSync, rmSync, statfsSync, writeFileSync, type WriteStream } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { PreconditionError, ToolError, UsageError } from '../lib/errors.ts';
import { onCleanup } from '../lib/cleanup.ts';
import { createContainer, exportContainer, removeContainer, removeOrphanContainers, runInImage, imageExists } from '../lib/docker.ts';
import { run, stream, type Streaming } from '../lib/shell.ts';
import { formatMd5File } from '../lib/md5file.ts';
import { Progress, formatBytes, info } from '../lib/log.ts';
import { compressParallel, type CompressResult } from '../export/parallel-lz4.ts';
import { compressThreaded } from '../export/threaded-lz4.ts';
import { findLz4Mt } from '../export/lz4-mt.ts';
import { containerLeftovers, tarDeleteArgv } from '../export/leftovers.ts';
import { mountContainer, mountedLeftovers, rootfsTarArgv } from '../export/rootfs.ts';

export const IMAGE_FILE = 'img.tar.lz4';
export const MD5_FILE = 'img.tar.lz4.md5';
export const PACKAGES_FILE = 'packages.txt';
export const DEFAULT_LEVEL = 5;

export interface ExportOptions {
  /** Compressor threads (or processes, for 'blocks'); default: one per core. */
  workers?: number;
  /**
   * LZ4 HC level (lz4 -<level>). Default 5, the lowest HC level whose output stays within 1% of
   * upstream's -9. On the Debian image's 904.6 MB tar (lz4 1.10, one thread, CPU seconds):
   * -9 386.93 MB 31.3 s, -6 388.63 MB (+0.44%) 16.8 s, -5 390.02 MB (+0.80%) 14.6 s,
   * -4 +1.39%. On 2 cores -6 missed the 2.5x goal against upstream's recipe (2.42x in make bench);
   * LZ4_LEVEL=6 trades that time for 0.36% less size, LZ4_LEVEL=9 reproduces `lz4 -9` byte for byte.
   */
  level?: number;
  contentChecksum?: boolean;
  /**
   * 'threads': one lz4 >= 1.10 process, -T<workers> (needs .state/bin/lz4-1.10 from make setup);
   * 'blocks': <workers> distro lz4 processes, blocks reassembled here. Default: threads when built.
   */
  compressor?: Compressor;
  /**
   * Where the tar comes from. 'mount': GNU tar over the container's layers mounted read-only (the
   * default when root and overlay2; see rootfs.ts); 'docker': docker export.
   */
  source?: TarSource;
  quiet?: boolean;
}

export const COMPRESSORS = ['threads', 'blocks'] as const;
export type Compressor = (typeof COMPRESSORS)[number];
export const TAR_SOURCES = ['mount', 'docker'] as const;
export type TarSource = (typeof TAR_SOURCES)[number];

export interface ExportResult {
  dir: string;
  image: string;
  md5: string;
  tarBytes: number;
  lz4Bytes: number;
  packages: number;
  seconds: number;
  /** What compressed, e.g. "lz4 1.10.0 -6 -T2" or "2 x lz4 1.9.4 -6 (block-parallel)". */
  compressor: string;
}

/** Pure: options from the environment's LZ4_LEVEL / EXPORT_WORKERS / EXPORT_COMPRESSOR. */
export function exportOptionsFromEnv(env: { LZ4_LEVEL?: string; EXPORT_WORKERS?: string; EXPORT_COMPRESSOR?: string; EXPORT_SOURCE?: string }): ExportOptions {
  const out: ExportOptions = {};
  if (env.LZ4_LEVEL !== undefined) {
    const l = Number(env.LZ4_LEVEL);
    if (!Number.isInteger(l) || l < 1 || l > 12) throw new UsageError(`LZ4_LEVEL=${env.LZ4_LEVEL} is not a level 1..12`, `unset LZ4_LEVEL (default ${DEFAULT_LEVEL}) or set 1..12`);
    out.level = l;
  }
  if (env.EXPORT_WORKERS !== undefined) {
    const w = Number(env.EXPORT_WORKERS);
    if (!Number.isInteger(w) || w < 1 || w > 256) throw new UsageError(`EXPORT_WORKERS=${env.EXPORT_WORKERS} is not a count 1..256`, 'unset EXPORT_WORKERS (default: one per core)');
    out.workers = w;
  }
  if (env.EXPORT_COMPRESSOR !== undefined && env.EXPORT_COMPRESSOR !== '') {
    const c = env.EXPORT_COMPRESSOR;
    if (!(COMPRESSORS as readonly string[]).includes(c)) throw new UsageError(`EXPORT_COMPRESSOR=${c} is not one of ${COMPRESSORS.join(', ')}`, 'unset EXPORT_COMPRESSOR (default: threads when make setup built lz4 1.10)');
    out.compressor = c as Compressor;
  }
  if (env.EXPORT_SOURCE !== undefined && env.EXPORT_SOURCE !== '') {
    const v = env.EXPORT_SOURCE;
    if (!(TAR_SOURCES as readonly string[]).includes(v)) throw new UsageError(`EXPORT_SOURCE=${v} is not one of ${TAR_SOURCES.join(', ')}`, 'unset EXPORT_SOURCE (default: mount when root and overlay2, else docker)');
    out.source = v as TarSource;
  }
  return out;
}

/** Pure: installed packages in `dpkg -l` output (lines "ii ...") or `rpm -qa` output (one per line). */
export function countPackages(text: string): number {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const dpkg = lines.filter((l) => /^ii\s/.test(l)).length;
  return dpkg > 0 ? dpkg : lines.filter((l) => !/\s/.test(l.trim())).length;
}

function writeTo(ws: WriteStream, b: Buffer): Promise<void> | void {
  if (!ws.write(b)) return new Promise((resolve, reject) => {
    const onErr = (e: Error): void => reject(e);
    ws.once('error', onErr);
    ws.once('drain', () => {
      ws.off('error', onErr);
      resolve();
    });
  });
}

async function closeStream(ws: WriteStream): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    ws.once('error', reject);
    ws.end(() => resolve());
  });
}

/** Fail early when the disk obviously cannot hold the result (a compressed image ≈ half its size). */
async function checkFreeSpace(dir: string, ref: string): Promise<void> {
  const size = Number((await run(['docker', 'image', 'inspect', '--format', '{{.Size}}', ref])).stdout.trim());
  const fs = statfsSync(dir);
  const free = fs.bavail * fs.bsize;
  const need = Math.ceil(size * 0.6) + 64 * 1024 * 1024;
  if (free < need) {
    throw new PreconditionError(`not enough disk space in ${dir}: ${formatBytes(free)} free, about ${formatBytes(need)} needed`, 'free disk space (df -h; docker system prune) and re-run');
  }
}

export interface ChosenCompressor {
  kind: Compressor;
  /** lz4 >= 1.10 for 'threads'. */
  bin: string | null;
  label: string;
}

/** The 'threads' compressor when lz4 >= 1.10 is built (or 'blocks' is asked for), else 'blocks'. */
export async function chooseCompressor(opts: ExportOptions, level: number, workers: number): Promise<ChosenCompressor> {
  const mt = opts.compressor === 'blocks' ? null : await findLz4Mt();
  if (mt) return { kind: 'threads', bin: mt.path, label: `lz4 ${mt.version} -${level} -T${workers}` };
  if (opts.compressor === 'threads') throw new PreconditionError('EXPORT_COMPRESSOR=threads needs lz4 >= 1.10, and .state/bin/lz4-1.10 is not built', 'run make setup (it builds lz4 1.10 from Debian trixie\'s source package), or unset EXPORT_COMPRESSOR');
  const distro = (await run(['lz4', '-V'], { nothrow: true })).stdout;
  const version = /v(\d+\.\d+\.\d+)/.exec(distro)?.[1] ?? '?';
  if (!opts.compressor && !opts.quiet) info('export: lz4 >= 1.10 is not built (make setup builds it); compressing block-parallel with the distro lz4 instead: same bytes, more CPU');
  return { kind: 'blocks', bin: null, label: `${workers} x lz4 ${version} -${level} (block-parallel)` };
}

/**
 * Wait for every stage of a process chain; on the first failure stop the others, so the chain
 * never waits on a stage whose partner died. The error reported is the cause, not the echo: a
 * stage killed by SIGPIPE only lost its reader, so another stage's failure is preferred.
 */
export async function settleChain(stages: readonly Promise<unknown>[], stopAll: () => void): Promise<void> {
  for (const s of stages) s.catch(stopAll);
  const settled = await Promise.allSettled(stages);
  const errors = settled.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  if (errors.length > 0) throw pickCause(errors);
}

/**
 * Pure: among the failures of a chain's stages, listed upstream first, the cause: the first one
 * that is not just the echo of another (killed by SIGPIPE, or by our SIGTERM after a failure).
 */
export function pickCause(errors: readonly unknown[]): unknown {
  const echo = (e: unknown): boolean => e instanceof ToolError && (e.signal === 'SIGPIPE' || e.signal === 'SIGTERM');
  return errors.find((e) => !echo(e)) ?? errors[0];
}

const GNU_TAR_HINT = 'tar must be GNU tar (apt-get install tar)';

export interface ContainerCompressOptions {
  level: number;
  workers: number;
  contentChecksum: boolean;
  compressor: ChosenCompressor;
  /** Every piece of the frame, in order; awaited (backpressure). */
  write: (buf: Buffer) => Promise<void> | void;
  onProgress?: (tarBytes: number) => void;
  /** Called once the whole tar has been read from the container (the compressor may still be working). */
  onExported?: () => void;
  /** Where a one-line notice goes (e.g. why the mount could not be used). */
  onNote?: (line: string) => void;
  /** See ExportOptions.source; default: mount when possible. */
  source?: TarSource;
}

/**
 * A container's filesystem as one LZ4 frame: `tar --create <mounted layers> | lz4 -T<n>` (or, see
 * rootfs.ts, `docker export <id> | tar --delete <leftovers> | lz4 -T<n>`), wired process to
 * process, so node only sees the compressed bytes. With the 'blocks' compressor node reads the
 * tar and feeds N distro lz4 processes instead.
 */
export async function compressContainer(id: string, opts: ContainerCompressOptions): Promise<CompressResult & { leftovers: string[]; source: string }> {
  // /.dockerenv would make systemd on the machine believe it runs in a container; /dev nodes are
  // shadowed by devtmpfs at boot (see leftovers.ts).
  const mounted = opts.source === 'docker' ? 'EXPORT_SOURCE=docker' : await mountContainer(id);
  if (typeof mounted === 'string' && opts.source === 'mount') throw new PreconditionError(`EXPORT_SOURCE=mount, but ${mounted}`, 'run as root with docker\'s overlay2 driver, or unset EXPORT_SOURCE');
  if (typeof mounted === 'string' && opts.source !== 'docker') opts.onNote?.(`tar from docker export: ${mounted}`);
  let leftovers: string[];
  let source: string;
  const stages: Streaming[] = [];
  if (typeof mounted !== 'string') {
    leftovers = mountedLeftovers(mounted.dir);
    source = 'GNU tar of the mounted layers';
    stages.push(stream(rootfsTarArgv(mounted.dir, mounted.topLevel, leftovers), { env: { LC_ALL: 'C' }, hint: GNU_TAR_HINT }));
  } else {
    leftovers = await containerLeftovers(id);
    source = 'docker export';
    const exporter = exportContainer(id);
    stages.push(exporter);
    if (leftovers.length > 0) stages.push(stream(tarDeleteArgv(leftovers), { stdin: exporter.stdout, hint: GNU_TAR_HINT }));
  }
  const tar = stages[stages.length - 1]!.stdout;
  // The source is finished once its first stage is: unmount, then let the caller remove the container.
  const sourceDone = stages[0]!.done.then(async () => {
    if (typeof mounted !== 'string') await mounted.unmount();
    opts.onExported?.();
  });
  const killAll = (): void => {
    for (const st of stages) st.kill();
    tar.destroy();
  };
  const { compressor, workers, onExported: _, onNote: __, ...rest } = opts;
  const compressing = compressor.bin ? compressThreaded(tar, { ...rest, threads: workers, bin: compressor.bin }) : compressParallel(tar, { ...rest, workers });
  try {
    await settleChain([...stages.map((st) => st.done), sourceDone, compressing], killAll);
  } catch (e) {
    killAll();
    if (typeof mounted !== 'string') await mounted.unmount();
    throw e;
  }
  return { ...(await compressing), leftovers, source };
}

export async function exportImage(ref: string, packagesCommand: readonly string[], dir: string, opts: ExportOptions = {}): Promise<ExportResult> {
  if (!(await imageExists(ref))) throw new PreconditionError(`image ${ref} is not built`, `build it first, e.g. make ${ref.split('/')[1]?.split(':')[0] ?? '<os>'}`);
  mkdirSync(dir, { recursive: true });
  await checkFreeSpace(dir, ref);
  const t0 = performance.now();
  const level = opts.level ?? DEFAULT_LEVEL;
  const workers = opts.workers ?? availableParallelism();
  const compressor = await chooseCompressor(opts, level, workers);
  const final = { image: join(dir, IMAGE_FILE), md5: join(dir, MD5_FILE), packages: join(dir, PACKAGES_FILE) };
  const partial = { image: `${final.image}.partial`, md5: `${final.md5}.partial`, packages: `${final.packages}.partial` };
  // The old md5 goes first: from here until the new one lands, the directory is visibly incomplete.
  rmSync(final.md5, { force: true });
  const dropPartials = onCleanup('remove partial export files', () => {
    for (const p of Object.values(partial)) rmSync(p, { force: true });
  });

  await removeOrphanContainers();
  const id = await createContainer(ref);
  const dropContainer = onCleanup(`remove container ${id.slice(0, 12)}`, () => removeContainer(id));
  // Removed as soon as docker has streamed it, while lz4 finishes: docker rm takes ~0.4 s.
  let removal: Promise<void> | null = null;

  const packagesJob = runInImage(ref, packagesCommand).then((text) => {
    writeFileSync(partial.packages, text);
    return countPackages(text);
  });
  packagesJob.catch(() => {}); // awaited below; a failed compression must not leave it unobserved

  const md5 = createHash('md5');
  const out = createWriteStream(partial.image);
  const progress = opts.quiet ? null : new Progress(`export ${ref}`);
  let result;
  try {
    result = await compressContainer(id, {
      level,
      workers,
      contentChecksum: opts.contentChecksum ?? true,
      compressor,
      write: (b: Buffer) => {
        md5.update(b);
        return writeTo(out, b);
      },
      onProgress: (n: number) => progress?.update(n),
      onExported: () => (removal = dropContainer()),
      onNote: (line) => (opts.quiet ? undefined : info(`export: ${line}`)),
      source: opts.source,
    });
    await closeStream(out);
  } catch (e) {
    out.destroy();
    throw e;
  }
  progress?.done(result.inBytes);
  const packages = await packagesJob;
  await (removal ?? dropContainer());

  const hex = md5.digest('hex');
  writeFileSync(partial.md5, formatMd5File(hex, IMAGE_FILE));
  renameSync(partial.image, final.image);
  renameSync(partial.packages, final.packages);
  renameSync(partial.md5, final.md5); // last: the set is complete only now
  await dropPartials();
  const seconds = (performance.now() - t0) / 1000;
  if (!opts.quiet) {
    if (result.leftovers.length) info(`left out of the tar (container runtime leftovers): ${result.leftovers.map((p) => `/${p}`).join(' ')}`);
    info(`${final.image}: ${formatBytes(result.outBytes)} (tar ${formatBytes(result.inBytes)}, ratio ${(result.inBytes / result.outBytes).toFixed(2)}, ${result.source}, ${compressor.label}), md5 ${hex}, ${packages} packages`);
  }
  return { dir, image: final.image, md5: hex, tarBytes: result.inBytes, lz4Bytes: result.outBytes, packages, seconds, compressor: `${result.source}, ${compressor.label}` };
}
