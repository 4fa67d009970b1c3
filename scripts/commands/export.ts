// make export OS=<os>: re-export the last built image without rebuilding it.
import type { Args } from '../cli.ts';
import { UsageError } from '../lib/errors.ts';
import { config } from '../lib/config.ts';
import { loadImageDef, imageTag } from '../lib/image-def.ts';
import { requireDaemon } from '../lib/docker.ts';
import { exportImage, exportOptionsFromEnv } from '../steps/export.ts';
import { artifactDir } from '../pipeline.ts';

export async function main(args: Args): Promise<void> {
  const os = args.positional[0];
  if (!os) throw new UsageError('no OS given', 'run make export OS=debian');
  const def = loadImageDef(os, typeof args.flags['variant'] === 'string' ? args.flags['variant'] : '');
  await requireDaemon();
  await exportImage(imageTag(def), def.packages_command, artifactDir(def), exportOptionsFromEnv(config().env));
}
