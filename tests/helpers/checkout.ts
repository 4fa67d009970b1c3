// A scratch copy of this checkout (its files as in the working tree, node_modules linked), for
// tests that run `make` with a .env of their own without touching the real checkout's .env.
import { spawn } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ROOT } from '../../scripts/lib/config.ts';
import { read } from '../../scripts/lib/shell.ts';

export async function scratchCheckout(): Promise<{ dir: string; remove(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'metal-checkout-'));
  const files = (await read(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT })).split('\0').filter(Boolean);
  for (const f of files) {
    const src = join(ROOT, f);
    if (!existsSync(src) || lstatSync(src).isDirectory()) continue;
    mkdirSync(dirname(join(dir, f)), { recursive: true });
    cpSync(src, join(dir, f), { preserveTimestamps: true, verbatimSymlinks: true });
  }
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface MakeResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * `make -s <args>` in `cwd` with a minimal environment (PATH, HOME and `env`; none of the test
 * runner's own settings), in a process group of its own so a Ctrl-C can be sent to all of it.
 * `interrupt`: once it returns true, SIGINT goes to the group, as a terminal's Ctrl-C does.
 */
export function make(cwd: string, args: string[], env: Record<string, string> = {}, interrupt?: () => Promise<boolean>): Promise<MakeResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('make', ['-s', ...args], { cwd, detached: true, env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? '/root', FORCE_COLOR: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    let done = false;
    if (interrupt) {
      void (async () => {
        while (!done && !(await interrupt())) await new Promise((r) => setTimeout(r, 100));
        if (!done) process.kill(-child.pid!, 'SIGINT');
      })();
    }
    child.on('error', reject);
    child.on('close', (code, signal) => {
      done = true;
      resolve({ code, signal, stdout, stderr });
    });
  });
}
