// make bench OS=<os> [BENCH_RUNS=5] [BENCH_CANDIDATES=upstream,upstream-mt,export,...]:
// time the export of the last built image against upstream's recipe; see scripts/bench/run.ts.
// Flags (scripts/cli.ts bench <os> ...): --runs=N, --candidates=a,b, --idle-wait=SECONDS (before
// each run, wait up to that long for the machine to be idle; default 60, 0 = don't wait).
//
// Internal mode, used by the benchmark itself to run the project's export as a child process
// (so it is timed and sampled exactly like the shell recipes):
//   scripts/cli.ts bench <os> --child-export --image=<ref> --out=<dir>
// prints the ExportResult as JSON on its last line.
import type { Args } from '../cli.ts';
import { config } from '../lib/config.ts';
import { requireDaemon } from '../lib/docker.ts';
import { UsageError } from '../lib/errors.ts';
import { loadImageDef } from '../lib/image-def.ts';
import { bold, info, table } from '../lib/log.ts';
import { exportImage, exportOptionsFromEnv } from '../export/export.ts';
import { parseCandidates, parseRuns } from '../bench/candidates.ts';
import { goalLines, summaryRows } from '../bench/report.ts';
import { benchJsonPath, runBench } from '../bench/run.ts';

function stringFlag(args: Args, name: string): string | undefined {
  const v = args.flags[name];
  if (v === true) throw new UsageError(`--${name} needs a value`, `use --${name}=...`);
  return v;
}

export async function main(args: Args): Promise<void> {
  const os = args.positional[0];
  if (!os) throw new UsageError('no OS given', 'run make bench OS=debian');
  const def = loadImageDef(os, stringFlag(args, 'variant') ?? '');
  await requireDaemon();

  if (args.flags['child-export']) {
    const image = stringFlag(args, 'image');
    const out = stringFlag(args, 'out');
    if (!image || !out) throw new UsageError('--child-export needs --image=<ref> and --out=<dir>', 'this mode is run by make bench itself');
    const r = await exportImage(image, def.packages_command, out, { ...exportOptionsFromEnv(config().env), quiet: true, withoutSbom: true });
    console.log(JSON.stringify(r));
    return;
  }

  const env = config().env;
  const runs = parseRuns(stringFlag(args, 'runs') ?? env.BENCH_RUNS);
  const candidates = parseCandidates(stringFlag(args, 'candidates') ?? env.BENCH_CANDIDATES);
  const idle = stringFlag(args, 'idle-wait') ?? '60';
  const idleWait = Number(idle);
  if (!Number.isFinite(idleWait) || idleWait < 0) throw new UsageError(`--idle-wait=${idle} is not a number of seconds`, 'use --idle-wait=60, or 0 to not wait');
  const r = await runBench(def, { runs, candidates, idleWait });

  const tarMb = (r.tarBytes / 1e6).toFixed(1);
  console.log('');
  console.log(bold(`export benchmark: ${r.image} (${r.dockerImageId.slice(7, 19)}), tar ${tarMb} MB, ${r.cores} cores, median of ${r.runs} runs`));
  console.log(`lz4: distro ${r.lz4.distro}; multithreaded ${r.lz4.mt ?? '(not run)'}; project export: level ${r.export.level}, ${r.export.workers} workers`);
  console.log(`load average (1/5/15 min) before the timed runs ${r.loadBefore.map((l) => l.toFixed(2)).join(' ')}, after ${r.loadAfter.map((l) => l.toFixed(2)).join(' ')}`);
  console.log('');
  console.log(table(summaryRows(r.candidates)));
  console.log('');
  for (const c of r.candidates) console.log(`  ${c.id.padEnd(13)} ${c.label}${r.compressors[c.id] ? ` [${r.compressors[c.id]}]` : ''}`);
  console.log('  MB = 10^6 bytes of tar per second at the median time; vs = baseline run / this run of the same round,');
  console.log('  median over rounds (paired: the machine\'s drift between rounds cancels; the goal lines also give the ratio of medians);');
  console.log('  peak RSS tree = highest sum over the process tree (sampled every 100 ms; dockerd not included);');
  console.log('  max proc = largest single process; CPU s = user+system of the tree; +dockerd = CPU of dockerd and');
  console.log('  containerd meanwhile; other load = cores the rest of the machine kept busy (noise, mean over runs).');
  const one = r.candidates.find((c) => c.id === 'export-1w');
  const all = r.candidates.find((c) => c.id === 'export');
  if (one && all) console.log(`  scaling: ${r.export.workers} workers vs 1 worker: ${(one.median / all.median).toFixed(2)}x`);
  console.log('');
  for (const l of goalLines(r.goals)) console.log(l);
  info(`\nresults: ${benchJsonPath(def)} (bench took ${(r.seconds / 60).toFixed(1)} min)`);
}
