// The benchmark's candidates, as data. Each one is a single child process the benchmark times and
// samples: the upstream shell recipe (docs/contract.md §5) run by sh, or the project's exporter run by
// `node --import tsx scripts/cli.ts bench <os> --child-export ...` (exportImage, the code path of
// `make <os>`).
import { UsageError } from '../lib/errors.ts';

export type CandidateId = 'upstream' | 'upstream-mt' | 'upstream-t0' | 'export' | 'export-docker' | 'export-9' | 'export-1w';

export interface Candidate {
  id: CandidateId;
  /** One line saying what runs. */
  label: string;
  kind: 'recipe' | 'export';
  /** recipe: which lz4 binary, and its thread flag ('' for none). */
  lz4?: 'distro' | 'mt';
  threads?: 'all' | 'auto';
  /** export: environment that changes exportImage's options (as `make <os>` reads it). */
  env?: Record<string, string>;
}

export const CANDIDATES: readonly Candidate[] = [
  { id: 'upstream', label: 'upstream recipe, distro lz4 -9 (docs/contract.md §5)', kind: 'recipe', lz4: 'distro' },
  { id: 'upstream-mt', label: 'same recipe, lz4 1.10 -9 -T<cores>', kind: 'recipe', lz4: 'mt', threads: 'all' },
  // lz4 1.10's -T0 ("auto") keeps 1 + cores/8 cores free: on 2 cores it compresses with ONE
  // thread. Opt-in, to show what upstream's literal -T0 does on small machines.
  { id: 'upstream-t0', label: 'same recipe, lz4 1.10 -9 -T0 (auto)', kind: 'recipe', lz4: 'mt', threads: 'auto' },
  { id: 'export', label: 'project export (exportImage, defaults)', kind: 'export' },
  { id: 'export-docker', label: 'project export, EXPORT_SOURCE=docker (docker export | tar --delete)', kind: 'export', env: { EXPORT_SOURCE: 'docker' } },
  { id: 'export-9', label: 'project export, LZ4_LEVEL=9', kind: 'export', env: { LZ4_LEVEL: '9' } },
  { id: 'export-1w', label: 'project export, EXPORT_WORKERS=1', kind: 'export', env: { EXPORT_WORKERS: '1' } },
];

export const DEFAULT_CANDIDATES: readonly CandidateId[] = ['upstream', 'upstream-mt', 'export', 'export-docker', 'export-9', 'export-1w'];
/** The two baselines of the goal and the subject; every benchmark runs them. */
export const REQUIRED: readonly CandidateId[] = ['upstream', 'upstream-mt', 'export'];

/** Pure: candidates from a comma list (BENCH_CANDIDATES / --candidates), in CANDIDATES order. */
export function parseCandidates(list: string | undefined): Candidate[] {
  const ids = list === undefined || list.trim() === '' ? [...DEFAULT_CANDIDATES] : list.split(',').map((s) => s.trim()).filter(Boolean);
  const known = CANDIDATES.map((c) => c.id as string);
  const unknown = ids.filter((id) => !known.includes(id));
  if (unknown.length > 0) throw new UsageError(`unknown bench candidate ${unknown.join(', ')} (known: ${known.join(', ')})`, `pick from ${known.join(',')}`);
  for (const r of REQUIRED) if (!ids.includes(r)) ids.push(r);
  return CANDIDATES.filter((c) => ids.includes(c.id));
}

/** Pure: the run count from --runs / BENCH_RUNS (default 5). */
export function parseRuns(value: string | undefined): number {
  if (value === undefined || value === '') return 5;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 50) throw new UsageError(`bench runs "${value}" is not a count 1..50`, 'use --runs=5 or BENCH_RUNS=5');
  return n;
}

/**
 * Upstream's export (docs/contract.md §5), step by step and sequential:
 *   docker export $(docker create IMG) > img.tar; docker run --rm IMG dpkg -l > packages.txt;
 *   lz4 -f -9 img.tar img.tar.lz4; rm img.tar; md5sum img.tar.lz4 > img.tar.lz4.md5
 * Values arrive as positional parameters, never spliced into the text. Differences from the
 * literal recipe, the same for every candidate: host networking (the build hosts have no bridge),
 * a container name (so the benchmark can remove it on every exit path) and its removal, which
 * the project's export does too, and the packages command run as the entrypoint, as exportImage
 * does. lz4 -q only silences the progress display.
 */
export const UPSTREAM_RECIPE = [
  'set -eu',
  'dir=$1 img=$2 name=$3 lz4=$4 threads=$5',
  'shift 5',
  'cd "$dir"',
  'docker create --network host --name "$name" "$img" >/dev/null',
  'docker export "$name" > img.tar',
  'docker rm "$name" >/dev/null',
  'cmd=$1',
  'shift',
  'docker run --rm --network host --entrypoint "$cmd" "$img" "$@" > packages.txt',
  '"$lz4" -q -f -9 ${threads:+"$threads"} img.tar img.tar.lz4',
  'rm img.tar',
  'md5sum img.tar.lz4 > img.tar.lz4.md5',
].join('\n');

export interface RecipeInput {
  dir: string;
  image: string;
  container: string;
  lz4Path: string;
  cores: number;
  packagesCommand: readonly string[];
}

/** Pure: the thread flag a recipe candidate passes to lz4. */
export function threadFlag(c: Candidate, cores: number): string {
  if (c.threads === 'all') return `-T${cores}`;
  if (c.threads === 'auto') return '-T0';
  return '';
}

/** Pure: argv running the upstream recipe for one candidate. */
export function recipeArgv(c: Candidate, r: RecipeInput): string[] {
  return ['sh', '-c', UPSTREAM_RECIPE, 'upstream-recipe', r.dir, r.image, r.container, r.lz4Path, threadFlag(c, r.cores), ...r.packagesCommand];
}

/** Pure: argv running the project's exporter in a child process (see scripts/commands/bench.ts). */
export function exportChildArgv(os: string, variant: string, image: string, dir: string): string[] {
  return ['node', '--import', 'tsx', 'scripts/cli.ts', 'bench', os, ...(variant ? [`--variant=${variant}`] : []), '--child-export', `--image=${image}`, `--out=${dir}`];
}
