// Output for people: step headers with timings, progress lines, and a final summary table.
import chalk from 'chalk';

// Set by scripts/cli.ts from --debug or METAL_DEBUG (scripts/lib/config.ts reads the environment).
let debugOn = false;
export function setDebug(v: boolean): void {
  debugOn = v;
}
export function isDebug(): boolean {
  return debugOn;
}
export function debug(msg: string): void {
  if (debugOn) process.stderr.write(chalk.gray(msg) + '\n');
}
export const dim = (s: string): string => chalk.gray(s);
export const bold = (s: string): string => chalk.bold(s);

export function info(msg: string): void {
  console.log(msg);
}
export function warn(msg: string): void {
  console.log(chalk.yellow(`warning: ${msg}`));
}

export interface StepTiming {
  name: string;
  seconds: number;
  status: 'ok' | 'failed' | 'skipped';
  note?: string;
}

/** Runs named steps, prints "==> name" and "<== name 12.3s", and keeps the timings. */
export class Steps {
  readonly timings: StepTiming[] = [];
  async run<T>(name: string, fn: () => Promise<T>): Promise<T> {
    console.log(chalk.cyan(`==> ${name}`));
    const t0 = performance.now();
    try {
      const r = await fn();
      const seconds = (performance.now() - t0) / 1000;
      // A step returns its note (a string) for the summary table.
      const note = typeof r === 'string' && r !== '' ? r : undefined;
      this.timings.push({ name, seconds, status: 'ok', ...(note ? { note } : {}) });
      console.log(chalk.cyan(`<== ${name} ${seconds.toFixed(1)}s`));
      return r;
    } catch (e) {
      const seconds = (performance.now() - t0) / 1000;
      this.timings.push({ name, seconds, status: 'failed' });
      console.log(chalk.red(`<== ${name} failed after ${seconds.toFixed(1)}s`));
      throw e;
    }
  }
  skip(name: string, note: string): void {
    console.log(chalk.yellow(`==> ${name} skipped: ${note}`));
    this.timings.push({ name, seconds: 0, status: 'skipped', note });
  }
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** Renders rows as an aligned plain-text table. */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n');
}

/** A single self-overwriting progress line on a TTY; periodic plain lines otherwise. */
export class Progress {
  private last = 0;
  private readonly t0 = performance.now();
  private readonly tty = Boolean(process.stdout.isTTY);
  constructor(private readonly label: string, private readonly intervalMs = 1000) {}
  update(bytes: number, force = false): void {
    const now = performance.now();
    if (!force && now - this.last < (this.tty ? 200 : this.intervalMs * 5)) return;
    this.last = now;
    const secs = (now - this.t0) / 1000;
    const rate = secs > 0 ? bytes / secs : 0;
    const line = `${this.label}: ${formatBytes(bytes)} in ${secs.toFixed(1)}s (${formatBytes(rate)}/s)`;
    if (this.tty) process.stdout.write(`\r${line}\x1b[K`);
    else console.log(line);
  }
  done(bytes: number): void {
    this.update(bytes, true);
    if (this.tty) process.stdout.write('\n');
  }
}
