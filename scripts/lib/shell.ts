// The one module that runs commands. Commands are argv arrays handed to zx, which
// quotes every element. Writes are skipped under dry-run; reads always run. A failed process
// becomes a ToolError naming the command, its exit code and what that code means.
import { $, ProcessOutput, type ProcessPromise } from 'zx';
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { ToolError } from './errors.ts';
import { debug, dim } from './log.ts';

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string | Buffer;
  /** A write (side effect): printed and skipped when dry-run is on. */
  write?: boolean;
  /** Stream the command's output to the terminal instead of capturing it. */
  inherit?: boolean;
  /** Return the result instead of throwing on a nonzero exit. */
  nothrow?: boolean;
  timeoutMs?: number;
  /** Printed after the cause when the command fails. */
  hint?: string;
  /** Print the command line before running it (default: only with --debug). */
  echo?: boolean;
  /** Also return stdout as raw bytes (binary output, e.g. a tar). */
  encoding?: 'buffer';
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Raw stdout, with `encoding: 'buffer'` only. */
  stdoutBuffer?: Buffer;
}

let dryRun = false;
export function setDryRun(v: boolean): void {
  dryRun = v;
}
export function isDryRun(): boolean {
  return dryRun;
}

/** Render argv the way a person would type it (for logs and error messages). */
export function formatCommand(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

function tail(text: string, lines = 15): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

export async function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const line = formatCommand(argv);
  if (opts.write && dryRun) {
    console.log(dim(`[dry-run] ${line}`));
    return { code: 0, stdout: '', stderr: '' };
  }
  if (opts.echo) console.log(dim(`$ ${line}`));
  else debug(`$ ${line}`);
  if (opts.encoding === 'buffer') return runBinary(argv, line, opts);
  const sh = $({
    cwd: opts.cwd,
    env: opts.env ? { ...process.env, ...opts.env } : process.env,
    input: opts.input,
    quiet: true,
    verbose: false,
    nothrow: true,
    stdio: opts.inherit ? ['pipe', 'inherit', 'inherit'] : ['pipe', 'pipe', 'pipe'],
    timeout: opts.timeoutMs,
  });
  let out: ProcessOutput;
  try {
    out = await sh`${argv}`;
  } catch (e) {
    out = e instanceof ProcessOutput ? e : ProcessOutput.fromError(e as Error);
  }
  const result: RunResult = { code: out.exitCode, stdout: out.stdout, stderr: out.stderr };
  if (out.exitCode !== 0 && !opts.nothrow) {
    throw new ToolError(line, out.exitCode, out.signal, tail(out.stderr || out.stdout), opts.hint);
  }
  return result;
}

/**
 * `run` for binary stdout: zx's output is text (its buffer() re-encodes the decoded string, with
 * stderr mixed in), which corrupts bytes that are not UTF-8 — a decompressed kernel module came
 * back 93171 bytes instead of 75016. Here stdout is collected as the bytes the process wrote.
 */
async function runBinary(argv: readonly string[], line: string, opts: RunOptions): Promise<RunResult> {
  const child = spawn(argv[0]!, argv.slice(1), { cwd: opts.cwd, env: opts.env ? { ...process.env, ...opts.env } : process.env, stdio: ['pipe', 'pipe', 'pipe'], timeout: opts.timeoutMs });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (b: Buffer) => out.push(b));
  child.stderr.on('data', (b: Buffer) => err.push(b));
  child.stdin.on('error', () => {});
  child.stdin.end(opts.input ?? '');
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((res) => {
    child.once('error', (e) => {
      err.push(Buffer.from(`${e.message}\n`));
      res([127, null]);
    });
    child.once('close', (c, sig) => res([c, sig]));
  });
  const stdoutBuffer = Buffer.concat(out);
  const result: RunResult = { code, stdout: stdoutBuffer.toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), stdoutBuffer };
  if (code !== 0 && !opts.nothrow) throw new ToolError(line, code, signal, tail(result.stderr || result.stdout), opts.hint);
  return result;
}

/** Run and return trimmed stdout. */
export async function read(argv: readonly string[], opts: Omit<RunOptions, 'write'> = {}): Promise<string> {
  return (await run(argv, opts)).stdout.trim();
}

/** Is an executable on PATH? Returns its path or null. */
export async function which(tool: string): Promise<string | null> {
  const r = await run(['sh', '-c', 'command -v "$1"', 'sh', tool], { nothrow: true });
  return r.code === 0 ? r.stdout.trim() || null : null;
}

export interface Streaming {
  child: ChildProcess;
  stdout: Readable;
  stdin: Writable | null;
  /** Resolves when the process exits 0, rejects with a ToolError otherwise. */
  done: Promise<void>;
  kill(): void;
}

/**
 * Start a long-running process whose stdout is consumed as a stream (docker export, lz4, qemu).
 * stderr is collected for the error message. The caller must await `done`.
 *
 * `stdin` may be another process's stdout (a pipe): it is handed over, not copied. The child
 * reads the pipe itself and this process closes its own end at once, so the bytes flow from one
 * process to the next without passing through node (as in a shell pipeline).
 */
export function stream(argv: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; stdin?: 'pipe' | 'ignore' | Readable; stdout?: 'pipe' | 'ignore' | number; hint?: string } = {}): Streaming {
  const line = formatCommand(argv);
  debug(`$ ${line}`);
  if (typeof opts.stdin === 'object' && (opts.stdin.readableLength > 0 || opts.stdin.readableDidRead)) {
    // Bytes node already took from the pipe would be missing from the child's input.
    throw new Error(`${line}: its stdin stream was already read from; hand a process's stdout over in the tick it was created`);
  }
  const [cmd, ...args] = argv as [string, ...string[]];
  const child = spawn(cmd, args, {
    cwd: opts.cwd,
    env: opts.env ? { ...process.env, ...opts.env } : process.env,
    stdio: [opts.stdin ?? 'ignore', opts.stdout ?? 'pipe', 'pipe'],
  });
  // Handed over: close our end before the event loop could read from it (nothing has, yet).
  if (typeof opts.stdin === 'object') opts.stdin.destroy();
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-8192);
  });
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', (e: NodeJS.ErrnoException) => {
      reject(new ToolError(line, e.code === 'ENOENT' ? 127 : null, null, e.message, opts.hint));
    });
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new ToolError(line, code, signal, tail(stderr), opts.hint));
    });
  });
  done.catch(() => {}); // observed by the caller; avoid an unhandled rejection if it is not awaited yet
  return {
    child,
    stdout: child.stdout as Readable,
    stdin: child.stdin,
    done,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    },
  };
}

export type { ProcessPromise };

/** Does a process with this pid exist? (EPERM: it does, it belongs to someone else.) */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Start a daemon that outlives this process (dockerd, an S3 server): output to a log file,
 * own process group, not waited for. Returns its pid.
 */
export async function spawnDetached(argv: readonly string[], logFile: string, env?: NodeJS.ProcessEnv): Promise<number> {
  const { openSync, closeSync } = await import('node:fs');
  debug(`$ ${formatCommand(argv)} >${logFile} 2>&1 &`);
  const fd = openSync(logFile, 'a');
  const [cmd, ...args] = argv as [string, ...string[]];
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', fd, fd], env: env ? { ...process.env, ...env } : process.env });
  closeSync(fd);
  const pid = await new Promise<number>((resolve, reject) => {
    child.once('error', (e: NodeJS.ErrnoException) => reject(new ToolError(formatCommand(argv), e.code === 'ENOENT' ? 127 : null, null, e.message)));
    child.once('spawn', () => resolve(child.pid!));
  });
  child.unref();
  return pid;
}
