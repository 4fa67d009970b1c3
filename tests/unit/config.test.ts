// The configuration: one precedence rule (make's command line > environment > .env, empty = not
// set), a strict .env, and .env.example listing every key.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KEYS, ROOT, makeArgs, parseDotenv, resolveEnv } from '../../scripts/lib/config.ts';
import { withMakeArgs } from '../../scripts/lib/args.ts';
import { throwsUsage as usage } from '../helpers/assert.ts';

test('.env.example documents every key in KEYS (the CI providers\' variables are named in a comment)', () => {
  const text = readFileSync(join(ROOT, '.env.example'), 'utf8');
  const missing = KEYS.filter((k) => !new RegExp(`^${k}=`, 'm').test(text) && !new RegExp(`\\b${k}\\b`).test(text));
  assert.equal(missing, []);
  const settable = KEYS.filter((k) => !k.startsWith('CI') && !k.startsWith('GITHUB_'));
  assert.equal(settable.filter((k) => !new RegExp(`^${k}=`, 'm').test(text)), [], 'settable keys have a KEY= line');
  // and .env.example itself is a valid .env (every line parses, every key is known)
  const parsed = Object.keys(parseDotenv(text, '.env.example'));
  assert.equal(settable.filter((k) => !parsed.includes(k)), []);
});

test('an empty environment value does not hide .env: DRY_RUN=1 in .env holds under make', () => {
  // make's `export DRY_RUN` put DRY_RUN= (empty) into the environment of every recipe
  assert.is(resolveEnv({ DRY_RUN: '' }, 'DRY_RUN=1\n').DRY_RUN, '1');
  assert.is(resolveEnv({ DRY_RUN: '', PUBLISH_PREFIX: '' }, 'PUBLISH_PREFIX=metal-os/stable\n').PUBLISH_PREFIX, 'metal-os/stable');
  // one rule for every key: make's command line, then the environment, then .env
  assert.is(resolveEnv({ METAL_MAKE_DRY_RUN: '0', DRY_RUN: '1' }, 'DRY_RUN=1\n').DRY_RUN, '0');
  assert.is(resolveEnv({ DRY_RUN: '0' }, 'DRY_RUN=1\n').DRY_RUN, '0');
  assert.is(resolveEnv({ METAL_MAKE_DRY_RUN: '' }, 'DRY_RUN=1\n').DRY_RUN, '1');
  assert.equal(resolveEnv({ S3_BUCKET: '', UNRELATED: 'x' }, 'S3_BUCKET=\n'), {});
});

test('FORCE in the environment forces nothing; FORCE=1 on the make command line is METAL_FORCE=1', () => {
  assert.is(resolveEnv({ FORCE: '1' }).METAL_FORCE, undefined);
  assert.is(resolveEnv({ METAL_MAKE_FORCE: '1' }).METAL_FORCE, '1');
  assert.is(resolveEnv({ METAL_MAKE_METAL_FORCE: '1' }).METAL_FORCE, '1');
  assert.is(resolveEnv({ METAL_FORCE: '1' }).METAL_FORCE, '1');
  usage(() => resolveEnv({}, 'FORCE=1\n'), '.env:1: unknown key FORCE (it is called METAL_FORCE now)', 'rename it to METAL_FORCE, or remove line 1 (every key is listed in .env.example)');
});

test('.env: a "#" in an unquoted value is an error naming the line, not a silently cut secret', () => {
  const text = '# store\nS3_BUCKET=images\nS3_SECRET_ACCESS_KEY=abc#def\n';
  usage(
    () => resolveEnv({}, text),
    '.env:3: the value of S3_SECRET_ACCESS_KEY contains "#", which .env readers take for the start of a comment',
    "quote the value in .env: S3_SECRET_ACCESS_KEY='...' (or move the comment to a line of its own)",
  );
  // the secret itself is never shown
  try {
    resolveEnv({}, text);
  } catch (e) {
    assert.not.ok(`${(e as Error).message} ${(e as { hint?: string }).hint}`.includes('abc#def'));
  }
  // quoted, the whole value is kept; a comment after the quotes is a comment
  assert.is(resolveEnv({}, "S3_SECRET_ACCESS_KEY='abc#def'\n").S3_SECRET_ACCESS_KEY, 'abc#def');
  assert.is(resolveEnv({}, 'S3_SECRET_ACCESS_KEY="a\\"b#c" # the key\n').S3_SECRET_ACCESS_KEY, 'a"b#c');
  assert.is(resolveEnv({}, 'export S3_BUCKET = images  \r\n').S3_BUCKET, 'images');
  usage(() => resolveEnv({}, "S3_SECRET_ACCESS_KEY='abc\n"), ".env:1: the value of S3_SECRET_ACCESS_KEY opens a ' quote that the line does not close");
});

test('.env: an unknown key is an error naming the line and the key it likely meant', () => {
  usage(() => resolveEnv({}, 'DRY_RUN=\nDRY_RUM=1\n', 'images/.env'), 'images/.env:2: unknown key DRY_RUM', 'rename it to DRY_RUN, or remove line 2 (every key is listed in .env.example)');
  usage(() => resolveEnv({}, 'COLOUR=blue\n'), '.env:1: unknown key COLOUR', 'remove line 1 (every key is listed in .env.example)');
  usage(() => resolveEnv({}, 'S3_BUCKET=a\nS3_BUCKET=b\n'), '.env:2: S3_BUCKET is set twice (also on line 1)');
  usage(() => resolveEnv({}, 'just words\n'), '.env:1: not a KEY=value line');
  usage(() => resolveEnv({}, 'METAL_ENV_FILE=/x\n'), '.env:1: METAL_ENV_FILE names the file to read and cannot be set inside it');
});

test('make variables: known names only, OS and PREFIX as arguments, VARIANT as the variant', () => {
  usage(() => resolveEnv({ METAL_MAKE_DRYRUN: '1' }), 'make variable DRYRUN is not known', 'drop DRYRUN=... from the make command line (known: OS, PREFIX, FORCE and the keys in .env.example)');
  assert.equal(makeArgs({ METAL_MAKE_OS: 'x; echo INJECTED', METAL_MAKE_PREFIX: '', OS: 'ignored' }), { OS: 'x; echo INJECTED' });
  const env = resolveEnv({ METAL_MAKE_VARIANT: 'debian' });
  assert.equal(withMakeArgs({ command: 'lint', positional: [], flags: {} }, { OS: 'firewall' }, env), { command: 'lint', positional: ['firewall'], flags: { variant: 'debian' } });
  assert.equal(withMakeArgs({ command: 'build', positional: ['firewall'], flags: {} }, {}, env), { command: 'build', positional: ['firewall'], flags: { variant: 'debian' } });
  assert.equal(withMakeArgs({ command: 'downloads', positional: [], flags: {} }, { PREFIX: 'stable', OS: 'debian' }, {}), { command: 'downloads', positional: ['stable'], flags: {} });
  // the CLI's own arguments win over make's
  assert.equal(withMakeArgs({ command: 'lint', positional: ['debian'], flags: { variant: 'x' } }, { OS: 'firewall' }, env), { command: 'lint', positional: ['debian'], flags: { variant: 'x' } });
  assert.equal(withMakeArgs({ command: 'release', positional: [], flags: {} }, { OS: 'debian' }, env), { command: 'release', positional: [], flags: {} });
});

test.run();
