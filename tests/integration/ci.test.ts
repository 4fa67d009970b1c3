// The CI definitions as make check lints them: the checkout's own pass; crafted bad ones fail with
// the findings named, the workflow through the real actionlint binary (and its shellcheck), the
// .gitlab-ci.yml through the structural checks. make ci-matrix prints what both fan out over.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ROOT } from '../../scripts/lib/config.ts';
import { run } from '../../scripts/lib/shell.ts';
import { definedImages } from '../../scripts/release/local.ts';
import { checkCi } from '../../scripts/static/ci.ts';

const FX = `${ROOT}/tests/fixtures/ci`;

test('the checkout\'s workflows and .gitlab-ci.yml pass', async () => {
  const r = await checkCi(ROOT);
  assert.ok(r.workflows >= 1);
  assert.equal(r.github, []);
  assert.equal(r.gitlab, []);
});

test('actionlint fails the bad workflow: an unknown needs, an undefined matrix property, shellcheck\'s quoting', async () => {
  const r = await checkCi(ROOT, { workflowsDir: `${FX}/bad-workflows`, gitlabFile: `${ROOT}/.gitlab-ci.yml` });
  assert.equal(r.github.map((f) => [f.file, f.line, f.message.replace(/ \[.*\]$/, '')]), [
    ['tests/fixtures/ci/bad-workflows/images.yaml', 7, 'job "image" needs job "matrx" which does not exist in this workflow'],
    ['tests/fixtures/ci/bad-workflows/images.yaml', 15, 'property "target" is not defined in object type {os: string}'],
    ['tests/fixtures/ci/bad-workflows/images.yaml', 16, 'shellcheck reported issue in this script: SC2086:info:1:6: Double quote to prevent globbing and word splitting'],
  ]);
  assert.equal(r.gitlab, []);
});

test('the structural checks fail the bad .gitlab-ci.yml: stage, needs, make target, a non-make line, images without a job; and one that does not parse', async () => {
  const bad = await checkCi(ROOT, { gitlabFile: `${FX}/bad-gitlab-ci.yml` });
  const msgs = bad.gitlab.map((f) => f.message);
  assert.ok(msgs.includes('job debian-12 is in stage build, which stages: does not declare (check, images)'), msgs.join('\n'));
  assert.ok(msgs.includes('job debian-12 needs tests, which is not a job'));
  assert.ok(msgs.includes('job debian-12 calls make publish, which the Makefile does not have'));
  assert.ok(msgs.includes('job upload runs "aws s3 cp images/ s3://bucket/ --recursive": CI calls the Makefile\'s targets only'));
  assert.ok(msgs.includes('no job builds debian-13: add one that runs make debian VARIANT=13'));
  assert.ok(msgs.includes('no job builds firewall-3.0-debian: add one that runs make firewall VARIANT=debian'));
  assert.not.ok(msgs.some((m) => m.startsWith('no job builds debian-12')), 'make debian covers debian-12');
  assert.is(bad.gitlab.find((f) => f.message.startsWith('job debian-12 is in stage'))?.line, 11);
  const broken = await checkCi(ROOT, { gitlabFile: `${FX}/broken-gitlab-ci.yml` });
  assert.is(broken.gitlab.length, 1);
  assert.match(broken.gitlab[0]!.message, /^YAML does not parse: /);
});

test('make ci-matrix prints every OS folder and variant as one line of JSON', async () => {
  const r = await run(['make', '--no-print-directory', '-s', 'ci-matrix'], { cwd: ROOT });
  assert.is(r.stdout.trim().split('\n').length, 1);
  const m = JSON.parse(r.stdout) as { include: { os: string; variant: string; version: string; name: string }[] };
  assert.equal(m.include.map((i) => `${i.os}/${i.version}`).sort(), definedImages().map((p) => `${p.os}/${p.version}`).sort());
  assert.ok(m.include.some((i) => i.os === 'debian' && i.variant === '13' && i.name === 'debian-13'));
  assert.ok(m.include.some((i) => i.os === 'firewall' && i.variant === 'debian' && i.name === 'firewall-3.0-debian'));
});

test.run();
