import type { Args } from '../cli.ts';
import { ensureSetup } from '../lib/setup.ts';

export async function main(args: Args): Promise<void> {
  await ensureSetup({ quiet: Boolean(args.flags['quiet']) });
}
