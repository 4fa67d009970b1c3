// `make <os>` reads like a table of contents: each step is one named, timed function
// in scripts/steps/, taking the build context and returning its note; the build record
// (images/<os>/<version>/build.json) is written step by step.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { IMAGE_FILE, MD5_FILE, PACKAGES_FILE } from './lib/artifacts.ts';
import { type BuildContext } from './lib/build-context.ts';
import { readRecord } from './lib/build-record.ts';
import { config, flag } from './lib/config.ts';
import { imageName, imageTag } from './lib/image-def.ts';
import { Steps, formatBytes, table, bold } from './lib/log.ts';
import { isDryRun } from './lib/shell.ts';
import { describeDefinition, resolveDefinition } from './steps/resolve.ts';
import { checkTools } from './steps/check-tools.ts';
import { baseImage } from './steps/base.ts';
import { build } from './steps/build.ts';
import { exportStep } from './steps/export.ts';
import { lint } from './steps/lint.ts';
import { skipVmtest, vmtest } from './steps/vmtest.ts';
import { provision } from './steps/provision.ts';

export interface PipelineResult {
  ctx: BuildContext;
  steps: Steps;
}

export async function buildPipeline(os: string, variant = ''): Promise<PipelineResult> {
  const steps = new Steps();
  const ctx = resolveDefinition(os, variant);
  await steps.run('resolve definition', async () => describeDefinition(ctx));
  await steps.run('check tools', () => checkTools(ctx));
  await steps.run('base image', () => baseImage(ctx));
  await steps.run('build', () => build(ctx));
  if (isDryRun()) {
    // nothing is built, so there is nothing to export, lint or boot; the artifacts stay as they are
    for (const s of ['export', 'lint', 'vm test']) steps.skip(s, 'DRY_RUN=1: nothing was built');
  } else {
    await steps.run('export', () => exportStep(ctx));
    await steps.run('lint', () => lint(ctx));
    if (flag(config().env, 'SKIP_VM_TEST')) {
      await skipVmtest(ctx, 'SKIP_VM_TEST=1');
      steps.skip('vm test', 'SKIP_VM_TEST=1');
    } else if (ctx.def.machine_type === 'machine' || ctx.def.machine_type === 'firewall') {
      // tested as a server gets it: provisioned by the hammer, booted, checked from the leaves;
      // a machine through both boots, a firewall through its kexec boot with traffic through it
      await steps.run('vm test (rack)', () => provision(ctx));
    } else await steps.run('vm test', () => vmtest(ctx));
  }
  printSummary(ctx, steps);
  return { ctx, steps };
}

export function printSummary(ctx: BuildContext, steps: Steps): void {
  const rel = (p: string): string => p.replace(`${config().root}/`, '');
  const total = steps.timings.reduce((s, t) => s + t.seconds, 0);
  const rec = readRecord(ctx.dir);
  console.log('');
  console.log(bold(`${imageName(ctx.def)} (${imageTag(ctx.def)}) done in ${total.toFixed(1)}s`));
  if (rec?.export && !isDryRun()) {
    const e = rec.export;
    console.log(
      table([
        ['artifact', 'size', ''],
        [rel(join(ctx.dir, IMAGE_FILE)), formatBytes(e.lz4_bytes), `tar ${formatBytes(e.tar_bytes)}, ratio ${(e.tar_bytes / e.lz4_bytes).toFixed(2)}`],
        [rel(join(ctx.dir, MD5_FILE)), '', e.md5],
        [rel(join(ctx.dir, PACKAGES_FILE)), '', `${e.packages} packages`],
        ...(e.sbom ? [[rel(join(ctx.dir, e.sbom.file)), '', `SPDX: ${e.sbom.packages} packages, ${e.sbom.files} files (${e.sbom.tool})`]] : []),
        [rel(join(ctx.dir, 'build.json')), '', `lint ${rec.lint?.verdict ?? 'not run'}, vm test ${rec.vmtest?.verdict ?? 'not run'}`],
      ]),
    );
  }
  console.log('');
  console.log(
    table([
      ['step', 'seconds', 'share', 'status'],
      ...steps.timings.map((t) => [t.name, t.seconds.toFixed(1), total > 0 ? `${((100 * t.seconds) / total).toFixed(0)}%` : '', t.status + (t.note ? ` (${t.note})` : '')]),
    ]),
  );
  if (!isDryRun() && !existsSync(join(ctx.dir, IMAGE_FILE))) console.log('warning: artifact missing after the run');
}
