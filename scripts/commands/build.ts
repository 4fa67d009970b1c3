import type { Args } from '../cli.ts';
import { UsageError } from '../lib/errors.ts';
import { buildPipeline } from '../pipeline.ts';

export async function main(args: Args): Promise<void> {
  const os = args.positional[0];
  if (!os) throw new UsageError('no OS given', 'run make debian (or make help for the list)');
  const variant = typeof args.flags['variant'] === 'string' ? args.flags['variant'] : '';
  await buildPipeline(os, variant);
}
