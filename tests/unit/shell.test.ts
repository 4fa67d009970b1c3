// run() with encoding 'buffer' returns the bytes the process wrote (binary-safe), apart from stderr.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { run } from '../../scripts/lib/shell.ts';
import { ToolError } from '../../scripts/lib/errors.ts';

test('binary stdout comes back byte for byte, without stderr', async () => {
  const r = await run(['sh', '-c', "printf '\\377\\000\\200\\303'; echo noise >&2"], { encoding: 'buffer' });
  assert.equal([...r.stdoutBuffer!], [0xff, 0x00, 0x80, 0xc3]);
  assert.is(r.stderr, 'noise\n');
});

test('binary run: input reaches stdin; a failure is a ToolError unless nothrow', async () => {
  const r = await run(['cat'], { encoding: 'buffer', input: Buffer.from([1, 2, 255]) });
  assert.equal([...r.stdoutBuffer!], [1, 2, 255]);
  try {
    await run(['sh', '-c', 'exit 3'], { encoding: 'buffer' });
    assert.unreachable('exit 3 must throw');
  } catch (e) {
    assert.instance(e, ToolError);
  }
  assert.is((await run(['sh', '-c', 'exit 3'], { encoding: 'buffer', nothrow: true })).code, 3);
});

test.run();
