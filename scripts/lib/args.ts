// The CLI's arguments: its own command line, plus what make's command line gives as data
// (OS=, PREFIX=, VARIANT=; see the Makefile and scripts/lib/config.ts). Pure.
import type { Env, MakeArgs } from './config.ts';

export interface Args {
  command: string;
  positional: string[];
  flags: Record<string, string | true>;
}

export function parseArgs(argv: string[]): Args {
  const [command = 'help', ...rest] = argv;
  const positional: string[] = [];
  const flags: Record<string, string | true> = {};
  for (const a of rest) {
    const m = /^--([a-z][a-z0-9-]*)(?:=(.*))?$/.exec(a);
    if (m) flags[m[1]!] = m[2] ?? true;
    else positional.push(a);
  }
  return { command, positional, flags };
}

/** Commands whose first argument is an OS folder (`make lint OS=debian`). */
const TAKES_OS = ['lint', 'vmtest', 'provision-test', 'bench', 'export'];
/** Commands that take a variant (`make firewall VARIANT=debian`, `make lint OS=firewall VARIANT=debian`). */
const TAKES_VARIANT = ['build', 'lint', 'vmtest', 'provision-test', 'bench', 'export'];

/**
 * The arguments a command runs with: its command line, completed by make's variables where the
 * command line leaves them out. OS= is the first argument of lint, vmtest, bench and export,
 * PREFIX= the argument of downloads, VARIANT (a config key) the --variant. (promote reads DATE itself.)
 */
export function withMakeArgs(a: Args, make: MakeArgs, env: Env): Args {
  const positional = [...a.positional];
  const flags = { ...a.flags };
  if (positional.length === 0) {
    if (make.OS !== undefined && TAKES_OS.includes(a.command)) positional.push(make.OS);
    if (make.PREFIX !== undefined && a.command === 'downloads') positional.push(make.PREFIX);
  }
  if (env.VARIANT !== undefined && flags['variant'] === undefined && TAKES_VARIANT.includes(a.command)) flags['variant'] = env.VARIANT;
  return { command: a.command, positional, flags };
}
