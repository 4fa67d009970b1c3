// make release [DRY_RUN=1] [FORCE=1]: publish images/<os>/<version>/ to the store prefix the CI
// environment (or PUBLISH_PREFIX) names. See scripts/release/publish.ts.
import type { Args } from '../cli.ts';
import { config, flag } from '../lib/config.ts';
import { UsageError } from '../lib/errors.ts';
import { Steps, formatBytes, info, table } from '../lib/log.ts';
import { isDryRun } from '../lib/shell.ts';
import { publish } from '../release/publish.ts';

export async function main(args: Args): Promise<void> {
  if (args.positional.length > 0) throw new UsageError(`release takes no arguments (got ${args.positional.join(' ')})`, 'run make release [DRY_RUN=1]');
  const cfg = config();
  const { target, objects } = await publish({ env: cfg.env, imagesDir: cfg.imagesDir, dryRun: isDryRun(), force: flag(cfg.env, 'METAL_FORCE'), steps: new Steps() });
  info('');
  info(table([['image', 'key', 'action', 'size', 'url'], ...objects.map((o) => [o.id, o.key, o.action, formatBytes(o.size), o.url])]));
  const count = (a: string): number => objects.filter((o) => o.action === a).length;
  info(isDryRun() ? `\n[dry-run] ${objects.length} object(s) under ${target.prefix}/ would be written; nothing was` : `\n${count('uploaded')} uploaded, ${count('skipped')} already there (skipped), under ${target.prefix}/`);
}
