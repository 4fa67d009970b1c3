// The SBOM beside the Debian image (img.tar.lz4.spdx.json, syft over the exported tree), read as a
// consumer reads it: valid SPDX 2.3 JSON, every package of packages.txt in it by name and version,
// file checksums that are those of the bytes in img.tar.lz4, named with its sha256 by the build
// record. Then the export from docker export (syft reads the archive), and Ctrl-C while the SBOM
// is being written: the previous complete set stays.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { config } from '../../scripts/lib/config.ts';
import { cli } from '../helpers/cli.ts';
import { ensureDebianArtifact } from '../helpers/debian.ts';

interface Spdx {
  spdxVersion: string;
  dataLicense: string;
  SPDXID: string;
  name: string;
  documentNamespace: string;
  creationInfo: { created: string; creators: string[] };
  packages: { name: string; SPDXID: string; versionInfo?: string; externalRefs?: { referenceLocator: string }[] }[];
  files: { fileName: string; SPDXID: string; checksums?: { algorithm: string; checksumValue: string }[] }[];
  relationships: { spdxElementId: string; relationshipType: string; relatedSpdxElement: string }[];
}

const sh = (cmd: string): string => execFileSync('bash', ['-o', 'pipefail', '-c', cmd], { encoding: 'utf8', maxBuffer: 64 << 20 });
/** The installed packages of a dpkg -l text, read here (not with the code under test). */
function dpkgInstalled(text: string): [string, string][] {
  return text.split('\n').filter((l) => l.startsWith('ii ')).map((l) => {
    const f = l.split(/\s+/);
    return [f[1]!.split(':')[0]!, f[2]!];
  });
}
function assertCovers(doc: Spdx, packagesTxt: string, where: string): number {
  const have = new Set(doc.packages.map((p) => `${p.name} ${p.versionInfo}`));
  const listed = dpkgInstalled(packagesTxt);
  assert.ok(listed.length > 100, `${where}: packages.txt lists ${listed.length} packages`);
  const missing = listed.filter(([n, v]) => !have.has(`${n} ${v}`)).map(([n, v]) => `${n} ${v}`);
  assert.equal(missing, [], `${where}: packages of packages.txt missing from the SBOM`);
  return listed.length;
}

let dir = '';
let doc: Spdx;

test.before(async () => {
  dir = await ensureDebianArtifact();
  doc = JSON.parse(readFileSync(join(dir, 'img.tar.lz4.spdx.json'), 'utf8')) as Spdx;
});

test('the SBOM is SPDX 2.3 JSON with the fields a consumer needs', () => {
  assert.is(doc.spdxVersion, 'SPDX-2.3');
  assert.is(doc.dataLicense, 'CC0-1.0');
  assert.is(doc.SPDXID, 'SPDXRef-DOCUMENT');
  assert.match(doc.documentNamespace, /^https:\/\/\S+$/);
  assert.ok(doc.creationInfo.creators.some((c) => /^Tool: syft-v1\.57\.2$/.test(c)), doc.creationInfo.creators.join(', '));
  assert.match(doc.name, /debian/);
  assert.ok(doc.packages.length > 300 && doc.files.length > 1000, `${doc.packages.length} packages, ${doc.files.length} files`);
  const ids = new Set([...doc.packages.map((p) => p.SPDXID), ...doc.files.map((f) => f.SPDXID), 'SPDXRef-DOCUMENT']);
  for (const r of doc.relationships) assert.ok(ids.has(r.spdxElementId), `relationship from an unknown element ${r.spdxElementId}`);
  const bash = doc.packages.find((p) => p.name === 'bash');
  assert.ok(bash?.externalRefs?.some((r) => r.referenceLocator.startsWith('pkg:deb/debian/bash@')), 'bash has its package URL');
});

test('every package of packages.txt is in the SBOM, by name and version', () => {
  assertCovers(doc, readFileSync(join(dir, 'packages.txt'), 'utf8'), 'mount export');
});

test('file checksums are those of the bytes in img.tar.lz4; the build record names the SBOM and its sha256', () => {
  const bash = doc.files.find((f) => f.fileName.replace(/^\//, '') === 'usr/bin/bash');
  assert.ok(bash, 'usr/bin/bash is among the files');
  const sha = bash!.checksums!.find((c) => c.algorithm === 'SHA256')!.checksumValue;
  const lz4 = join(config().binDir, 'lz4-1.10');
  assert.is(sh(`${lz4} -dc ${dir}/img.tar.lz4 | tar -xO usr/bin/bash | sha256sum`).slice(0, 64), sha);
  const rec = JSON.parse(readFileSync(join(dir, 'build.json'), 'utf8')) as { export: { sbom: { file: string; sha256: string; packages: number; tool: string } } };
  assert.is(rec.export.sbom.file, 'img.tar.lz4.spdx.json');
  assert.is(rec.export.sbom.sha256, createHash('sha256').update(readFileSync(join(dir, 'img.tar.lz4.spdx.json'))).digest('hex'));
  assert.is(rec.export.sbom.packages, doc.packages.length);
  assert.is(rec.export.sbom.tool, 'syft v1.57.2');
});

test('from docker export the SBOM is syft\'s reading of the archive; Ctrl-C while it is written keeps the previous set', async () => {
  const scratch = mkdtempSync(join(config().stateDir, 'sbom-test-'));
  try {
    const env = { METAL_IMAGES_DIR: join(scratch, 'images'), METAL_ENV_FILE: '/dev/null', EXPORT_SOURCE: 'docker' };
    const set = join(scratch, 'images', 'debian', '12');
    const t0 = Date.now();
    const r = await cli(['export', 'debian'], { env });
    assert.is(r.code, 0, r.stderr);
    const seconds = (Date.now() - t0) / 1000;
    const fromArchive = JSON.parse(readFileSync(join(set, 'img.tar.lz4.spdx.json'), 'utf8')) as Spdx;
    assertCovers(fromArchive, readFileSync(join(set, 'packages.txt'), 'utf8'), 'docker export');
    const rec = JSON.parse(readFileSync(join(set, 'build.json'), 'utf8')) as { export: { sbom: { sha256: string } } };
    assert.is(rec.export.sbom.sha256, createHash('sha256').update(readFileSync(join(set, 'img.tar.lz4.spdx.json'))).digest('hex'));
    const md5 = readFileSync(join(set, 'img.tar.lz4.md5'), 'utf8');

    const parent = join(scratch, 'images', 'debian');
    const sbomUnderway = (): boolean => readdirSync(parent).some((d) => d.startsWith('.') && existsSync(join(parent, d, 'img.tar.lz4.spdx.json.partial')));
    const cut = await cli(['export', 'debian'], { env, signalAfter: { when: sbomUnderway, signal: 'SIGINT' } });
    assert.is(cut.code, 130, cut.stderr);
    assert.equal(readdirSync(parent).filter((d) => d.startsWith('.')), [], 'nothing in flight is left');
    assert.equal(readdirSync(set).sort(), ['build.json', 'img.tar.lz4', 'img.tar.lz4.md5', 'img.tar.lz4.spdx.json', 'packages.txt']);
    assert.is(readFileSync(join(set, 'img.tar.lz4.md5'), 'utf8'), md5, 'the previous complete set stays');
    console.log(`  sbom: the export from docker export with its SBOM from the archive took ${seconds.toFixed(0)} s`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
});

test.run();
