// The contract lint on the real Debian artifact. The integration suite builds images/debian/12
// before it runs (make test-integration); a missing artifact fails here, it is not skipped.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { config, ROOT } from '../../scripts/lib/config.ts';
import { loadImageDef } from '../../scripts/lib/image-def.ts';
import { run } from '../../scripts/lib/shell.ts';
import { formatReport, lintArtifact } from '../../scripts/lint/lint.ts';
import { ensureDebianArtifact } from '../helpers/debian.ts';

// the shared Debian fixture, built by its named helper if missing (no dependency on file order)
test.before(async () => {
  await ensureDebianArtifact();
});

const def = loadImageDef('debian');
const dir = join(config().imagesDir, def.os, def.version);
const artifact = join(dir, 'img.tar.lz4');

test('the real Debian artifact exists (built by the integration suite before this test)', () => {
  assert.ok(existsSync(artifact), `${artifact} is missing: run make debian`);
});

test('the real Debian artifact lints clean of errors, in seconds', async () => {
  const r = await lintArtifact(def, dir);
  console.log(formatReport(r));
  assert.equal(r.findings.filter((f) => f.severity === 'error'), [], 'lint errors (report above)');
  assert.ok(r.entries > 10000, `a real root filesystem has more than 10000 entries, got ${r.entries}`);
  assert.ok(r.seconds < 30, `lint took ${r.seconds.toFixed(1)}s; it must stay in seconds`);
});

test('make lint exits 0 with a PASS verdict; a wrong md5 file makes it exit 1', async () => {
  const cli = ['node', '--import', 'tsx', 'scripts/cli.ts', 'lint', 'debian'];
  const ok = await run(cli, { cwd: ROOT, nothrow: true });
  assert.is(ok.code, 0, ok.stderr);
  assert.match(ok.stdout.split('\n')[0]!, /^lint debian-12: PASS — 0 errors, \d+ warnings? \(/);

  // the same tarball next to a wrong md5 file, in a scratch images dir
  const scratch = mkdtempSync(join(tmpdir(), 'lint-it-'));
  try {
    const copy = join(scratch, def.os, def.version);
    mkdirSync(copy, { recursive: true });
    symlinkSync(artifact, join(copy, 'img.tar.lz4'));
    writeFileSync(join(copy, 'img.tar.lz4.md5'), `${'0'.repeat(32)}  img.tar.lz4\n`);
    const bad = await run(cli, { cwd: ROOT, nothrow: true, env: { METAL_IMAGES_DIR: scratch } });
    assert.is(bad.code, 1, bad.stdout + bad.stderr);
    assert.match(bad.stdout.split('\n')[0]!, /^lint debian-12: FAIL — 1 error, /);
    assert.match(bad.stdout, /img\.tar\.lz4\.md5: says 0{32}, but img\.tar\.lz4 hashes to [0-9a-f]{32}/);
    assert.match(bad.stderr, /error: lint found 1 error in .*img\.tar\.lz4: the metal-hammer would fail to install it/);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
});

test.run();
