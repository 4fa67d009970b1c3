// What the container runtime adds to an exported container that must not reach a machine:
// - /.dockerenv, an empty file docker puts into every container. systemd-detect-virt takes it as
//   proof of running in a docker container, so on a real machine units with
//   ConditionVirtualization=!container (systemd-timesyncd among them) would silently not start.
// - device nodes under /dev (from the bootstrapped base and docker's init layer). At boot /dev is a
//   devtmpfs, and the hammer's untar would write them as empty regular files anyway.
//
// They are found per container, from two small `docker cp` tars (/.dockerenv and /dev), and cut
// out of the export stream by `tar --delete`: GNU tar copies every other record unchanged, at C
// speed, so the image's bytes go from docker to lz4 without passing through node.
import { run, stream } from '../lib/shell.ts';
import { TarReader, type TarEntry } from '../lint/tar-stream.ts';

/** Pure: the device nodes among the entries of `docker cp <id>:/dev -`, as archive paths (dev/null). */
export function deviceNodes(entries: readonly Pick<TarEntry, 'path' | 'type'>[]): string[] {
  return entries
    .filter((e) => e.type === '3' || e.type === '4')
    .map((e) => e.path.replace(/^\.?\//, ''))
    .filter((p) => p.startsWith('dev/'));
}

/**
 * Pure: argv of the stream filter. GNU tar matches member names literally (--no-wildcards) and
 * writes the archive minus those members, every other header and body byte for byte.
 */
export function tarDeleteArgv(names: readonly string[]): string[] {
  return ['tar', '--delete', '--no-wildcards', '--file=-', '--', ...names];
}

/** The archive paths to cut out of this container's export (empty: nothing to filter). */
export async function containerLeftovers(id: string): Promise<string[]> {
  const entries: TarEntry[] = [];
  const reader = new TarReader({ onEntry: (e) => entries.push(e) });
  const dev = stream(['docker', 'cp', `${id}:/dev`, '-'], { hint: 'check `docker ps -a` and the daemon log' });
  dev.stdout.on('data', (d: Buffer) => reader.push(d));
  const [dockerenv] = await Promise.all([run(['docker', 'cp', `${id}:/.dockerenv`, '-'], { nothrow: true }), dev.done]);
  return [...(dockerenv.code === 0 ? ['.dockerenv'] : []), ...deviceNodes(entries)];
}
