// The build record (scripts/lib/build-record.ts): parts written step by step, what a new part makes
// stale, and what release accepts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { emptyRecord, readRecord, releaseCheck, updateRecord, withPart, type BuildRecord, type DefinitionPart, type LintPart, type Verdict, type VmTestPart } from '../../scripts/lib/build-record.ts';

const def: DefinitionPart = { os: 'debian', version: '12', variant: '', name: 'debian-12', layers: ['common', 'apt'], dockerfile: 'layers/apt/Dockerfile' };
const build = (id: string): NonNullable<BuildRecord['build']> => ({ tag: 'metal-images/debian:12', body: 'metal-images/debian:12-body', docker_image_id: id, body_image_id: 'b', commit: 'c', date: 'd', version: 'v', seconds: 1 });
const exp = (md5: string): NonNullable<BuildRecord['export']> => ({ md5, tar_bytes: 2, lz4_bytes: 1, packages: 3, docker_image_id: 'sha256:1', level: 5, compressor: 'lz4', source: 'mount', seconds: 1 });
const lint = (md5: string, verdict: Verdict = 'pass'): LintPart => ({ verdict, md5, errors: verdict === 'pass' ? 0 : 2, warnings: 4, entries: 5 });
const vm = (md5: string, verdict: Verdict = 'pass'): VmTestPart => ({ verdict, md5, accel: 'tcg', goss: [{ spec: 'debian/goss.yaml', passed: 114, failed: 0, skipped: 0, total: 114 }], ...(verdict === 'skipped' ? { reason: 'SKIP_VM_TEST=1' } : {}) });
const MD5 = 'a'.repeat(32);

function tested(md5 = MD5): BuildRecord {
  let r = withPart(emptyRecord(def), 'build', build('sha256:1'));
  r = withPart(r, 'export', exp(md5));
  r = withPart(r, 'lint', lint(md5));
  return withPart(r, 'vmtest', vm(md5));
}

test('a new build or export drops the verdicts about other bytes; the same image or bytes keep them', () => {
  const r = tested();
  assert.ok(r.lint && r.vmtest);
  const rebuilt = withPart(r, 'build', build('sha256:2'));
  assert.equal([rebuilt.export, rebuilt.lint, rebuilt.vmtest], [undefined, undefined, undefined]);
  assert.ok(withPart(r, 'build', build('sha256:1')).vmtest, 'the same docker image: a cache hit, the verdicts stand');
  const reexported = withPart(r, 'export', exp('b'.repeat(32)));
  assert.equal([reexported.lint, reexported.vmtest], [undefined, undefined]);
  assert.ok(withPart(r, 'export', exp(MD5)).vmtest, 'the same md5 (a reproducible re-export): the verdicts stand');
});

test('release accepts only a passing lint and VM test of exactly these bytes, and says why not', () => {
  assert.equal(releaseCheck(tested(), MD5, 'debian'), { ok: true, summary: 'lint 0 errors, 4 warnings; VM test 114/114 goss checks passed (tcg)' });
  const no = (r: BuildRecord | null, md5 = MD5): string => {
    const c = releaseCheck(r, md5, 'debian');
    return c.ok ? 'ok' : c.reason;
  };
  assert.is(no(null), 'it has no build record (build.json): nothing says it was linted and tested');
  assert.is(no(tested(), 'c'.repeat(32)), 'its img.tar.lz4 (md5 cccccccc…) is not the one the build record exported (aaaaaaaa…)');
  assert.is(no(withPart(tested(), 'lint', lint(MD5, 'fail'))), 'its lint failed (2 errors)');
  assert.is(no(withPart(tested(), 'vmtest', vm(MD5, 'skipped'))), 'its VM test was skipped (SKIP_VM_TEST=1)');
  const untested = withPart(withPart(withPart(emptyRecord(def), 'build', build('x')), 'export', exp(MD5)), 'lint', lint(MD5));
  assert.is(no(untested), 'it has not passed a VM test');
  const c = releaseCheck(untested, MD5, 'debian');
  assert.ok(!c.ok && c.fix === 'run make vmtest OS=debian');
});

test('updateRecord writes atomically and starts fresh for another image', () => {
  const dir = mkdtempSync(join(tmpdir(), 'record-'));
  try {
    updateRecord(dir, def, 'export', exp(MD5));
    assert.is(readRecord(dir)?.export?.md5, MD5);
    assert.equal(readdirSync(dir), ['build.json'], 'no temporary file left');
    updateRecord(dir, { ...def, os: 'nvidia', name: 'nvidia-12' }, 'lint', lint(MD5));
    const r = readRecord(dir)!;
    assert.is(r.definition.os, 'nvidia');
    assert.is(r.export, undefined, 'the other image\'s export is not carried over');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
