// `make lint OS=<os> [BASE=<variant>]`: lint the last export of an image against the metal-hammer's
// contract without booting it. `--all` lists every finding instead of the first few per rule.
import { join } from 'node:path';
import type { Args } from '../cli.ts';
import { config } from '../lib/config.ts';
import { UsageError } from '../lib/errors.ts';
import { loadImageDef } from '../lib/image-def.ts';
import { runLint } from '../lint/lint.ts';

export async function main(args: Args): Promise<void> {
  const os = args.positional[0];
  if (!os) throw new UsageError('lint needs an OS', 'run make lint OS=debian');
  const variant = typeof args.flags['variant'] === 'string' ? args.flags['variant'] : '';
  const def = loadImageDef(os, variant);
  await runLint(def, join(config().imagesDir, def.os, def.version), { all: Boolean(args.flags['all']) });
}
