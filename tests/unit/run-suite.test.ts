// The suite runner repeats each failure at the end of the output, where a log that keeps only
// its tail (CI's) still shows which test failed and why.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { failureBlocks } from '../helpers/failures.ts';

const run = spawnSync(process.execPath, ['--import', 'tsx', 'tests/helpers/run-suite.ts', 'tests/fixtures/uvu-suite'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' } });

test('a failing suite ends with its failures, after uvu\'s summary, and exits 1', () => {
  assert.is(run.status, 1, run.stderr);
  const summary = run.stdout.lastIndexOf('Duration:');
  assert.ok(summary > 0, run.stdout);
  const tail = run.stdout.slice(summary);
  assert.match(tail, /\n1 failed in tests\/fixtures\/uvu-suite \(repeated from above\):\n/);
  assert.match(tail, /FAIL {2}"fails with its reason"\n\s+one and one make three.*\n[\s\S]*--2\s+\(Actual\)[\s\S]*a\.test\.ts:12/);
  assert.not.match(tail, /a log line that is no failure/);
  assert.match(run.stdout, /Total:\s+5/);
});

test('failureBlocks: one block per FAIL header, its indented and empty lines up to the next header or unindented line', () => {
  const out = '\x1b[1m   FAIL  "a"\x1b[22m\n    Expected 1\n\n        ++1 (Expected)\n    at x\n\n   FAIL  "b"\n    boom\n\n\nnext.test.ts\n  Total: 2\n';
  assert.equal(failureBlocks(out), ['   FAIL  "a"\n    Expected 1\n\n        ++1 (Expected)\n    at x', '   FAIL  "b"\n    boom']);
  assert.equal(failureBlocks('FAIL: not uvu\n   FAIL  not quoted\n'), []);
});

test('a passing suite adds nothing and exits 0', () => {
  const ok = spawnSync(process.execPath, ['--import', 'tsx', 'tests/helpers/run-suite.ts', 'tests/fixtures/uvu-suite', '-i', 'a'], { encoding: 'utf8' });
  assert.is(ok.status, 0, ok.stdout + ok.stderr);
  assert.not.match(ok.stdout, /repeated from above/);
});

test.run();
