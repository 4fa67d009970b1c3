// What the CLI prints for a failure.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PreconditionError, ToolError, failureReport } from '../../scripts/lib/errors.ts';

test('a full disk gets a hint that is safe on a shared host (no docker system prune)', () => {
  const e = Object.assign(new Error("ENOSPC: no space left on device, write '/work/x/images/debian/12/img.tar.lz4.partial'"), {
    code: 'ENOSPC',
    path: '/work/x/images/debian/12/img.tar.lz4.partial',
  });
  const r = failureReport(e);
  assert.is(r.exitCode, 3);
  assert.is(r.message, 'no space left on device writing /work/x/images/debian/12/img.tar.lz4.partial');
  assert.is(r.hint, 'free space on the file system of /work/x/images/debian/12 (df -h /work/x/images/debian/12) by removing files of your own there, e.g. images/<os>/<version> folders you no longer need, then re-run');
  assert.not.match(r.hint!, /prune|docker/);
  assert.is(failureReport(Object.assign(new Error('x'), { code: 'ENOSPC' })).hint!.startsWith('free space on the file system of . (df -h .)'), true);
});

test('typed errors keep their exit code, hint and the tool\'s stderr; anything else is unexpected (exit 1)', () => {
  assert.equal(failureReport(new PreconditionError('S3_BUCKET is not set', 'set S3_BUCKET in .env')), { message: 'S3_BUCKET is not set', hint: 'set S3_BUCKET in .env', detail: undefined, exitCode: 3, unexpected: false });
  const t = failureReport(new ToolError('lz4 -5', 1, null, 'lz4: bad'));
  assert.equal([t.message, t.detail, t.exitCode, t.unexpected], ['lz4 -5 exited 1 (general error)', 'lz4: bad', 1, false]);
  assert.equal(failureReport(new TypeError('x is undefined')), { message: 'x is undefined', hint: undefined, detail: undefined, exitCode: 1, unexpected: true });
});

test.run();
