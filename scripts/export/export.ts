// Export in one pass: the container's tar (tar-source.ts) → ONE lz4 >= 1.10 process with
// -T<cores> → a new artifact set, with the md5 of the compressed bytes computed on the fly and the
// package list collected in parallel. No temporary full-size tar.
//
// Consistency: the set is written into a hidden sibling directory and swapped in only when the md5
// is written (lib/artifacts.ts); one export per artifact set at a time (a lock); the container is
// labelled with its owner, and the sweep of killed runs' containers touches only provable orphans.
import { createHash } from 'node:crypto';
import { createWriteStream, mkdirSync, statfsSync, writeFileSync, type WriteStream } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { IMAGE_FILE, MD5_FILE, PACKAGES_FILE, beginArtifactSet, sweepInFlight } from '../lib/artifacts.ts';
import { onCleanup } from '../lib/cleanup.ts';
import { config } from '../lib/config.ts';
import { createContainer, imageExists, imageLabels, removeContainer, removeOrphanContainers, runInImage } from '../lib/docker.ts';
import { PreconditionError, ToolError, UsageError } from '../lib/errors.ts';
import { acquireLock } from '../lib/lock.ts';
import { Progress, formatBytes, info } from '../lib/log.ts';
import { formatMd5File } from '../lib/md5file.ts';
import { run } from '../lib/shell.ts';
import { findLz4Mt } from './lz4-mt.ts';
import { openTarSource, TAR_SOURCES, type TarSourceKind } from './tar-source.ts';
import { compressThreaded } from './threaded-lz4.ts';
import { writeSbom, type SbomSummary } from './sbom.ts';
import { ensureGoTool } from '../lib/setup.ts';

export const DEFAULT_LEVEL = 5;

export interface ExportOptions {
  /** lz4 threads; default: one per core. */
  workers?: number;
  /**
   * LZ4 HC level (lz4 -<level>). Default 5, the lowest HC level whose output stays within 1% of
   * upstream's -9 (904.6 MB Debian tar, lz4 1.10, one thread: -9 386.93 MB 31.3 CPU-s, -6 +0.44%
   * 16.8 s, -5 +0.80% 14.6 s, -4 +1.39%). LZ4_LEVEL=9 reproduces `lz4 -9` byte for byte.
   */
  level?: number;
  contentChecksum?: boolean;
  /** See tar-source.ts; default: mount where possible. */
  source?: TarSourceKind;
  quiet?: boolean;
  /** make bench only: no SBOM (its figures compare the export with upstream's recipe, which has none). */
  withoutSbom?: boolean;
  /** The SBOM's document name and version (default: the image reference's). */
  sbomName?: { name: string; version: string };
  /** Written into the new set before it is swapped in (the build record). */
  beforeCommit?: (dir: string, result: ExportResult) => void;
}

export interface ExportResult {
  /** The artifact set's directory (after the swap). */
  dir: string;
  image: string;
  md5: string;
  tarBytes: number;
  lz4Bytes: number;
  packages: number;
  seconds: number;
  level: number;
  /** e.g. "lz4 1.10.0 -5 -T2". */
  compressor: string;
  /** e.g. "GNU tar of the mounted layers". */
  source: string;
  /** The mtimes of the tar are clamped to this (seconds since the epoch), with the mount source. */
  mtimeEpoch: number;
  /** The SPDX SBOM beside the image (sbom.ts); null only with withoutSbom. */
  sbom: SbomSummary | null;
}

/** Pure: options from the environment's LZ4_LEVEL / EXPORT_WORKERS / EXPORT_SOURCE. */
export function exportOptionsFromEnv(env: { LZ4_LEVEL?: string; EXPORT_WORKERS?: string; EXPORT_SOURCE?: string }): ExportOptions {
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
  if (env.EXPORT_SOURCE !== undefined && env.EXPORT_SOURCE !== '') {
    const v = env.EXPORT_SOURCE;
    if (!(TAR_SOURCES as readonly string[]).includes(v)) throw new UsageError(`EXPORT_SOURCE=${v} is not one of ${TAR_SOURCES.join(', ')}`, 'unset EXPORT_SOURCE (default: mount when root and overlay2, else docker)');
    out.source = v as TarSourceKind;
  }
  return out;
}

/** Pure: installed packages in `dpkg -l` output (lines "ii ...") or `rpm -qa` output (one per line). */
export function countPackages(text: string): number {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const dpkg = lines.filter((l) => /^ii\s/.test(l)).length;
  return dpkg > 0 ? dpkg : lines.filter((l) => !/\s/.test(l.trim())).length;
}

/**
 * Pure: the mtime the tar is clamped to: the image's build date (its org.opencontainers.image.created
 * label, the commit's date), else when docker created it. The same image thus exports to the same bytes.
 */
export function mtimeEpochOf(labels: Record<string, string>, created: string): number {
  const t = Date.parse(labels['org.opencontainers.image.created'] ?? '') || Date.parse(created);
  if (!Number.isFinite(t)) throw new UsageError(`the image has no usable creation date (${created})`, 'rebuild it with make <os>');
  return Math.floor(t / 1000);
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
    throw new PreconditionError(
      `not enough disk space in ${dir}: ${formatBytes(free)} free, about ${formatBytes(need)} needed`,
      `free space on that file system (df -h ${dir}: old artifact sets under images/, .state/, this project's own images in docker images 'metal-images/*') and re-run`,
    );
  }
}

/** lz4 >= 1.10 with threads, which make setup builds; the export needs it. */
export async function requireLz4Mt(): Promise<{ path: string; version: string }> {
  const mt = await findLz4Mt();
  if (!mt) throw new PreconditionError('the export needs lz4 >= 1.10 (multithreaded), and .state/bin/lz4-1.10 is not built', 'run make setup (it builds lz4 1.10 from Debian trixie\'s source package)');
  return mt;
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

/** Export image `ref` into the artifact set at `finalDir` (replaced only when the new one is complete). */
export async function exportImage(ref: string, packagesCommand: readonly string[], finalDir: string, opts: ExportOptions = {}): Promise<ExportResult> {
  if (!(await imageExists(ref))) throw new PreconditionError(`image ${ref} is not built`, `build it first, e.g. make ${ref.split('/')[1]?.split(':')[0] ?? '<os>'}`);
  const lz4 = await requireLz4Mt();
  if (!opts.withoutSbom) await ensureGoTool('syft'); // the SBOM's writer, built on first use: before anything is written
  mkdirSync(finalDir, { recursive: true });
  await checkFreeSpace(finalDir, ref);
  const lock = acquireLock(join(config().stateDir, 'locks', `export-${finalDir.replace(/[^A-Za-z0-9.-]+/g, '_')}.lock`), `an export of ${finalDir}`);
  try {
    return await exportLocked(ref, packagesCommand, finalDir, opts, lz4);
  } finally {
    await lock.release();
  }
}

async function exportLocked(ref: string, packagesCommand: readonly string[], finalDir: string, opts: ExportOptions, lz4: { path: string; version: string }): Promise<ExportResult> {
  const t0 = performance.now();
  const level = opts.level ?? DEFAULT_LEVEL;
  const workers = opts.workers ?? availableParallelism();
  const compressor = `lz4 ${lz4.version} -${level} -T${workers}`;
  const created = (await run(['docker', 'image', 'inspect', '--format', '{{.Created}}', ref])).stdout.trim();
  const mtimeEpoch = mtimeEpochOf(await imageLabels(ref), created);

  for (const d of sweepInFlight(finalDir)) info(`export: removed what a killed export left: ${d}`);
  await removeOrphanContainers();
  const set = beginArtifactSet(finalDir);
  const id = await createContainer(ref);
  const dropContainer = onCleanup(`remove container ${id.slice(0, 12)}`, () => removeContainer(id));
  try {
    const packagesJob = runInImage(ref, packagesCommand).then((text) => {
      writeFileSync(join(set.dir, PACKAGES_FILE), text);
      return text;
    });
    packagesJob.catch(() => {}); // awaited below; a failed compression must not leave it unobserved
    const [sbomName, sbomVersion] = opts.sbomName ? [opts.sbomName.name, opts.sbomName.version] : (ref.split(':') as [string, string]);
    const side: { sbom?: Promise<SbomSummary> } = {};

    const source = await openTarSource(id, {
      want: opts.source,
      mtimeEpoch,
      onNote: (l) => (opts.quiet ? undefined : info(`export: ${l}`)),
      // the SBOM of the tree the tar reads, while it reads it (the packages first: it is checked against them)
      alongside: opts.withoutSbom ? undefined : (tree, exclude) => (side.sbom = packagesJob.then((text) => writeSbom(set.dir, { kind: 'dir', dir: tree, exclude }, text, sbomName, sbomVersion ?? ''))),
    });
    const md5 = createHash('md5');
    const out = createWriteStream(join(set.dir, IMAGE_FILE));
    const progress = opts.quiet ? null : new Progress(`export ${ref}`);
    const killAll = (): void => {
      for (const st of source.stages) st.kill();
      source.stdout.destroy();
    };
    const compressing = compressThreaded(source.stdout, {
      bin: lz4.path,
      level,
      threads: workers,
      contentChecksum: opts.contentChecksum ?? true,
      write: (b: Buffer) => {
        md5.update(b);
        return writeTo(out, b);
      },
      onProgress: (n: number) => progress?.update(n),
    });
    let result;
    try {
      await settleChain([...source.stages.map((s) => s.done), source.read, compressing], killAll);
      result = await compressing;
      await source.verify();
      await closeStream(out);
    } catch (e) {
      killAll();
      out.on('error', () => {}); // a write already queued by the compressor must not crash the process now
      out.destroy();
      // a tree that changed under its readers makes them fail in their own ways (syft then writes an
      // SPDX document without files): the change is the cause
      const changed = source.kind === 'mount' ? await source.verify().then(() => null, (v: unknown) => v) : null;
      throw changed ?? e;
    } finally {
      await source.close();
    }
    progress?.done(result.inBytes);
    const packagesText = await packagesJob;
    const packages = countPackages(packagesText);
    await dropContainer();
    // docker export has no tree to read: syft reads the archive just written
    const sbomDone = opts.withoutSbom ? null : await (side.sbom ?? writeSbom(set.dir, { kind: 'file', path: join(set.dir, IMAGE_FILE) }, packagesText, sbomName, sbomVersion ?? ''));

    const hex = md5.digest('hex');
    const exported: ExportResult = {
      dir: finalDir,
      image: join(finalDir, IMAGE_FILE),
      md5: hex,
      tarBytes: result.inBytes,
      lz4Bytes: result.outBytes,
      packages,
      seconds: (performance.now() - t0) / 1000,
      level,
      compressor,
      source: source.describe,
      mtimeEpoch,
      sbom: sbomDone,
    };
    opts.beforeCommit?.(set.dir, exported);
    writeFileSync(join(set.dir, MD5_FILE), formatMd5File(hex, IMAGE_FILE)); // last: the set is complete only now
    await set.commit();
    if (!opts.quiet) {
      if (source.leftovers.length) info(`left out of the tar (container runtime leftovers): ${source.leftovers.map((p) => `/${p}`).join(' ')}`);
      info(`${exported.image}: ${formatBytes(result.outBytes)} (tar ${formatBytes(result.inBytes)}, ratio ${(result.inBytes / result.outBytes).toFixed(2)}, ${source.describe}, ${compressor}), md5 ${hex}, ${packages} packages${sbomDone ? `; SBOM ${sbomDone.file}: ${sbomDone.packages} packages, ${sbomDone.files} files (${sbomDone.tool})` : ''}`);
    }
    return exported;
  } catch (e) {
    await dropContainer();
    await set.discard();
    throw e;
  }
}
