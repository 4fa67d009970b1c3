// Where the export's tar comes from, chosen once per export:
//
//   mount   GNU tar over the container's overlay layers mounted read-only (rootfs.ts): the default
//           when root and docker's overlay2 driver; about 0.8 CPU-seconds for the Debian image.
//           Reproducible: entries in byte order, numeric owners, mtimes clamped to the build's
//           commit date (so docker's per-container init layer, created now, does not change the
//           md5), and it proves its source afterwards (the container and its init layer still
//           there: a container removed mid-export would leave the base layer's files in the tar).
//   docker  `docker export | tar --delete <leftovers>` (leftovers.ts): where the layers cannot be
//           mounted (not root, another storage driver), or EXPORT_SOURCE=docker. About 5 CPU-seconds
//           more, and not reproducible (docker writes the init layer's creation time).
//
// Either way the tar leaves out what the container runtime adds and a machine must not get:
// /.dockerenv and the device nodes under /dev.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { PreconditionError, ToolError } from '../lib/errors.ts';
import { containerExists, exportContainer } from '../lib/docker.ts';
import { stream, type Streaming } from '../lib/shell.ts';
import { containerLeftovers, tarDeleteArgv } from './leftovers.ts';
import { mountContainer, mountedLeftovers, rootfsTarArgv } from './rootfs.ts';

export const TAR_SOURCES = ['mount', 'docker'] as const;
export type TarSourceKind = (typeof TAR_SOURCES)[number];

export interface TarSource {
  kind: TarSourceKind;
  /** e.g. "GNU tar of the mounted layers". */
  describe: string;
  /** Paths left out, e.g. .dockerenv dev/null. */
  leftovers: string[];
  /** The tar, as the stdout of the last process (hand it to the next process, never read it here). */
  stdout: Readable;
  /** The processes, first to last. */
  stages: Streaming[];
  /** Resolves when the first stage (and `alongside`) is done reading the container. */
  read: Promise<void>;
  /** After the tar is complete: throws unless it provably came from the whole container. */
  verify(): Promise<void>;
  /** Undo the mount (idempotent). */
  close(): Promise<void>;
}

const GNU_TAR_HINT = 'tar must be GNU tar (apt-get install tar)';

export interface OpenOptions {
  /** Asked for by EXPORT_SOURCE; default: mount where possible. */
  want?: TarSourceKind;
  /** Clamp mtimes to this (seconds since the epoch): the build's commit date. */
  mtimeEpoch: number;
  /** Where a one-line notice goes (why the mount could not be used). */
  onNote?: (line: string) => void;
  /**
   * Run over the mounted tree while the tar reads it (the SBOM): given the tree and the paths the
   * tar leaves out. The mount stays until both are done, and `read` waits for it. Not called for
   * the docker source, which has no tree.
   */
  alongside?: (tree: string, exclude: readonly string[]) => Promise<unknown>;
}

/** Open the container's tar; the choice of source is made here, once. */
export async function openTarSource(id: string, o: OpenOptions): Promise<TarSource> {
  const mounted = o.want === 'docker' ? 'EXPORT_SOURCE=docker' : await mountContainer(id);
  if (typeof mounted !== 'string') {
    const leftovers = mountedLeftovers(mounted.dir);
    const tar = stream(rootfsTarArgv(mounted.dir, mounted.topLevel, leftovers, o.mtimeEpoch), { env: { LC_ALL: 'C' }, hint: GNU_TAR_HINT });
    const side = o.alongside?.(mounted.dir, leftovers);
    side?.catch(() => {}); // awaited in `read`
    const read = Promise.all([tar.done, side]).then(() => mounted.unmount());
    read.catch(() => {});
    return {
      kind: 'mount',
      describe: 'GNU tar of the mounted layers',
      leftovers,
      stdout: tar.stdout,
      stages: [tar],
      read,
      async verify() {
        // docker rm deletes the layer dirs under the mount: what tar read then is not the container
        const gone = !(await containerExists(id)) ? 'the container was removed' : !existsSync(join(mounted.initLayer, 'etc', 'hostname')) ? `its init layer ${mounted.initLayer} lost its files` : null;
        if (gone) {
          throw new PreconditionError(
            `the export's source changed while it was read: ${gone} (by another process: docker rm, a sweep of another checkout); the tar may hold the base layer's files instead of docker's init layer, so nothing was written`,
            'make sure nothing removes this run\'s containers (label io.metal-images.owner-*) and re-run the same make target',
          );
        }
      },
      close: () => mounted.unmount(),
    };
  }
  if (o.want === 'mount') throw new PreconditionError(`EXPORT_SOURCE=mount, but ${mounted}`, 'run as root with docker\'s overlay2 driver, or unset EXPORT_SOURCE');
  if (o.want !== 'docker') o.onNote?.(`tar from docker export (slower, not reproducible): ${mounted}`);
  const leftovers = await containerLeftovers(id);
  const exporter = exportContainer(id);
  const stages: Streaming[] = [exporter];
  if (leftovers.length > 0) stages.push(stream(tarDeleteArgv(leftovers), { stdin: exporter.stdout, hint: GNU_TAR_HINT }));
  return {
    kind: 'docker',
    describe: 'docker export',
    leftovers,
    stdout: stages[stages.length - 1]!.stdout,
    stages,
    read: exporter.done,
    async verify() {
      // GNU tar --delete exits 0 on some truncated archives: the exporter's status is the proof
      await exporter.done.catch((e: unknown) => {
        throw e instanceof ToolError ? e : new PreconditionError('docker export did not finish', 're-run the same make target');
      });
      if (!(await containerExists(id))) throw new PreconditionError('the container was removed during docker export; nothing was written', 're-run the same make target');
    },
    close: async () => {},
  };
}
