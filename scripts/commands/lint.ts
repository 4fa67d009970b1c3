// `make lint OS=<os> [VARIANT=<v>]`: lint the last export of an image against the metal-hammer's
// contract without booting it (the pipeline's lint step: the verdict goes into build.json).
// `--all` lists every finding instead of the first few per rule.
import type { Args } from '../cli.ts';
import { UsageError } from '../lib/errors.ts';
import { resolveDefinition } from '../steps/resolve.ts';
import { lint } from '../steps/lint.ts';

export async function main(args: Args): Promise<void> {
  const os = args.positional[0];
  if (!os) throw new UsageError('lint needs an OS', 'run make lint OS=debian');
  const ctx = resolveDefinition(os, typeof args.flags['variant'] === 'string' ? args.flags['variant'] : '');
  await lint(ctx, { all: Boolean(args.flags['all']) });
}
