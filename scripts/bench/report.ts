// Pure: from the benchmark's raw runs to the summary, the goal verdicts and the printed table.
import type { CandidateId } from './candidates.ts';

export interface RunSample {
  candidate: CandidateId;
  round: number;
  seconds: number;
  lz4Bytes: number;
  md5: string;
  peakTreeRss: number;
  peakProcessRss: number;
  cpuSeconds: number;
  /** CPU seconds of dockerd + containerd during the run (they build the tar docker export streams). */
  dockerSeconds: number;
  /** Average cores the rest of the machine kept busy during the run (noise; ~0 when quiet). */
  otherCores: number;
}

export interface CandidateSummary {
  id: CandidateId;
  label: string;
  seconds: number[];
  median: number;
  /** Fastest run: noise only ever adds time, so this is the least disturbed one. */
  best: number;
  /** Tar bytes per second (MB = 10^6 bytes) at the median time. */
  mbPerSecond: number;
  /**
   * How many times faster than the baseline, paired by round: the median over rounds of (the
   * baseline's run / this candidate's run in the same round). A shared machine drifts (the same
   * work took 18.5 and 21.9 CPU-seconds minutes apart here); runs of one round are minutes apart,
   * so the drift cancels within a pair, and the rotation of the order keeps it fair.
   */
  vsUpstream: number;
  vsUpstreamMt: number;
  /** Unpaired: baseline median / this median. */
  mediansVsUpstream: number;
  mediansVsUpstreamMt: number;
  /** The same ratios between the fastest runs. */
  bestVsUpstream: number;
  bestVsUpstreamMt: number;
  lz4Bytes: number;
  /** Compressed size relative to upstream's lz4 -9 output, in percent (+0.47 = 0.47% larger). */
  sizeVsLz4_9Pct: number;
  peakTreeRss: number;
  peakProcessRss: number;
  cpuSeconds: number;
  dockerSeconds: number;
  /** Mean over the runs. */
  otherCores: number;
}

export interface Goal {
  name: string;
  value: string;
  threshold: string;
  pass: boolean;
  /** Shown after the verdict; not part of it. */
  note?: string;
}

export const GOAL_VS_UPSTREAM = 2.5;
export const GOAL_VS_UPSTREAM_MT = 1.3;
export const GOAL_SIZE_PCT = 1;

export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new Error('median of nothing');
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Pure: median over the rounds both ran in of baseline seconds / candidate seconds. */
export function pairedRatio(baseline: readonly RunSample[], runs: readonly RunSample[]): number {
  const ratios = runs.flatMap((r) => {
    const b = baseline.find((x) => x.round === r.round);
    return b ? [b.seconds / r.seconds] : [];
  });
  if (ratios.length === 0) throw new Error('no round with both the baseline and the candidate');
  return median(ratios);
}

/** Summaries in the given candidate order; the baselines must be among the samples. */
export function summarize(candidates: readonly { id: CandidateId; label: string }[], samples: readonly RunSample[], tarBytes: number): CandidateSummary[] {
  const of = (id: CandidateId): RunSample[] => samples.filter((s) => s.candidate === id);
  const base = of('upstream');
  const baseMt = of('upstream-mt');
  if (base.length === 0 || baseMt.length === 0) throw new Error('the baselines upstream and upstream-mt have no runs');
  const baseMedian = median(base.map((s) => s.seconds));
  const baseMtMedian = median(baseMt.map((s) => s.seconds));
  const baseBest = Math.min(...base.map((s) => s.seconds));
  const baseMtBest = Math.min(...baseMt.map((s) => s.seconds));
  const lz4_9 = median(base.map((s) => s.lz4Bytes));
  return candidates
    .filter((c) => of(c.id).length > 0)
    .map((c) => {
      const runs = of(c.id);
      const seconds = runs.map((s) => s.seconds);
      const m = median(seconds);
      const best = Math.min(...seconds);
      const lz4Bytes = median(runs.map((s) => s.lz4Bytes));
      return {
        id: c.id,
        label: c.label,
        seconds,
        median: m,
        best,
        mbPerSecond: tarBytes / m / 1e6,
        vsUpstream: pairedRatio(base, runs),
        vsUpstreamMt: pairedRatio(baseMt, runs),
        mediansVsUpstream: baseMedian / m,
        mediansVsUpstreamMt: baseMtMedian / m,
        bestVsUpstream: baseBest / best,
        bestVsUpstreamMt: baseMtBest / best,
        lz4Bytes,
        sizeVsLz4_9Pct: (100 * (lz4Bytes - lz4_9)) / lz4_9,
        peakTreeRss: Math.max(...runs.map((s) => s.peakTreeRss)),
        peakProcessRss: Math.max(...runs.map((s) => s.peakProcessRss)),
        cpuSeconds: median(runs.map((s) => s.cpuSeconds)),
        dockerSeconds: median(runs.map((s) => s.dockerSeconds)),
        otherCores: runs.reduce((a, s) => a + s.otherCores, 0) / runs.length,
      };
    });
}

/** The issue's goals for the project's export (candidate `export`). */
export function goals(summaries: readonly CandidateSummary[]): Goal[] {
  const e = summaries.find((s) => s.id === 'export');
  if (!e) throw new Error('no summary for the project export');
  return [
    { name: 'speed vs upstream recipe (distro lz4 -9)', value: `${e.vsUpstream.toFixed(2)}x`, threshold: `>= ${GOAL_VS_UPSTREAM}x`, pass: e.vsUpstream >= GOAL_VS_UPSTREAM, note: `ratio of medians ${e.mediansVsUpstream.toFixed(2)}x, best runs ${e.bestVsUpstream.toFixed(2)}x` },
    { name: 'speed vs same recipe, multithreaded lz4 1.10', value: `${e.vsUpstreamMt.toFixed(2)}x`, threshold: `>= ${GOAL_VS_UPSTREAM_MT}x`, pass: e.vsUpstreamMt >= GOAL_VS_UPSTREAM_MT, note: `ratio of medians ${e.mediansVsUpstreamMt.toFixed(2)}x, best runs ${e.bestVsUpstreamMt.toFixed(2)}x` },
    { name: 'compressed size vs lz4 -9', value: signedPct(e.sizeVsLz4_9Pct), threshold: `<= +${GOAL_SIZE_PCT}%`, pass: e.sizeVsLz4_9Pct <= GOAL_SIZE_PCT },
  ];
}

export function signedPct(p: number): string {
  return `${p >= 0 ? '+' : ''}${p.toFixed(2)}%`;
}

const mb = (n: number): string => `${(n / 1e6).toFixed(1)} MB`;

/** Rows for log.table(): a header and one row per candidate. */
export function summaryRows(summaries: readonly CandidateSummary[]): string[][] {
  return [
    ['candidate', 'median s', 'best s', 'runs s', 'MB/s', 'vs upstream', 'vs upstream-mt', 'img.tar.lz4', 'vs lz4 -9', 'peak RSS tree', 'max proc', 'CPU s', '+dockerd', 'other load'],
    ...summaries.map((s) => [
      s.id,
      s.median.toFixed(2),
      s.best.toFixed(2),
      s.seconds.map((x) => x.toFixed(1)).join(' '),
      s.mbPerSecond.toFixed(0),
      `${s.vsUpstream.toFixed(2)}x`,
      `${s.vsUpstreamMt.toFixed(2)}x`,
      mb(s.lz4Bytes),
      signedPct(s.sizeVsLz4_9Pct),
      mb(s.peakTreeRss),
      mb(s.peakProcessRss),
      s.cpuSeconds.toFixed(1),
      s.dockerSeconds.toFixed(1),
      s.otherCores.toFixed(2),
    ]),
  ];
}

export function goalLines(gs: readonly Goal[]): string[] {
  return gs.map((g) => `${g.pass ? 'PASS' : 'FAIL'}  ${g.name}: ${g.value} (goal ${g.threshold})${g.note ? `; ${g.note}` : ''}`);
}
