// Peak memory and CPU of a process tree, sampled from /proc (Linux). The benchmark starts every
// candidate as one child process and samples the whole tree under it — the shell recipe's
// docker/lz4/md5sum processes, or the exporter's node process and its lz4 workers — so all
// candidates are measured the same way. Work done inside dockerd (which builds the tar that
// `docker export` streams) is outside every tree and counted for none.
import { readdirSync, readFileSync } from 'node:fs';

/** Pure: resident bytes from /proc/<pid>/statm ("size resident shared ..." in pages). */
export function parseStatmRss(statm: string, pageSize: number): number {
  const resident = Number(statm.trim().split(/\s+/)[1]);
  if (!Number.isFinite(resident)) throw new Error(`unexpected statm: ${statm}`);
  return resident * pageSize;
}

/** Pure: user+system clock ticks of the process itself from /proc/<pid>/stat (fields 14, 15). */
export function parseStatTicks(stat: string): number {
  // The command name (field 2) is in parentheses and may hold spaces: count from the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`unexpected stat: ${stat.slice(0, 80)}`);
  return utime + stime;
}

function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null; // the process exited between listing and reading
  }
}

/** The pid and all its descendants alive now (children of every thread, recursively). */
export function processTree(root: number): number[] {
  const out: number[] = [];
  const todo = [root];
  while (todo.length > 0) {
    const pid = todo.pop()!;
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    out.push(pid);
    for (const t of tasks) {
      const kids = readOrNull(`/proc/${pid}/task/${t}/children`);
      if (kids) for (const k of kids.trim().split(/\s+/)) if (k) todo.push(Number(k));
    }
  }
  return out;
}

export interface TreeUsage {
  /** Highest sum of RSS over the tree at one sample. */
  peakTreeRss: number;
  /** Highest RSS of one process. */
  peakProcessRss: number;
  /** CPU seconds (user+system) of every process seen, as last sampled (excludes dockerd). */
  cpuSeconds: number;
  samples: number;
}

/** Samples a process tree every `intervalMs` until stopped. */
export class TreeSampler {
  private timer: NodeJS.Timeout | null = null;
  private readonly ticks = new Map<number, number>();
  private usage: TreeUsage = { peakTreeRss: 0, peakProcessRss: 0, cpuSeconds: 0, samples: 0 };

  constructor(
    private readonly root: number,
    private readonly pageSize = 4096,
    private readonly ticksPerSecond = 100,
    private readonly intervalMs = 100,
  ) {}

  start(): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    return this;
  }

  private sample(): void {
    let total = 0;
    for (const pid of processTree(this.root)) {
      const statm = readOrNull(`/proc/${pid}/statm`);
      const stat = readOrNull(`/proc/${pid}/stat`);
      if (statm === null || stat === null) continue;
      const rss = parseStatmRss(statm, this.pageSize);
      total += rss;
      this.usage.peakProcessRss = Math.max(this.usage.peakProcessRss, rss);
      // pids are not reused within one run in practice; keep the highest reading per pid
      this.ticks.set(pid, Math.max(this.ticks.get(pid) ?? 0, parseStatTicks(stat)));
    }
    this.usage.peakTreeRss = Math.max(this.usage.peakTreeRss, total);
    this.usage.samples++;
  }

  stop(): TreeUsage {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    let t = 0;
    for (const v of this.ticks.values()) t += v;
    return { ...this.usage, cpuSeconds: t / this.ticksPerSecond };
  }
}

/** Pure: busy clock ticks of all CPUs from /proc/stat's first line (everything but idle and iowait). */
export function parseCpuBusyTicks(procStat: string): number {
  const f = procStat.split('\n')[0]!.trim().split(/\s+/);
  if (f[0] !== 'cpu') throw new Error(`unexpected /proc/stat: ${f.slice(0, 3).join(' ')}`);
  // user nice system idle iowait irq softirq steal (guest time is already in user)
  const [user, nice, system, , , irq, softirq, steal] = f.slice(1, 9).map(Number) as number[];
  return user! + nice! + system! + irq! + softirq! + (steal ?? 0);
}

/** Busy ticks of the whole machine, and of the docker daemons (whose work serves every candidate). */
export function machineTicks(): { busy: number; docker: number } {
  let docker = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const comm = readOrNull(`/proc/${d}/comm`)?.trim();
    if (comm !== 'dockerd' && comm !== 'containerd') continue;
    const stat = readOrNull(`/proc/${d}/stat`);
    if (stat) docker += parseStatTicks(stat);
  }
  return { busy: parseCpuBusyTicks(readFileSync('/proc/stat', 'utf8')), docker };
}
