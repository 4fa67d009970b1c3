// Export in one pass: docker export → block-parallel LZ4 HC (all cores) → file, with the md5 of
// the compressed bytes computed on the fly and the package list collected in parallel. No
// temporary full-size tar. Files are written under .partial names and renamed into place, the
// md5 last, so an interrupted run never leaves an md5 that matches a partial image.
import { createHash } from 'node:crypto';
import { createWriteStream, mkdirSync, renameSync, rmSync, statfsSync, writeFileSync, type WriteStream } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { PreconditionError, UsageError } from '../lib/errors.ts';
import { onCleanup } from '../lib/cleanup.ts';
import { createContainer, exportContainer, removeContainer, runInImage, imageExists } from '../lib/docker.ts';
import { run } from '../lib/shell.ts';
import { formatMd5File } from '../lib/md5file.ts';
import { Progress, formatBytes, info } from '../lib/log.ts';
import { compressParallel } from '../export/parallel-lz4.ts';
import { TarEntryFilter, RUNTIME_LEFTOVERS } from '../export/tar-filter.ts';

export const IMAGE_FILE = 'img.tar.lz4';
export const MD5_FILE = 'img.tar.lz4.md5';
export const PACKAGES_FILE = 'packages.txt';
export const DEFAULT_LEVEL = 6;

export interface ExportOptions {
  /** Compressor processes; default: one per core. */
  workers?: number;
  /**
   * LZ4 HC level (lz4 -<level>). Default 6: on the Debian image it costs about half the CPU of
   * upstream's -9 for output under 0.5% larger (measured: -9 444.40 MB, -6 446.48 MB, -5 448.14 MB
   * on a 1071 MB tar). LZ4_LEVEL=9 reproduces `lz4 -9` byte for byte.
   */
  level?: number;
  contentChecksum?: boolean;
  quiet?: boolean;
}

export interface ExportResult {
  dir: string;
  image: string;
  md5: string;
  tarBytes: number;
  lz4Bytes: number;
  packages: number;
  seconds: number;
}

/** Pure: options from the environment's LZ4_LEVEL / EXPORT_WORKERS. */
export function exportOptionsFromEnv(env: { LZ4_LEVEL?: string; EXPORT_WORKERS?: string }): ExportOptions {
  const out: ExportOptions = {};
  if (env.LZ4_LEVEL !== undefined) {
    const l = Number(env.LZ4_LEVEL);
    if (!Number.isInteger(l) || l < 1 || l > 12) throw new UsageError(`LZ4_LEVEL=${env.LZ4_LEVEL} is not a level 1..12`, 'unset LZ4_LEVEL (default 9) or set 1..12');
    out.level = l;
  }
  if (env.EXPORT_WORKERS !== undefined) {
    const w = Number(env.EXPORT_WORKERS);
    if (!Number.isInteger(w) || w < 1 || w > 256) throw new UsageError(`EXPORT_WORKERS=${env.EXPORT_WORKERS} is not a count 1..256`, 'unset EXPORT_WORKERS (default: one per core)');
    out.workers = w;
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

export async function exportImage(ref: string, packagesCommand: readonly string[], dir: string, opts: ExportOptions = {}): Promise<ExportResult> {
  if (!(await imageExists(ref))) throw new PreconditionError(`image ${ref} is not built`, `build it first, e.g. make ${ref.split('/')[1]?.split(':')[0] ?? '<os>'}`);
  mkdirSync(dir, { recursive: true });
  await checkFreeSpace(dir, ref);
  const t0 = performance.now();
  const final = { image: join(dir, IMAGE_FILE), md5: join(dir, MD5_FILE), packages: join(dir, PACKAGES_FILE) };
  const partial = { image: `${final.image}.partial`, md5: `${final.md5}.partial`, packages: `${final.packages}.partial` };
  // The old md5 goes first: from here until the new one lands, the directory is visibly incomplete.
  rmSync(final.md5, { force: true });
  const dropPartials = onCleanup('remove partial export files', () => {
    for (const p of Object.values(partial)) rmSync(p, { force: true });
  });

  const id = await createContainer(ref);
  const dropContainer = onCleanup(`remove container ${id.slice(0, 12)}`, () => removeContainer(id));

  const packagesJob = runInImage(ref, packagesCommand).then((text) => {
    writeFileSync(partial.packages, text);
    return countPackages(text);
  });

  const md5 = createHash('md5');
  const out = createWriteStream(partial.image);
  const progress = opts.quiet ? null : new Progress(`export ${ref}`);
  const exporter = exportContainer(id);
  // /.dockerenv would make systemd on the machine believe it runs in a container; docker's /dev
  // nodes are shadowed by devtmpfs at boot.
  const filter = new TarEntryFilter(RUNTIME_LEFTOVERS, true);
  exporter.stdout.on('error', (e) => filter.destroy(e));
  exporter.stdout.pipe(filter);
  let result;
  try {
    result = await compressParallel(filter, {
      workers: opts.workers ?? availableParallelism(),
      level: opts.level ?? DEFAULT_LEVEL,
      contentChecksum: opts.contentChecksum ?? true,
      write: (b) => {
        md5.update(b);
        return writeTo(out, b);
      },
      onProgress: (n) => progress?.update(n),
    });
    await exporter.done;
    await closeStream(out);
  } catch (e) {
    exporter.kill();
    out.destroy();
    throw e;
  }
  progress?.done(result.inBytes);
  const packages = await packagesJob;
  await dropContainer();

  const hex = md5.digest('hex');
  writeFileSync(partial.md5, formatMd5File(hex, IMAGE_FILE));
  renameSync(partial.image, final.image);
  renameSync(partial.packages, final.packages);
  renameSync(partial.md5, final.md5); // last: the set is complete only now
  await dropPartials();
  const seconds = (performance.now() - t0) / 1000;
  if (!opts.quiet) {
    if (filter.dropped.length) info(`left out of the tar (container runtime leftovers): ${filter.dropped.join(' ')}`);
    info(`${final.image}: ${formatBytes(result.outBytes)} (tar ${formatBytes(result.inBytes)}, ratio ${(result.inBytes / result.outBytes).toFixed(2)}), md5 ${hex}, ${packages} packages`);
  }
  return { dir, image: final.image, md5: hex, tarBytes: result.inBytes, lz4Bytes: result.outBytes, packages, seconds };
}
