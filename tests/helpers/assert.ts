// Shared assertions for the unit tests.
import * as assert from 'uvu/assert';
import { UsageError } from '../../scripts/lib/errors.ts';

/** fn must throw a UsageError with exactly this message (and this hint, when given). */
export function throwsUsage(fn: () => unknown, message: string, hint?: string): void {
  try {
    fn();
  } catch (e) {
    assert.instance(e, UsageError);
    assert.is((e as UsageError).message, message);
    if (hint !== undefined) assert.is((e as UsageError).hint, hint);
    return;
  }
  assert.unreachable(`expected UsageError: ${message}`);
}
