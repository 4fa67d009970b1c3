// `make bench OS=<os>`: on one already-built image, in one process, time upstream's export recipe
// (distro lz4 -9), the same recipe with a multithreaded lz4 1.10, and the project's export, each
// several times, round-robin so machine noise hits all of them alike. Every run is one child
// process whose whole tree is sampled for memory and CPU (see proc.ts).
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, statfsSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { config, ROOT } from '../lib/config.ts';
import { onCleanup } from '../lib/cleanup.ts';
import { createContainer, exportContainer, imageExists, dockerImageId, removeContainer } from '../lib/docker.ts';
import { MetalError, PreconditionError } from '../lib/errors.ts';
import { imageName, imageTag, type ImageDef } from '../lib/image-def.ts';
import { md5OfFile, parseMd5File } from '../lib/md5file.ts';
import { formatBytes, info } from '../lib/log.ts';
import { read, run, stream, which } from '../lib/shell.ts';
import { exportOptionsFromEnv, DEFAULT_LEVEL, type ExportResult } from '../export/export.ts';
import { IMAGE_FILE, MD5_FILE } from '../lib/artifacts.ts';
import { exportChildArgv, recipeArgv, threadFlag, type Candidate } from './candidates.ts';
import { ensureLz4Mt } from '../export/lz4-mt.ts';
import { machineTicks, processTree, TreeSampler } from './proc.ts';
import { goals, summarize, type CandidateSummary, type Goal, type RunSample } from './report.ts';

export interface BenchOptions {
  runs: number;
  candidates: Candidate[];
  /** Before each run, wait up to this many seconds for the rest of the machine to go idle. */
  idleWait: number;
}

/** Below this many busy cores (all processes, over one second) the machine counts as idle. */
export const IDLE_CORES = 0.15;

/** Wait until the machine is idle or `maxSeconds` passed; returns the seconds waited. */
async function waitIdle(maxSeconds: number, ticksPerSecond: number): Promise<number> {
  const t0 = performance.now();
  const waited = (): number => (performance.now() - t0) / 1000;
  while (waited() < maxSeconds) {
    const a = machineTicks().busy;
    await new Promise((r) => setTimeout(r, 1000));
    const busy = (machineTicks().busy - a) / ticksPerSecond;
    if (busy < IDLE_CORES) break;
  }
  return waited();
}

export interface BenchReport {
  os: string;
  image: string;
  dockerImageId: string;
  date: string;
  cores: number;
  loadBefore: number[];
  loadAfter: number[];
  runs: number;
  tarBytes: number;
  lz4: { distro: string; mt: string | null };
  export: { level: number; workers: number };
  /** What each export candidate compressed with (ExportResult.compressor), by candidate id. */
  compressors: Record<string, string>;
  candidates: (CandidateSummary & { label: string })[];
  samples: RunSample[];
  goals: Goal[];
  seconds: number;
}

/** Pure: the order of candidates in round r (rotated, so no candidate always runs first). */
export function roundOrder<T>(items: readonly T[], round: number): T[] {
  const k = items.length === 0 ? 0 : round % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

/** Pure: the tag the benchmark pins the measured image under, e.g. metal-images/bench:debian-12. */
export function benchTag(def: Pick<ImageDef, 'os' | 'version'>): string {
  return `metal-images/bench:${imageName(def)}`;
}

function killTree(pid: number | undefined): void {
  if (pid === undefined) return;
  for (const p of processTree(pid).reverse()) {
    try {
      process.kill(p, 'SIGTERM');
    } catch {
      // already gone
    }
  }
}

interface Tools {
  distroLz4: string;
  mtLz4: string | null;
  pageSize: number;
  ticks: number;
}

async function runOnce(c: Candidate, round: number, def: ImageDef, image: string, work: string, tools: Tools, cores: number): Promise<{ sample: RunSample; tarBytes: number | null; compressor: string | null }> {
  const dir = join(work, `${c.id}-${round}`);
  mkdirSync(dir, { recursive: true });
  const container = `metal-bench-${process.pid}-${c.id}-${round}`;
  const argv =
    c.kind === 'recipe'
      ? recipeArgv(c, { dir, image, container, lz4Path: c.lz4 === 'mt' ? tools.mtLz4! : tools.distroLz4, cores, packagesCommand: def.packages_command })
      : exportChildArgv(def.os, def.variant, image, dir);
  const dropContainer = c.kind === 'recipe' ? onCleanup(`remove container ${container}`, () => removeContainer(container)) : null;

  const m0 = machineTicks();
  const t0 = performance.now();
  const p = stream(argv, { cwd: ROOT, env: c.env, stdout: c.kind === 'export' ? 'pipe' : 'ignore', hint: `the ${c.id} candidate failed; re-run with METAL_DEBUG=1` });
  const dropKill = onCleanup(`stop the ${c.id} run`, () => killTree(p.child.pid));
  const sampler = p.child.pid === undefined ? null : new TreeSampler(p.child.pid, tools.pageSize, tools.ticks).start();
  let stdout = '';
  if (c.kind === 'export') p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  let usage = { peakTreeRss: 0, peakProcessRss: 0, cpuSeconds: 0 };
  try {
    await p.done;
  } finally {
    if (sampler) usage = sampler.stop();
  }
  const seconds = (performance.now() - t0) / 1000;
  const m1 = machineTicks();
  // CPU the rest of the machine used meanwhile, in cores: all busy time minus this run's tree and
  // the docker daemons (which work for this run). A quiet machine shows ~0.
  const dockerSeconds = (m1.docker - m0.docker) / tools.ticks;
  const otherCores = Math.max(0, (m1.busy - m0.busy) / tools.ticks - usage.cpuSeconds - dockerSeconds) / seconds;
  await dropKill();
  await dropContainer?.();

  const lz4File = join(dir, IMAGE_FILE);
  const md5File = join(dir, MD5_FILE);
  if (!existsSync(lz4File) || !existsSync(md5File)) throw new MetalError('tool', `the ${c.id} candidate exited 0 but left no ${IMAGE_FILE} and ${MD5_FILE} in ${dir}`, 're-run with METAL_DEBUG=1');
  const md5 = parseMd5File(readFileSync(md5File, 'utf8'), IMAGE_FILE);
  const lz4Bytes = statSync(lz4File).size;
  let tarBytes: number | null = null;
  let compressor: string | null = null;
  if (c.kind === 'export') {
    const last = stdout.trim().split('\n').pop() ?? '';
    const r = JSON.parse(last) as ExportResult;
    tarBytes = r.tarBytes;
    compressor = r.compressor;
  }
  if (round === 0) {
    // Not timed: the output must be a valid frame (lz4 -t checks blocks and content checksum) and
    // the md5 file must name it.
    await run([tools.distroLz4, '-t', '-q', lz4File], { hint: `the ${c.id} candidate wrote a broken ${IMAGE_FILE}` });
    const actual = await md5OfFile(lz4File);
    if (actual !== md5) throw new MetalError('tool', `the ${c.id} candidate wrote ${MD5_FILE} saying ${md5}, but ${IMAGE_FILE} hashes to ${actual}`);
  }
  rmSync(dir, { recursive: true, force: true });
  return {
    sample: { candidate: c.id, round, seconds, lz4Bytes, md5, peakTreeRss: usage.peakTreeRss, peakProcessRss: usage.peakProcessRss, cpuSeconds: usage.cpuSeconds, dockerSeconds, otherCores },
    tarBytes,
    compressor,
  };
}

export async function runBench(def: ImageDef, opts: BenchOptions): Promise<BenchReport> {
  const t0 = performance.now();
  const source = imageTag(def);
  if (!(await imageExists(source))) throw new PreconditionError(`image ${source} is not built`, `build it first: make ${def.os}${def.variant ? ` VARIANT=${def.variant}` : ''}`);
  const distroLz4 = await which('lz4');
  if (!distroLz4) throw new PreconditionError('lz4 is not installed', 'run make setup');
  const needsMt = opts.candidates.some((c) => c.lz4 === 'mt');
  const mt = needsMt ? await ensureLz4Mt() : null;
  const tools: Tools = { distroLz4, mtLz4: mt?.path ?? null, pageSize: Number(await read(['getconf', 'PAGESIZE'])), ticks: Number(await read(['getconf', 'CLK_TCK'])) };
  const cores = availableParallelism();
  const exportOpts = exportOptionsFromEnv(config().env);

  // Pin what is measured: a rebuild of the source tag during the benchmark must not change it.
  const image = benchTag(def);
  await run(['docker', 'tag', source, image]);
  const id = await dockerImageId(image);

  const work = join(config().stateDir, 'bench', `run-${process.pid}`);
  mkdirSync(work, { recursive: true });
  const dropWork = onCleanup(`remove ${work}`, () => rmSync(work, { recursive: true, force: true }));
  // The recipe keeps the whole tar and the compressed file on disk at once.
  const size = Number(await read(['docker', 'image', 'inspect', '--format', '{{.Size}}', image]));
  const fs = statfsSync(work);
  if (fs.bavail * fs.bsize < size * 1.8) throw new PreconditionError(`not enough disk space in ${work}: ${formatBytes(fs.bavail * fs.bsize)} free, about ${formatBytes(size * 1.8)} needed`, 'free disk space (df -h; docker system prune)');

  const distroVersion = (await read([distroLz4, '-V'])).replace(/\*/g, '').trim();
  info(`bench ${source} (${id.slice(7, 19)}, pinned as ${image}) on ${cores} cores, ${opts.runs} runs each, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  info(`  lz4: ${distroLz4} (${distroVersion})${mt ? `, ${mt.path} (v${mt.version}, Debian ${mt.debianVersion})` : ''}`);
  info(`  export: level ${exportOpts.level ?? DEFAULT_LEVEL}, ${exportOpts.workers ?? cores} workers`);
  for (const c of opts.candidates) info(`  ${c.id.padEnd(13)} ${c.label}${c.kind === 'recipe' ? ` [lz4 -9 ${threadFlag(c, cores) || '(no -T)'}]` : ''}`);

  // Warm-up, not timed: bring the image's layer files into the page cache, as right after a build.
  const warm = await createContainer(image);
  const dropWarm = onCleanup(`remove container ${warm.slice(0, 12)}`, () => removeContainer(warm));
  const w = exportContainer(warm);
  w.stdout.resume();
  await w.done;
  await dropWarm();

  const loadBefore = loadavg();
  const samples: RunSample[] = [];
  let tarBytes = 0;
  const compressors: Record<string, string> = {};
  for (let round = 0; round < opts.runs; round++) {
    for (const c of roundOrder(opts.candidates, round)) {
      const waited = opts.idleWait > 0 ? await waitIdle(opts.idleWait, tools.ticks) : 0;
      if (waited >= opts.idleWait && opts.idleWait > 0) info(`  (machine still busy after ${opts.idleWait}s; running anyway)`);
      const r = await runOnce(c, round, def, image, work, tools, cores);
      samples.push(r.sample);
      if (r.tarBytes !== null) tarBytes = r.tarBytes;
      if (r.compressor !== null) compressors[c.id] = r.compressor;
      const s = r.sample;
      info(`  round ${round + 1}/${opts.runs} ${c.id.padEnd(13)} ${s.seconds.toFixed(2)}s  ${formatBytes(s.lz4Bytes)}  peak RSS ${formatBytes(s.peakTreeRss)}  CPU ${s.cpuSeconds.toFixed(1)}s + dockerd ${s.dockerSeconds.toFixed(1)}s  other load ${s.otherCores.toFixed(2)} cores`);
    }
  }
  const loadAfter = loadavg();
  await dropWork();

  const summaries = summarize(opts.candidates, samples, tarBytes);
  const report: BenchReport = {
    os: def.os,
    image: source,
    dockerImageId: id,
    date: new Date().toISOString(),
    cores,
    loadBefore,
    loadAfter,
    runs: opts.runs,
    tarBytes,
    lz4: { distro: distroVersion, mt: mt ? `${mt.version} (Debian ${mt.debianVersion})` : null },
    export: { level: exportOpts.level ?? DEFAULT_LEVEL, workers: exportOpts.workers ?? cores },
    compressors,
    candidates: summaries,
    samples,
    goals: goals(summaries),
    seconds: (performance.now() - t0) / 1000,
  };
  writeFileSync(benchJsonPath(def), JSON.stringify(report, null, 2) + '\n');
  return report;
}

export function benchJsonPath(def: Pick<ImageDef, 'os' | 'variant'>): string {
  return join(config().stateDir, 'bench', `${def.os}${def.variant ? `-${def.variant}` : ''}.json`);
}
