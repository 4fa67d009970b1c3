// make export OS=<os> [VARIANT=<v>]: re-export the last built image without rebuilding it (the
// pipeline's export step; the build record's lint and VM test verdicts of the old bytes go).
import type { Args } from '../cli.ts';
import { UsageError } from '../lib/errors.ts';
import { requireDaemon } from '../lib/docker.ts';
import { resolveDefinition } from '../steps/resolve.ts';
import { exportStep } from '../steps/export.ts';

export async function main(args: Args): Promise<void> {
  const os = args.positional[0];
  if (!os) throw new UsageError('no OS given', 'run make export OS=debian');
  const ctx = resolveDefinition(os, typeof args.flags['variant'] === 'string' ? args.flags['variant'] : '');
  await requireDaemon();
  await exportStep(ctx);
}
