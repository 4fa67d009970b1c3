// make downloads [PREFIX=metal-os/stable]: a markdown table of the images published under a prefix,
// on stdout (the notes go to stderr, so `make downloads > DOWNLOADS.md` keeps only the table).
import type { Args } from '../cli.ts';
import { config } from '../lib/config.ts';
import { UsageError } from '../lib/errors.ts';
import { downloads } from '../release/downloads.ts';

export async function main(args: Args): Promise<void> {
  if (args.positional.length > 1) throw new UsageError(`downloads takes one prefix (got ${args.positional.join(' ')})`, 'run make downloads PREFIX=metal-os/stable');
  const { prefix, rows, markdown } = await downloads({ env: config().env, prefix: args.positional[0] });
  console.error(`${rows.length} image(s) under ${prefix}/ (an image counts only with its .md5 beside it)`);
  process.stdout.write(markdown);
}
