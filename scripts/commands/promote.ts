// make promote DATE=YYYYMMDD [FORCE=1]: copy the tested metal-os/stable/ images to the release
// prefix metal-os/<DATE>/ server-side. See scripts/release/promote.ts.
import type { Args } from '../cli.ts';
import { config, flag } from '../lib/config.ts';
import { UsageError } from '../lib/errors.ts';
import { Steps, formatBytes, info, table } from '../lib/log.ts';
import { isDryRun } from '../lib/shell.ts';
import { promote } from '../release/promote.ts';

export async function main(args: Args): Promise<void> {
  if (args.positional.length > 1) throw new UsageError(`promote takes one date (got ${args.positional.join(' ')})`, 'run make promote DATE=YYYYMMDD');
  const cfg = config();
  const { target, objects } = await promote({ env: cfg.env, date: args.positional[0], dryRun: isDryRun(), force: flag(cfg.env, 'METAL_FORCE'), steps: new Steps() });
  info('');
  info(table([['image', 'key', 'action', 'size', 'url'], ...objects.map((o) => [o.id, o.key, o.action, formatBytes(o.size), o.url])]));
  const count = (a: string): number => objects.filter((o) => o.action === a).length;
  info(isDryRun() ? `\n[dry-run] ${count('would copy')} object(s) would be copied to ${target.prefix}/` : `\n${count('copied')} copied, ${count('skipped')} already there (skipped), under ${target.prefix}/`);
}
