// The VM test as the pipeline and `make vmtest` run it: boot → settle → goss → results → stop.
// checkWithGoss() is the part that turns a goss run into results files, a summary and a verdict;
// callers that need to do something in the VM first (e.g. run the installer) use bootVm() and call
// it themselves.
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ImageDef } from '../lib/image-def.ts';
import type { GossTotals } from '../lib/build-record.ts';
import { info } from '../lib/log.ts';
import { isDryRun } from '../lib/shell.ts';
import { DEFAULT_RETRY, formatSummary, type RetryOptions } from './goss.ts';
import { bootVm, printConsoleTail, rel, VmTestError, type GossOutcome, type Vm } from './vm.ts';

export const RESULT_FILES = { json: 'goss.json', junit: 'goss.xml', console: 'console.log' } as const;

export interface VmTestOptions {
  /** Default: <os>/goss.yaml of the image definition. */
  spec?: string;
  sshTimeoutSec?: number;
  retry?: RetryOptions;
  /** More goss vars for every spec run in this VM (see BootOptions.extraVars). */
  extraVars?: Record<string, unknown>;
  /** Runs in the booted VM before goss (e.g. the installer with a fixture). */
  beforeGoss?: (vm: Vm) => Promise<void>;
  /** Runs in the same VM after the image's spec passed (e.g. more specs), before it is stopped; the results it returns are reported beside the spec's. */
  afterGoss?: (vm: Vm, result: VmTestResult) => Promise<VmTestResult[] | void>;
}

export interface VmTestResult {
  label: string;
  /** The spec, relative to the repository. */
  spec: string;
  passed: number;
  failed: number;
  skipped: number;
  bootSeconds: number;
  settleSeconds: number;
  gossSeconds: number;
  accel: string;
  additions: string[];
  /** One line for a summary table, e.g. "57/57 goss checks passed, boot 98s, goss 21s, tcg". */
  note: string;
  summary: string;
  /** The totals of further specs run in the same boot (afterGoss). */
  more: GossTotals[];
}


export function defaultSpec(def: ImageDef): string {
  return join(def.dir, 'goss.yaml');
}

/** Run a spec in a booted VM, write goss.json/goss.xml to `resultsDir`, print the summary; throws if a check failed. */
export async function checkWithGoss(vm: Vm, spec: string, resultsDir: string, o: { retry?: RetryOptions; settle?: { state: string; seconds: number } } = {}): Promise<VmTestResult> {
  const settled = o.settle ?? { state: 'not awaited', seconds: 0 };
  const outcome: GossOutcome = await vm.runGoss(spec, o.retry ?? DEFAULT_RETRY);
  const r = outcome.report;
  const files = [join(resultsDir, RESULT_FILES.junit), join(resultsDir, RESULT_FILES.json)];
  writeFileSync(files[0]!, outcome.junit.xml);
  writeFileSync(files[1]!, `${JSON.stringify(JSON.parse(r.json), null, 2)}\n`);
  const results = [...files, vm.consoleLog].map(rel);
  const summary = formatSummary({
    label: `${vm.label} (${rel(spec)})`,
    report: r,
    gossSeconds: outcome.seconds,
    bootSeconds: vm.bootSeconds,
    settleSeconds: settled.seconds,
    systemState: settled.state,
    accel: `${vm.accel.accel} (${vm.accel.reason})`,
    additions: vm.additions,
    results,
  });
  console.log(summary);
  if (outcome.junit.failures !== r.failed || outcome.junit.tests !== r.total) {
    info(`note: the JUnit pass counted ${outcome.junit.tests} checks, ${outcome.junit.failures} failed (the JSON run: ${r.total}, ${r.failed}); a check changed state between the two passes`);
  }
  const result: VmTestResult = {
    label: vm.label,
    spec: rel(spec),
    more: [],
    passed: r.passed,
    failed: r.failed,
    skipped: r.skipped,
    bootSeconds: vm.bootSeconds,
    settleSeconds: settled.seconds,
    gossSeconds: outcome.seconds,
    accel: vm.accel.accel,
    additions: vm.additions.map((a) => a.path),
    note: `${r.passed}/${r.total} goss checks passed, boot ${vm.bootSeconds.toFixed(0)}s, goss ${outcome.seconds.toFixed(0)}s, ${vm.accel.accel}`,
    summary,
  };
  if (r.failed > 0 || r.total === 0) {
    const first = r.failures[0]?.line ?? 'the spec has no checks';
    throw new VmTestError(
      `vm test ${vm.label}: ${r.failed} of ${r.total} goss checks failed (${rel(spec)}); first: ${first}`,
      `see the FAIL lines above and ${results.join(', ')}`,
    );
  }
  return result;
}

/** Boot the image of `dir`, let it settle, run its spec, stop it. Results land next to the artifact. */
export async function runVmTest(def: ImageDef, dir: string, o: VmTestOptions = {}): Promise<VmTestResult | { notRun: string }> {
  const spec = o.spec ?? defaultSpec(def);
  if (isDryRun()) {
    info(`[dry-run] would boot ${rel(join(dir, 'img.tar.lz4'))} in QEMU and run ${rel(spec)}`);
    return { notRun: 'DRY_RUN=1: nothing booted' };
  }
  // results of an earlier run must not pass for this one's
  for (const f of [RESULT_FILES.json, RESULT_FILES.junit]) if (existsSync(join(dir, f))) rmSync(join(dir, f));
  const vm = await bootVm(def, dir, { specs: [spec], sshTimeoutSec: o.sshTimeoutSec, extraVars: o.extraVars });
  try {
    const settled = await vm.settle();
    info(`vm: systemd says "${settled.state}" ${settled.seconds.toFixed(1)}s after ssh answered`);
    if (o.beforeGoss) await o.beforeGoss(vm);
    const result = await checkWithGoss(vm, spec, dir, { retry: o.retry, settle: settled });
    const extra = o.afterGoss ? await o.afterGoss(vm, result) : undefined;
    for (const x of extra ?? []) result.more.push({ spec: x.spec, passed: x.passed, failed: x.failed, skipped: x.skipped, total: x.passed + x.failed + x.skipped });
    return result;
  } catch (e) {
    printConsoleTail(vm.consoleLog);
    throw e;
  } finally {
    await vm.stop();
  }
}
