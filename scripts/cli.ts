// Entry point for every make target: `tsx scripts/cli.ts <command> [args] [--dry-run] [--debug]`.
// Commands live in scripts/commands/<name>.ts and export `main(args)`. Typed errors become exit
// codes here and only here (STYLE.md §7): usage 2, precondition 3, tool failure 1, Ctrl-C 130.
import chalk from 'chalk';
import { existsSync } from 'node:fs';
import { MetalError, ToolError, UsageError } from './lib/errors.ts';
import { setDebug, isDebug } from './lib/log.ts';
import { setDryRun } from './lib/shell.ts';
import { config, flag } from './lib/config.ts';
import { runCleanups } from './lib/cleanup.ts';

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

const COMMANDS = ['build', 'all', 'setup', 'export', 'lint', 'vmtest', 'provision-test', 'bench', 'release', 'promote', 'downloads', 'check', 'help'];

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.flags['debug']) setDebug(true);
  if (args.flags['dry-run'] || flag(config().env, 'DRY_RUN')) setDryRun(true);
  if (args.command === 'help' || !COMMANDS.includes(args.command)) {
    const known = COMMANDS.filter((c) => c !== 'help').join(', ');
    if (args.command !== 'help') throw new UsageError(`unknown command "${args.command}" (known: ${known})`, 'run make help');
    console.log(`usage: tsx scripts/cli.ts <${known}> [args]  (see make help)`);
    return;
  }
  const file = new URL(`./commands/${args.command}.ts`, import.meta.url);
  if (!existsSync(file)) throw new UsageError(`command "${args.command}" is not available in this checkout`, 'run make help');
  const mod = (await import(file.href)) as { main: (a: Args) => Promise<void> };
  await mod.main(args);
}

function report(e: unknown): number {
  if (e instanceof MetalError) {
    console.error(chalk.red(`error: ${e.message}`));
    if (e instanceof ToolError && e.stderrTail) console.error(chalk.gray(e.stderrTail.replace(/^/gm, '  | ')));
    if (e.hint) console.error(`  fix: ${e.hint}`);
    if (isDebug() && e.stack) console.error(chalk.gray(e.stack));
    return e.exitCode;
  }
  const err = e as NodeJS.ErrnoException;
  if (err?.code === 'ENOSPC') {
    console.error(chalk.red(`error: no space left on device${err.path ? ` writing ${err.path}` : ''}`));
    console.error('  fix: free disk space (df -h; docker system prune) and re-run');
    return 3;
  }
  console.error(chalk.red(`error: ${err?.message ?? String(e)}`));
  if (isDebug() && err?.stack) console.error(chalk.gray(err.stack));
  else console.error(chalk.gray('  (re-run with METAL_DEBUG=1 for the stack trace)'));
  return 1;
}

let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    console.error(chalk.yellow(`\ninterrupted (${sig}): cleaning up...`));
    void runCleanups().finally(() => {
      console.error(chalk.red('error: interrupted; partial artifacts were removed'));
      console.error('  fix: re-run the same make target');
      process.exit(130);
    });
  });
}

main()
  .then(async () => {
    await runCleanups();
  })
  .catch(async (e: unknown) => {
    await runCleanups();
    process.exitCode = report(e);
  });
