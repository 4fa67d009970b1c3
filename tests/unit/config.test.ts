// .env.example promises to list every key the scripts read: hold it to that.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KEYS, ROOT } from '../../scripts/lib/config.ts';

test('.env.example documents every key in KEYS (the CI providers\' variables are named in a comment)', () => {
  const text = readFileSync(join(ROOT, '.env.example'), 'utf8');
  const missing = KEYS.filter((k) => !new RegExp(`^${k}=`, 'm').test(text) && !new RegExp(`\\b${k}\\b`).test(text));
  assert.equal(missing, []);
  const settable = KEYS.filter((k) => !k.startsWith('CI') && !k.startsWith('GITHUB_'));
  assert.equal(settable.filter((k) => !new RegExp(`^${k}=`, 'm').test(text)), [], 'settable keys have a KEY= line');
});

test.run();
