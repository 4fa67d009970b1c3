// The local artifact sets under images/<os>/<version>/, checked before anything is uploaded: all
// three files present and the image matching its .md5.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { PreconditionError, UsageError } from '../lib/errors.ts';
import { parseMd5File } from '../lib/md5file.ts';
import { IMAGE_FILE, MD5_FILE, PACKAGES_FILE, PART_SIZE, UPLOAD_ORDER, expectedEtag, imagePath, type ArtifactFile, type LocalObject } from './plan.ts';

export interface LocalFile extends LocalObject {
  path: string;
}

export interface LocalImage {
  os: string;
  version: string;
  dir: string;
  /** md5 of img.tar.lz4, checked against img.tar.lz4.md5. */
  md5: string;
  files: Record<ArtifactFile, LocalFile>;
}

/** Size, md5 and the ETag an upload in PART_SIZE parts gets, in one pass over the file. */
export async function hashFile(path: string, partSize = PART_SIZE): Promise<LocalObject> {
  const whole = createHash('md5');
  const digests: Buffer[] = [];
  let part = createHash('md5');
  let inPart = 0;
  let size = 0;
  for await (const c of createReadStream(path, { highWaterMark: 1 << 20 })) {
    let chunk = c as Buffer;
    whole.update(chunk);
    size += chunk.length;
    while (chunk.length > 0) {
      if (inPart === partSize) {
        digests.push(part.digest());
        part = createHash('md5');
        inPart = 0;
      }
      const n = Math.min(partSize - inPart, chunk.length);
      part.update(chunk.subarray(0, n));
      inPart += n;
      chunk = chunk.subarray(n);
    }
  }
  digests.push(part.digest());
  const md5 = whole.digest('hex');
  return { size, md5, etag: expectedEtag(md5, digests) };
}

/** The <os>/<version> folders under imagesDir that hold an img.tar.lz4, sorted. */
export function findLocalImages(imagesDir: string): { os: string; version: string; dir: string }[] {
  const shown = relative(process.cwd(), imagesDir) || imagesDir;
  const found: { os: string; version: string; dir: string }[] = [];
  if (existsSync(imagesDir)) {
    for (const os of readdirSync(imagesDir).sort()) {
      const osDir = join(imagesDir, os);
      if (os.startsWith('.') || !statSync(osDir).isDirectory()) continue;
      for (const version of readdirSync(osDir).sort()) {
        const dir = join(osDir, version);
        if (version.startsWith('.') || !existsSync(join(dir, IMAGE_FILE))) continue;
        try {
          imagePath(os, version);
        } catch (e) {
          throw new UsageError(`${relative(process.cwd(), dir) || dir}: ${(e as Error).message}`, `remove it or rename it to images/<os>/<version>`);
        }
        found.push({ os, version, dir });
      }
    }
  }
  if (found.length === 0) throw new PreconditionError(`no images under ${shown}/ (expected <os>/<version>/${IMAGE_FILE})`, 'build one first: make debian');
  return found;
}

/** Check one artifact set: all files present, the image matches its .md5. Reads the image once. */
export async function checkLocalImage(img: { os: string; version: string; dir: string }): Promise<LocalImage> {
  const shown = relative(process.cwd(), img.dir) || img.dir;
  const fix = `re-run make export OS=${img.os}`;
  for (const f of UPLOAD_ORDER) {
    if (!existsSync(join(img.dir, f))) throw new PreconditionError(`${shown}/${f} is missing`, fix);
  }
  let recorded: string;
  try {
    recorded = parseMd5File(readFileSync(join(img.dir, MD5_FILE), 'utf8'), IMAGE_FILE);
  } catch (e) {
    throw new PreconditionError(`${shown}/${MD5_FILE}: ${(e as Error).message}`, fix);
  }
  const files = {} as Record<ArtifactFile, LocalFile>;
  for (const f of UPLOAD_ORDER) {
    const path = join(img.dir, f);
    files[f] = { path, ...(await hashFile(path)) };
  }
  const md5 = files[IMAGE_FILE].md5;
  if (md5 !== recorded) throw new PreconditionError(`${shown}/${IMAGE_FILE} does not match its .md5 (file says ${recorded}, content is ${md5})`, fix);
  if (files[PACKAGES_FILE].size === 0) throw new PreconditionError(`${shown}/${PACKAGES_FILE} is empty`, fix);
  return { ...img, md5, files };
}
