// One writer per store prefix. A release (or promote) holds `<prefix>/.release-lock`, an object
// naming its run (host, boot, pid namespace, pid and its start time, checkout, user), created with
// If-None-Match: * and refreshed every 30 s with If-Match. Another run that finds it answers "busy"
// unless the holder is provably gone:
//   - it ran on this host, in this boot and pid namespace, and its process no longer exists, or
//   - the lock was not refreshed for LOCK_STALE_MS (its run was killed on another machine).
// Whatever a run finds half-done under the prefix once it holds the lock (unfinished multipart
// uploads begun before it took the lock) was left by a run that has ended or died, so only that
// is aborted; see publish.ts.
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { randomBytes } from 'node:crypto';
import { ROOT } from '../lib/config.ts';
import { onCleanup } from '../lib/cleanup.ts';
import { PreconditionError } from '../lib/errors.ts';
import { debug, warn } from '../lib/log.ts';
import { processAlive } from '../lib/shell.ts';
import type { Store } from './store.ts';

export const LOCK_NAME = '.release-lock';
export const LOCK_REFRESH_MS = 30_000;
/** A lock not refreshed for this long is abandoned: ten missed refreshes, and longer than a stalled request takes to fail. */
export const LOCK_STALE_MS = 5 * 60_000;

export interface LockRecord {
  token: string;
  /** release or promote. */
  command: string;
  host: string;
  /** /proc/sys/kernel/random/boot_id: a pid from an earlier boot is gone. */
  boot: string | null;
  /** /proc/self/ns/pid: pids are only comparable within one pid namespace (container). */
  pidns: string | null;
  pid: number;
  /** The process's start time (/proc/<pid>/stat), so a reused pid is not taken for the holder. */
  pidStart: string | null;
  checkout: string;
  user: string;
  started: string;
}

/** This machine, for judging a lock. */
export interface Here {
  host: string;
  boot: string | null;
  pidns: string | null;
  alive(pid: number, pidStart: string | null): boolean;
}

function readOrNull(f: () => string): string | null {
  try {
    return f().trim() || null;
  } catch {
    return null;
  }
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks after boot), or null. */
function processStart(pid: number | 'self'): string | null {
  const stat = readOrNull(() => readFileSync(`/proc/${pid}/stat`, 'utf8'));
  if (!stat) return null;
  // the command name (field 2) is in parentheses and may hold spaces: count from the last ")"
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
}

export function here(): Here {
  return {
    host: hostname(),
    boot: readOrNull(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8')),
    pidns: readOrNull(() => readlinkSync('/proc/self/ns/pid')),
    alive: (pid, pidStart) => processAlive(pid) && (pidStart === null || processStart(pid) === null || processStart(pid) === pidStart),
  };
}

export function thisRun(command: string, now = new Date()): LockRecord {
  const h = here();
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    /* no passwd entry */
  }
  return { token: randomBytes(12).toString('hex'), command, host: h.host, boot: h.boot, pidns: h.pidns, pid: process.pid, pidStart: processStart('self'), checkout: ROOT, user, started: now.toISOString() };
}

/** Pure: the lock text, and the record from a lock's text (null if it is not one). */
export function formatLock(r: LockRecord): string {
  return `${JSON.stringify(r, null, 2)}\n`;
}
export function parseLock(text: string): LockRecord | null {
  try {
    const r = JSON.parse(text) as Partial<LockRecord>;
    if (typeof r.token !== 'string' || typeof r.host !== 'string' || typeof r.pid !== 'number') return null;
    return { command: 'release', boot: null, pidns: null, pidStart: null, checkout: '?', user: '?', started: '?', ...r } as LockRecord;
  } catch {
    return null;
  }
}

export function describeHolder(r: LockRecord | null): string {
  if (!r) return 'a run whose lock cannot be read';
  return `${r.command} by ${r.user}@${r.host} (pid ${r.pid}, checkout ${r.checkout}), started ${r.started}`;
}

export type Verdict = { held: true; why: string } | { held: false; why: string };

function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 120 ? `${s} s` : `${Math.round(s / 60)} min`;
}

/**
 * Pure: does a lock's holder still hold it? `refreshed` is the lock object's LastModified (the
 * server's clock, as is `now` up to the clocks' difference, which LOCK_STALE_MS absorbs).
 */
export function judgeLock(r: LockRecord | null, refreshed: Date | undefined, now: Date, h: Here): Verdict {
  if (r && r.host === h.host && r.boot !== null && h.boot !== null && r.boot !== h.boot) return { held: false, why: `${r.host} has rebooted since` };
  if (r && r.host === h.host && r.boot === h.boot && r.pidns === h.pidns) {
    return h.alive(r.pid, r.pidStart) ? { held: true, why: `process ${r.pid} is running` } : { held: false, why: `its process ${r.pid} on ${r.host} is gone` };
  }
  const age = refreshed ? now.getTime() - refreshed.getTime() : Infinity;
  if (age > LOCK_STALE_MS) return { held: false, why: `not refreshed for ${ago(age)} (abandoned after ${ago(LOCK_STALE_MS)})` };
  return { held: true, why: `refreshed ${ago(age)} ago` };
}

export class PrefixLock {
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | null = null;
  private lost: string | null = null;
  private released = false;

  private constructor(
    private readonly store: Store,
    readonly prefix: string,
    readonly key: string,
    private readonly record: LockRecord,
    private etag: string,
    /** When the lock became ours, by the server's clock (second precision). */
    readonly acquiredAt: Date,
    /** The dead or stale holder this run took the lock from, and why it counted as gone; null if the lock was free. */
    readonly tookOver: string | null,
  ) {}

  /**
   * Take the lock on a prefix, or fail with a one-line "busy" naming the holder. `rerun` is the
   * command to name in the fix (make release, make promote DATE=...).
   */
  static async acquire(store: Store, prefix: string, command: string, rerun: string, o: { now?: () => Date; here?: Here } = {}): Promise<PrefixLock> {
    const key = `${prefix}/${LOCK_NAME}`;
    const now = o.now ?? (() => new Date());
    const h = o.here ?? here();
    const me = thisRun(command, now());
    const body = Buffer.from(formatLock(me));
    const busy = (holder: LockRecord | null, why: string): PreconditionError =>
      new PreconditionError(
        `${prefix}/ is busy: ${describeHolder(holder)} holds it (${why})`,
        `wait for it to finish, then re-run ${rerun} (a lock not refreshed for ${ago(LOCK_STALE_MS)} counts as abandoned)`,
      );
    for (let round = 0; round < 3; round++) {
      const head = await store.head(key);
      let etag: string | null;
      let tookOver: string | null = null;
      if (!head) {
        etag = await store.putIfAbsent(key, body, 'application/json');
      } else {
        const holder = parseLock((await store.getBytes(key))?.toString('utf8') ?? '');
        const v = judgeLock(holder, head.lastModified, now(), h);
        if (v.held) throw busy(holder, v.why);
        tookOver = `${describeHolder(holder)}: ${v.why}`;
        etag = await store.putIfMatch(key, body, 'application/json', head.etag);
      }
      if (etag === null) continue; // another run wrote the lock in between: look again
      // Servers that ignore If-None-Match/If-Match would let two runs "create" the lock: the one
      // whose token is not read back lost.
      const back = parseLock((await store.getBytes(key))?.toString('utf8') ?? '');
      if (back?.token !== me.token) throw busy(back, 'it took the lock at the same moment');
      const mine = await store.head(key);
      const lock = new PrefixLock(store, prefix, key, me, mine?.etag ?? etag, mine?.lastModified ?? now(), tookOver);
      lock.start();
      return lock;
    }
    throw busy(null, 'it keeps changing the lock');
  }

  private start(): void {
    this.timer = setInterval(() => {
      if (!this.refreshing) this.refreshing = this.refresh().finally(() => (this.refreshing = null));
    }, LOCK_REFRESH_MS);
    this.timer.unref();
    // Ctrl-C: the CLI runs the cleanups before it exits (release() is idempotent).
    onCleanup(`release the lock on ${this.prefix}/`, () => this.release());
  }

  private async refresh(): Promise<void> {
    if (this.lost || this.released) return;
    try {
      const etag = await this.store.putIfMatch(this.key, Buffer.from(formatLock(this.record)), 'application/json', this.etag);
      if (etag !== null) {
        this.etag = etag;
        return;
      }
      const holder = parseLock((await this.store.getBytes(this.key))?.toString('utf8') ?? '');
      this.lost = holder ? `${describeHolder(holder)} took it over` : 'the lock was removed';
    } catch (e) {
      debug(`lock: refreshing ${this.key} failed: ${(e as Error).message} (the store's own requests report it)`);
    }
  }

  /** Before each write that others rely on (every object, the .md5 above all): is the lock still ours? */
  assertHeld(): void {
    if (this.lost) throw new PreconditionError(`lost the lock on ${this.prefix}/ while writing it: ${this.lost}`, `let the other run finish, then re-run it`);
  }

  /**
   * Give the lock up (only if it is still ours), with one short attempt per request: it runs on
   * the way out, perhaps because the store stalled. Never throws. A refresh still in flight is not
   * waited for: it writes only if the lock is unchanged (If-Match), which it no longer is.
   */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    clearInterval(this.timer);
    try {
      const now = parseLock((await this.store.getBytes(this.key, { once: true }))?.toString('utf8') ?? '');
      if (now?.token === this.record.token) await this.store.delete(this.key, { once: true });
    } catch (e) {
      warn(`could not remove the lock ${this.key} (${(e as Error).message}); the next run takes it over (on this host at once, elsewhere after ${ago(LOCK_STALE_MS)})`);
    }
  }
}
