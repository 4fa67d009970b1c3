// Who owns a thing this project leaves behind while it works (a container, a lock, a mount): the
// process, its PID namespace, the host and the checkout. A sweep may remove something only when it
// is provably its own and dead: same host, same PID namespace (so the pid means the same process),
// same checkout, and that pid no longer runs. Anything else (another checkout on the same daemon,
// a run inside a container, another machine sharing the docker host) is left alone.
import { readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { ROOT } from './config.ts';
import { processAlive } from './shell.ts';

export interface Owner {
  pid: number;
  host: string;
  /** e.g. pid:[4026531836]; '' where /proc cannot tell. */
  pidns: string;
  /** The checkout's absolute path. */
  checkout: string;
}

export function self(): Owner {
  let pidns = '';
  try {
    pidns = readlinkSync('/proc/self/ns/pid');
  } catch {
    // no /proc: pids cannot be compared with certainty, so nothing will count as provably dead
  }
  return { pid: process.pid, host: hostname(), pidns, checkout: ROOT };
}

/** Pure: may `me` remove what `owner` left? Only its own (same host, PID namespace and checkout) and only when dead. */
export function provablyAbandoned(owner: Partial<Owner>, me: Owner, alive: (pid: number) => boolean): boolean {
  if (!owner.pid || !Number.isInteger(owner.pid) || owner.pid <= 0) return false;
  if (owner.host !== me.host || owner.checkout !== me.checkout) return false;
  if (!owner.pidns || owner.pidns !== me.pidns) return false;
  return !alive(owner.pid);
}

export function isAbandoned(owner: Partial<Owner>): boolean {
  return provablyAbandoned(owner, self(), processAlive);
}

/** Pure: one line naming an owner, for messages. */
export function describeOwner(o: Partial<Owner>): string {
  return `pid ${o.pid ?? '?'} on ${o.host ?? '?'}${o.checkout ? ` (checkout ${o.checkout})` : ''}`;
}
