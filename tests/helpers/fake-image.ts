// A fake artifact set for the release tests: images/<os>/<version>/ with random "image" bytes,
// its md5sum line, a packages list and a build record, as the export writes them. By default the
// record says these bytes passed their lint and VM test (what `make <os>` leaves); `tested: false`
// leaves a record that only exported them (what `make export` alone leaves).
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatMd5File } from '../../scripts/lib/md5file.ts';
import { emptyRecord, withPart, type BuildRecord } from '../../scripts/lib/build-record.ts';

export interface Fake {
  dir: string;
  md5: string;
  size: number;
}

/**
 * Pure: an SPDX 2.3 document naming the packages of a dpkg -l text, shaped as syft writes it (the
 * release tests publish it; the SBOM of a real image is syft's, tests/integration/sbom.test.ts).
 */
export function fakeSbom(os: string, version: string, packages: string): string {
  const pkgs = packages.split('\n').filter((l) => /^ii\s/.test(l)).map((l, i) => {
    const [, name, v] = l.split(/\s+/);
    return { name: name!.replace(/:.*$/, ''), SPDXID: `SPDXRef-Package-deb-${i}`, versionInfo: v, downloadLocation: 'NOASSERTION' };
  });
  return `${JSON.stringify({
    spdxVersion: 'SPDX-2.3', dataLicense: 'CC0-1.0', SPDXID: 'SPDXRef-DOCUMENT', name: `${os}-${version}`,
    documentNamespace: `https://example.invalid/fake/${os}-${version}`, creationInfo: { created: '2026-01-01T00:00:00Z', creators: ['Tool: fake'] },
    packages: pkgs, files: [],
  })}\n`;
}

/** Pure: the record of a set with this md5, tested (lint and VM test passed) or only exported. */
export function fakeRecord(os: string, version: string, md5: string, size: number, tested = true, sbomSha256?: string, dockerImageId = 'sha256:fake'): BuildRecord {
  let r = emptyRecord({ os, version, variant: '', name: `${os}-${version}`, layers: [], dockerfile: `${os}/Dockerfile` });
  r = withPart(r, 'export', {
    md5, tar_bytes: size * 2, lz4_bytes: size, packages: 2, docker_image_id: dockerImageId, level: 5, compressor: 'fake', source: 'fake', seconds: 0,
    ...(sbomSha256 ? { sbom: { file: 'img.tar.lz4.spdx.json', sha256: sbomSha256, packages: 2, files: 0, tool: 'fake' } } : {}),
  });
  if (!tested) return r;
  r = withPart(r, 'lint', { verdict: 'pass', md5, errors: 0, warnings: 0, entries: 1 });
  return withPart(r, 'vmtest', { verdict: 'pass', md5, accel: 'tcg', goss: [{ spec: `${os}/goss.yaml`, passed: 3, failed: 0, skipped: 0, total: 3 }] });
}

/** Writes the files the way the export does: each as .partial, renamed into place, the md5 last. */
export function fakeImage(imagesDir: string, os: string, version: string, size: number, packages?: string, o: { tested?: boolean; dockerImage?: { tag: string; id: string } } = {}): Fake {
  const dir = join(imagesDir, os, version);
  mkdirSync(dir, { recursive: true });
  const bytes = randomBytes(size);
  const md5 = createHash('md5').update(bytes).digest('hex');
  const put = (name: string, content: string | Buffer): void => {
    writeFileSync(join(dir, `${name}.partial`), content);
    renameSync(join(dir, `${name}.partial`), join(dir, name));
  };
  put('img.tar.lz4', bytes);
  const pkgs = packages ?? `ii  bash  5.2.15-2+b2  amd64  GNU Bourne Again SHell\nii  fake  ${md5.slice(0, 8)}  all  test\n`;
  put('packages.txt', pkgs);
  const sbom = fakeSbom(os, version, pkgs);
  put('img.tar.lz4.spdx.json', sbom);
  let rec = fakeRecord(os, version, md5, size, o.tested ?? true, createHash('sha256').update(sbom).digest('hex'), o.dockerImage?.id);
  if (o.dockerImage) {
    rec = { ...rec, build: { tag: o.dockerImage.tag, body: '', docker_image_id: o.dockerImage.id, body_image_id: '', commit: 'fake', date: '2026-01-01', version, seconds: 0 } };
  }
  put('build.json', `${JSON.stringify(rec, null, 2)}\n`);
  put('img.tar.lz4.md5', formatMd5File(md5, 'img.tar.lz4'));
  return { dir, md5, size };
}
