// Local exclusive locks (one file each, created with O_EXCL): one per artifact set, so two exports
// of one image in one checkout cannot interleave. A lock whose owner is provably dead (see
// ownership.ts) is taken over; a live one is a one-line refusal naming its owner.
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { onCleanup } from './cleanup.ts';
import { PreconditionError } from './errors.ts';
import { describeOwner, isAbandoned, self, type Owner } from './ownership.ts';

export interface Lock {
  path: string;
  release(): Promise<void>;
}

function readOwner(path: string): (Partial<Owner> & { since?: string }) | null {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Partial<Owner> & { since?: string };
  } catch {
    return null;
  }
}

/** Take the lock at `path` for `what` (e.g. "the export of images/debian/12"), or refuse. */
export function acquireLock(path: string, what: string): Lock {
  mkdirSync(dirname(path), { recursive: true });
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o644);
      writeSync(fd, `${JSON.stringify({ ...self(), since: new Date().toISOString() })}\n`);
      closeSync(fd);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw e;
      const owner = readOwner(path);
      // unreadable (a writer died between create and write) or provably dead: take it over
      if (owner === null || isAbandoned(owner)) {
        rmSync(path, { force: true });
        continue;
      }
      throw new PreconditionError(
        `${what} is in progress elsewhere: ${describeOwner(owner)} holds ${path}${owner.since ? ` since ${owner.since}` : ''}`,
        `wait for it to finish (or, if that process is gone for good, remove ${path})`,
      );
    }
  }
  const release = onCleanup(`release ${path}`, () => {
    const owner = readOwner(path);
    if (owner?.pid === process.pid) rmSync(path, { force: true });
  });
  return { path, release };
}
