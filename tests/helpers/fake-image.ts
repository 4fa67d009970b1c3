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

/** Pure: the record of a set with this md5, tested (lint and VM test passed) or only exported. */
export function fakeRecord(os: string, version: string, md5: string, size: number, tested = true): BuildRecord {
  let r = emptyRecord({ os, version, variant: '', name: `${os}-${version}`, layers: [], dockerfile: `${os}/Dockerfile` });
  r = withPart(r, 'export', { md5, tar_bytes: size * 2, lz4_bytes: size, packages: 2, docker_image_id: 'sha256:fake', level: 5, compressor: 'fake', source: 'fake', seconds: 0 });
  if (!tested) return r;
  r = withPart(r, 'lint', { verdict: 'pass', md5, errors: 0, warnings: 0, entries: 1 });
  return withPart(r, 'vmtest', { verdict: 'pass', md5, accel: 'tcg', goss: [{ spec: `${os}/goss.yaml`, passed: 3, failed: 0, skipped: 0, total: 3 }] });
}

/** Writes the files the way the export does: each as .partial, renamed into place, the md5 last. */
export function fakeImage(imagesDir: string, os: string, version: string, size: number, packages?: string, o: { tested?: boolean } = {}): Fake {
  const dir = join(imagesDir, os, version);
  mkdirSync(dir, { recursive: true });
  const bytes = randomBytes(size);
  const md5 = createHash('md5').update(bytes).digest('hex');
  const put = (name: string, content: string | Buffer): void => {
    writeFileSync(join(dir, `${name}.partial`), content);
    renameSync(join(dir, `${name}.partial`), join(dir, name));
  };
  put('img.tar.lz4', bytes);
  put('packages.txt', packages ?? `ii  bash  5.2.15-2+b2  amd64  GNU Bourne Again SHell\nii  fake  ${md5.slice(0, 8)}  all  test\n`);
  put('build.json', `${JSON.stringify(fakeRecord(os, version, md5, size, o.tested ?? true), null, 2)}\n`);
  put('img.tar.lz4.md5', formatMd5File(md5, 'img.tar.lz4'));
  return { dir, md5, size };
}
