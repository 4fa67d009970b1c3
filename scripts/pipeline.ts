// `make <os>` reads like a table of contents (STYLE.md §1): each step is one named, timed function.
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { config, flag } from './lib/config.ts';
import { Steps, formatBytes, table, bold } from './lib/log.ts';
import { loadImageDef, imageTag, imageId, type ImageDef } from './lib/image-def.ts';
import { checkTools } from './steps/check-tools.ts';
import { ensureBase } from './steps/base.ts';
import { buildBody, buildImage, buildMeta } from './steps/build.ts';
import { exportImage, exportOptionsFromEnv, type ExportResult } from './steps/export.ts';
import { runLint } from './lint/lint.ts';
import { runVmTest } from './vm/check.ts';

export function artifactDir(def: Pick<ImageDef, 'os' | 'version'>): string {
  return join(config().imagesDir, def.os, def.version);
}

/** Make sure the base image exists; the body of another OS folder is built first. */
export async function ensureBaseFor(def: ImageDef): Promise<string> {
  if (def.base.from) {
    const dep = loadImageDef(def.base.from);
    await ensureBaseFor(dep);
    const tag = await buildBody(dep);
    return `built ${tag} from ${dep.os}/`;
  }
  return (await ensureBase(def, config().env.DEBIAN_MIRROR)).note;
}

export interface PipelineResult {
  def: ImageDef;
  export: ExportResult;
  steps: Steps;
}

export async function buildPipeline(os: string, variant = ''): Promise<PipelineResult> {
  const steps = new Steps();
  const env = config().env;
  const def = await steps.run('resolve definition', async () => loadImageDef(os, variant));
  const exportOpts = exportOptionsFromEnv(env);
  await steps.run('check tools', () => checkTools(def));
  const meta = await buildMeta();
  await steps.run('base image', () => ensureBaseFor(def));
  const built = await steps.run('build', () => buildImage(def, meta));
  const exp = await steps.run('export', () => exportImage(built.tag, def.packages_command, artifactDir(def), exportOpts));
  await steps.run('lint', () => runLint(def, artifactDir(def)));
  if (flag(env, 'SKIP_VM_TEST')) steps.skip('vm test', 'SKIP_VM_TEST=1');
  else await steps.run('vm test', () => runVmTest(def, artifactDir(def)));
  printSummary(def, exp, steps);
  return { def, export: exp, steps };
}

export function printSummary(def: ImageDef, exp: ExportResult, steps: Steps): void {
  const dir = artifactDir(def);
  const rel = (p: string): string => p.replace(`${config().root}/`, '');
  const total = steps.timings.reduce((s, t) => s + t.seconds, 0);
  console.log('');
  console.log(bold(`${imageId(def)} (${imageTag(def)}) done in ${total.toFixed(1)}s`));
  console.log(
    table([
      ['artifact', 'size', ''],
      [rel(exp.image), formatBytes(exp.lz4Bytes), `tar ${formatBytes(exp.tarBytes)}, ratio ${(exp.tarBytes / exp.lz4Bytes).toFixed(2)}`],
      [rel(`${exp.image}.md5`), '', exp.md5],
      [rel(join(dir, 'packages.txt')), '', `${exp.packages} packages`],
    ]),
  );
  console.log('');
  console.log(
    table([
      ['step', 'seconds', 'share', 'status'],
      ...steps.timings.map((t) => [t.name, t.seconds.toFixed(1), total > 0 ? `${((100 * t.seconds) / total).toFixed(0)}%` : '', t.status + (t.note ? ` (${t.note})` : '')]),
    ]),
  );
  if (!existsSync(exp.image)) console.log('warning: artifact missing after the run');
}
