// lz4 >= 1.10 (multithreaded, -T), built from Debian trixie's source package into
// .state/bin/lz4-1.10. `make setup` builds it once: the export compresses with it (one process,
// -T<cores>), and the benchmark uses it for its multithreaded baseline. The host's lz4 (bookworm:
// 1.9.4, single-threaded) stays untouched, and so does the host's apt configuration: the source is
// fetched with a private sources.list, list directory and cache under .state/apt-trixie/.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { config } from '../lib/config.ts';
import { onCleanup } from '../lib/cleanup.ts';
import { PreconditionError } from '../lib/errors.ts';
import { info } from '../lib/log.ts';
import { read, run, which } from '../lib/shell.ts';

export const LZ4_MT_SUITE = 'trixie';
export const LZ4_MT_NAME = 'lz4-1.10';
const DEFAULT_MIRROR = 'http://deb.debian.org/debian';

/** Pure: apt-get options that point every file apt reads or writes at `dir` (besides the keyrings). */
export function privateAptOptions(dir: string): string[] {
  const o = (k: string, v: string): string[] => ['-o', `${k}=${v}`];
  return [
    ...o('Dir::Etc::SourceList', join(dir, 'sources.list')),
    ...o('Dir::Etc::SourceParts', '/dev/null'),
    ...o('Dir::State::Lists', join(dir, 'lists')),
    ...o('Dir::Cache', join(dir, 'cache')),
    // apt would otherwise drop to the _apt user, who cannot write into .state/ (a warning only).
    ...o('APT::Sandbox::User', 'root'),
  ];
}

/** Pure: the Debian version (epoch-less) of a source package's .dsc file name, e.g. lz4_1.10.0-4.dsc. */
export function dscVersion(fileName: string): string | null {
  return /^lz4_([0-9][A-Za-z0-9.+~-]*)\.dsc$/.exec(fileName)?.[1] ?? null;
}

/** Pure: the version `lz4 -V` reports, and whether it was built with threads. */
export function parseLz4Version(banner: string): { version: string; multithread: boolean } | null {
  const m = /\blz4 v(\d+\.\d+\.\d+)\b(.*)/.exec(banner);
  return m ? { version: m[1]!, multithread: /\bmultithread\b/.test(m[2]!) } : null;
}

/** Pure: is an lz4 version at least 1.10 (the first release with -T)? */
export function hasThreads(version: string): boolean {
  const [maj = 0, min = 0] = version.split('.').map(Number);
  return maj > 1 || (maj === 1 && min >= 10);
}

export interface Lz4Mt {
  path: string;
  /** Version the binary reports, e.g. 1.10.0. */
  version: string;
  /** Debian source package version it was built from, e.g. 1.10.0-4. */
  debianVersion: string;
}

async function probe(path: string): Promise<{ version: string; multithread: boolean } | null> {
  if (!existsSync(path)) return null;
  const r = await run([path, '-V'], { nothrow: true });
  return r.code === 0 ? parseLz4Version(r.stdout + r.stderr) : null;
}

/** The built binary if it is there and sound (runs, says multithread, has its stamp); never builds. */
export async function findLz4Mt(): Promise<Lz4Mt | null> {
  const bin = join(config().binDir, LZ4_MT_NAME);
  const stamp = `${bin}.stamp`;
  const have = await probe(bin);
  if (!have || !have.multithread || !hasThreads(have.version) || !existsSync(stamp)) return null;
  return { path: bin, version: have.version, debianVersion: readFileSync(stamp, 'utf8').trim() };
}

/**
 * `.state/bin/lz4-1.10`, built once. The stamp file next to it holds the Debian version it was
 * built from; a binary that exists, runs, says multithread and matches its stamp is reused without
 * touching the network.
 */
export async function ensureLz4Mt(): Promise<Lz4Mt> {
  const found = await findLz4Mt();
  if (found) return found;
  const { binDir, stateDir, env } = config();
  const bin = join(binDir, LZ4_MT_NAME);
  const stamp = `${bin}.stamp`;

  for (const [tool, pkg] of [['apt-get', 'apt'], ['dpkg-source', 'dpkg-dev'], ['make', 'make'], ['gcc', 'gcc']] as const) {
    if (!(await which(tool))) throw new PreconditionError(`${tool} is needed to build lz4 >= 1.10`, `apt-get install ${pkg} (or run make setup)`);
  }
  const mirror = (env.DEBIAN_MIRROR ?? DEFAULT_MIRROR).replace(/\/$/, '');
  const aptDir = join(stateDir, `apt-${LZ4_MT_SUITE}`);
  mkdirSync(join(aptDir, 'lists', 'partial'), { recursive: true });
  mkdirSync(join(aptDir, 'cache', 'archives', 'partial'), { recursive: true });
  writeFileSync(join(aptDir, 'sources.list'), `deb-src ${mirror} ${LZ4_MT_SUITE} main\n`);
  const apt = privateAptOptions(aptDir);
  const hint = `check that ${mirror} serves ${LZ4_MT_SUITE} sources (deb-src), or set DEBIAN_MIRROR`;

  info(`building ${LZ4_MT_NAME} from Debian ${LZ4_MT_SUITE}'s lz4 source package (once; the host's lz4 is not touched)`);
  const work = join(stateDir, 'tmp', `lz4-src-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const dropWork = onCleanup(`remove ${work}`, () => rmSync(work, { recursive: true, force: true }));

  await run(['apt-get', ...apt, '-q', 'update'], { hint });
  // apt checks the downloaded files against the signed Sources index, so the .dsc needs no
  // separate signature check (dpkg-source would want debian-keyring for that).
  await run(['apt-get', ...apt, '-q', 'source', '--download-only', `lz4/${LZ4_MT_SUITE}`], { cwd: work, hint });
  const dsc = readdirSync(work).find((f) => dscVersion(f) !== null);
  const debianVersion = dsc ? dscVersion(dsc)! : null;
  if (!dsc || !debianVersion) throw new PreconditionError(`apt-get source lz4/${LZ4_MT_SUITE} left no lz4_*.dsc in ${work}`, hint);
  if (!hasThreads(debianVersion)) throw new PreconditionError(`Debian ${LZ4_MT_SUITE} has lz4 ${debianVersion}, older than 1.10 (no -T)`, 'set DEBIAN_MIRROR to a mirror with a newer trixie');
  const src = join(work, 'src');
  await run(['dpkg-source', '--no-check', '-x', dsc, src], { cwd: work });
  // The CLI alone, with the upstream Makefile (which detects pthreads and enables -T). Debian's
  // use-system-xxhash patch only touches the CMake build, so the bundled xxhash is used here.
  await run(['make', '-C', src, '-j2', 'lz4'], { hint: `see the compiler output above; the sources are in ${src}` });

  const built = await probe(join(src, 'lz4'));
  if (!built || !built.multithread || !hasThreads(built.version)) {
    throw new PreconditionError(`the lz4 built from ${dsc} reports ${built ? `v${built.version}${built.multithread ? '' : ' without multithread'}` : 'nothing'}`, `look at ${src}`);
  }
  mkdirSync(binDir, { recursive: true });
  copyFileSync(join(src, 'programs', 'lz4'), `${bin}.tmp`);
  renameSync(`${bin}.tmp`, bin);
  writeFileSync(stamp, `${debianVersion}\n`);
  await dropWork();
  const banner = await read([bin, '-V']);
  info(`built ${bin}: ${banner.replace(/\*/g, '').trim()}`);
  return { path: bin, version: built.version, debianVersion };
}
