// Typed errors. Every failure the operator can act on is one of these; scripts/cli.ts turns them
// into an exit code and a one-line message (stack traces only with --debug).

export type ErrorKind = 'usage' | 'precondition' | 'tool' | 'interrupted';

const EXIT: Record<ErrorKind, number> = { usage: 2, precondition: 3, tool: 1, interrupted: 130 };

export class MetalError extends Error {
  readonly kind: ErrorKind;
  /** The command or action that fixes it, printed after the cause. */
  readonly hint: string | undefined;
  constructor(kind: ErrorKind, message: string, hint?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
    this.hint = hint;
    this.name = new.target.name;
  }
  get exitCode(): number {
    return EXIT[this.kind];
  }
}

/** Bad arguments or input files: exit 2. */
export class UsageError extends MetalError {
  constructor(message: string, hint?: string) {
    super('usage', message, hint);
  }
}

/** A missing tool, daemon, credential, base image or disk space: exit 3. */
export class PreconditionError extends MetalError {
  constructor(message: string, hint?: string, options?: { cause?: unknown }) {
    super('precondition', message, hint, options);
  }
}

/** A command that ran and failed: exit 1. */
export class ToolError extends MetalError {
  readonly command: string;
  readonly code: number | null;
  readonly stderrTail: string;
  readonly signal: string | null;
  constructor(command: string, code: number | null, signal: string | null, stderrTail: string, hint?: string) {
    super('tool', `${command} ${describeExit(code, signal)}`, hint);
    this.command = command;
    this.code = code;
    this.signal = signal;
    this.stderrTail = stderrTail;
  }
}

export class InterruptedError extends MetalError {
  constructor(signal: string) {
    super('interrupted', `interrupted by ${signal}; partial artifacts were removed`, 're-run the same make target');
  }
}

/** Human meaning of a process exit, e.g. "exited 127 (command not found)". */
export function describeExit(code: number | null, signal: string | null): string {
  if (signal) return `was killed by ${signal}`;
  if (code === null) return 'did not exit';
  const meaning: Record<number, string> = {
    1: 'general error',
    2: 'misuse or bad arguments',
    125: 'docker itself failed',
    126: 'not executable',
    127: 'command not found',
    130: 'interrupted (Ctrl-C)',
    137: 'killed (SIGKILL, often out of memory)',
    143: 'terminated (SIGTERM)',
  };
  const m = meaning[code];
  return m ? `exited ${code} (${m})` : `exited ${code}`;
}

/** What the CLI prints for a failure: the one-line cause, the fix, a tail of a tool's stderr, the exit code. */
export interface FailureReport {
  message: string;
  hint: string | undefined;
  detail: string | undefined;
  exitCode: number;
  /** Not a typed error: a bug or an unforeseen failure, worth a stack trace. */
  unexpected: boolean;
}

/**
 * Pure: the report for anything a command threw. A full disk gets a hint that touches only what
 * the disk holds of this project: the host and its docker daemon may be shared, so nothing here
 * suggests pruning images, containers or caches that others use.
 */
export function failureReport(e: unknown): FailureReport {
  if (e instanceof MetalError) {
    return { message: e.message, hint: e.hint, detail: e instanceof ToolError && e.stderrTail ? e.stderrTail : undefined, exitCode: e.exitCode, unexpected: false };
  }
  const err = e as NodeJS.ErrnoException | undefined;
  if (err?.code === 'ENOSPC') {
    const dir = err.path ? err.path.replace(/\/[^/]*$/, '') || '/' : '.';
    return {
      message: `no space left on device${err.path ? ` writing ${err.path}` : ''}`,
      hint: `free space on the file system of ${dir} (df -h ${dir}) by removing files of your own there, e.g. images/<os>/<version> folders you no longer need, then re-run`,
      detail: undefined,
      exitCode: 3,
      unexpected: false,
    };
  }
  return { message: err?.message ?? String(e), hint: undefined, detail: undefined, exitCode: 1, unexpected: true };
}
