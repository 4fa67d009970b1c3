// Runs the project's CLI as a child process, the way make does, for integration tests.
import { spawn } from 'node:child_process';
import { ROOT } from '../../scripts/lib/config.ts';

export interface CliResult {
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOpts { env?: NodeJS.ProcessEnv; echo?: boolean; onStdout?: (s: string) => void; signalAfter?: { when: () => boolean; signal: NodeJS.Signals } }

export function cli(args: string[], opts: RunOpts = {}): Promise<CliResult> {
  return spawnCaptured(process.execPath, ['--import', 'tsx', 'scripts/cli.ts', ...args], opts);
}

/** `make <args>` in the checkout, as a user types it. */
export function make(args: string[], opts: RunOpts = {}): Promise<CliResult> {
  return spawnCaptured('make', args, opts);
}

function spawnCaptured(cmd: string, argv: string[], opts: RunOpts): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { cwd: ROOT, env: { ...process.env, FORCE_COLOR: '0', ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    if (opts.signalAfter) {
      const s = opts.signalAfter;
      timer = setInterval(() => {
        if (s.when()) {
          clearInterval(timer);
          child.kill(s.signal);
        }
      }, 100);
    }
    child.stdout.on('data', (d: Buffer) => {
      stdout += d;
      if (opts.echo) process.stdout.write(d);
      opts.onStdout?.(d.toString());
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d;
      if (opts.echo) process.stderr.write(d);
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (timer) clearInterval(timer);
      resolve({ pid: child.pid ?? -1, code, signal, stdout, stderr });
    });
  });
}
