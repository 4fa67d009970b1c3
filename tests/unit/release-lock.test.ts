// When a prefix lock's holder counts as gone (scripts/release/lock.ts), as pure logic.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LOCK_STALE_MS, describeHolder, formatLock, judgeLock, parseLock, type Here, type LockRecord } from '../../scripts/release/lock.ts';

const rec: LockRecord = {
  token: 't1',
  command: 'release',
  host: 'ci-1',
  boot: 'boot-a',
  pidns: 'pid:[4026531836]',
  pid: 4242,
  pidStart: '1234567',
  checkout: '/builds/metal-images',
  user: 'runner',
  started: '2024-02-29T12:00:00.000Z',
};
const now = new Date('2024-02-29T12:10:00Z');
const fresh = new Date(now.getTime() - 10_000);
const old = new Date(now.getTime() - LOCK_STALE_MS - 1000);
const on = (h: Partial<Here>, alive: boolean): Here => ({ host: 'ci-1', boot: 'boot-a', pidns: 'pid:[4026531836]', alive: () => alive, ...h });

test('a lock of a live run is held, wherever it runs', () => {
  assert.equal(judgeLock(rec, fresh, now, on({}, true)), { held: true, why: 'process 4242 is running' });
  // same host, alive, even if not refreshed for long (a run suspended with its machine): still held
  assert.equal(judgeLock(rec, old, now, on({}, true)).held, true);
  // another host: refreshed 10 s ago
  assert.equal(judgeLock(rec, fresh, now, on({ host: 'laptop' }, false)), { held: true, why: 'refreshed 10 s ago' });
  // same host name, other pid namespace (a container): the pid says nothing, the refresh does
  assert.equal(judgeLock(rec, fresh, now, on({ pidns: 'pid:[4026532000]' }, false)).held, true);
});

test('a lock is gone when its process on this host is, or when it was not refreshed for 5 min', () => {
  assert.equal(judgeLock(rec, fresh, now, on({}, false)), { held: false, why: 'its process 4242 on ci-1 is gone' });
  assert.equal(judgeLock(rec, fresh, now, on({ boot: 'boot-b' }, true)), { held: false, why: 'ci-1 has rebooted since' });
  assert.equal(judgeLock(rec, old, now, on({ host: 'laptop' }, true)), { held: false, why: 'not refreshed for 5 min (abandoned after 5 min)' });
  // an unreadable lock is judged by its age alone
  assert.equal(judgeLock(null, fresh, now, on({}, false)).held, true);
  assert.equal(judgeLock(null, old, now, on({}, false)).held, false);
});

test('lock text round trip and the holder in messages', () => {
  assert.equal(parseLock(formatLock(rec)), rec);
  assert.is(parseLock('not json'), null);
  assert.is(parseLock('{"token": 1}'), null);
  assert.is(describeHolder(rec), 'release by runner@ci-1 (pid 4242, checkout /builds/metal-images), started 2024-02-29T12:00:00.000Z');
});

test.run();
