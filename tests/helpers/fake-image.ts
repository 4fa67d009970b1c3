// A fake artifact set for the release tests: images/<os>/<version>/ with random "image" bytes,
// its md5sum line and a packages list, as the export writes them.
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatMd5File } from '../../scripts/lib/md5file.ts';

export interface Fake {
  dir: string;
  md5: string;
  size: number;
}

/** Writes the three files the way the export does: each as .partial, renamed into place, the md5 last. */
export function fakeImage(imagesDir: string, os: string, version: string, size: number, packages?: string): Fake {
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
  put('img.tar.lz4.md5', formatMd5File(md5, 'img.tar.lz4'));
  return { dir, md5, size };
}
