// Entry point for every make target: `tsx scripts/cli.ts <command> [args] [--dry-run] [--debug]`.
// Commands live in scripts/commands/<name>.ts and export `main(args)`. Typed errors become exit
// codes here and only here: usage 2, precondition 3, tool failure 1, Ctrl-C 130.
import chalk from 'chalk';
import { existsSync } from 'node:fs';
import { failureReport, UsageError } from './lib/errors.ts';
import { setDebug, isDebug } from './lib/log.ts';
import { setDryRun } from './lib/shell.ts';
import { config } from './lib/config.ts';
import { runCleanups } from './lib/cleanup.ts';
import { parseArgs, withMakeArgs, type Args } from './lib/args.ts';

export { parseArgs, type Args };

const COMMANDS = ['build', 'all', 'setup', 'export', 'lint', 'vmtest', 'provision-test', 'bench', 'release', 'promote', 'downloads', 'check', 'ci-matrix', 'help'];

async function main(): Promise<void> {
  const own = parseArgs(process.argv.slice(2));
  if (own.flags['debug']) setDebug(true);
  // The configuration (make's variables, the environment, .env) is read and checked here, once.
  const cfg = config();
  if (cfg.debug) setDebug(true);
  if (own.flags['dry-run'] || cfg.dryRun) setDryRun(true);
  const args = withMakeArgs(own, cfg.makeArgs, cfg.env);
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
  const r = failureReport(e);
  console.error(chalk.red(`error: ${r.message}`));
  if (r.detail) console.error(chalk.gray(r.detail.replace(/^/gm, '  | ')));
  if (r.hint) console.error(`  fix: ${r.hint}`);
  const stack = (e as Error)?.stack;
  if (isDebug() && stack) console.error(chalk.gray(stack));
  else if (r.unexpected) console.error(chalk.gray('  (re-run with METAL_DEBUG=1 for the stack trace)'));
  return r.exitCode;
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
