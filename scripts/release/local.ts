// The local artifact sets under images/<os>/<version>/, checked before anything is uploaded, and
// held open afterwards: release publishes exactly the bytes it checked, even when an export
// replaces the files meanwhile.
//
//   findLocalImages   which folders are images to publish: a pair <os>/<version> that an image.yaml
//                     defines (variants included), no symlinks; anything else is set aside, by name
//   checkLocalImage   every rule a folder must pass to be published, in one place
import { createHash, type Hash } from 'node:crypto';
import { constants, existsSync, lstatSync, readdirSync, type Stats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { ROOT } from '../lib/config.ts';
import { PreconditionError } from '../lib/errors.ts';
import { listOsFolders, loadImageDef } from '../lib/image-def.ts';
import { parseMd5File } from '../lib/md5file.ts';
import { IMAGE_FILE, MD5_FILE, PACKAGES_FILE, PART_SIZE, RECORD_FILE, SBOM_FILE, UPLOAD_ORDER, expectedEtag, imagePath, type ArtifactFile, type LocalObject } from './plan.ts';
import { parseRecord, releaseCheck, RECORD_SCHEMA } from '../lib/build-record.ts';

/** Size, md5 and the ETag an upload in `partSize` parts gets, computed over bytes as they pass. */
export class ObjectHasher {
  private readonly whole: Hash = createHash('md5');
  private readonly digests: Buffer[] = [];
  private part: Hash = createHash('md5');
  private inPart = 0;
  private size = 0;
  constructor(private readonly partSize = PART_SIZE) {}

  update(chunk: Buffer): void {
    this.whole.update(chunk);
    this.size += chunk.length;
    let rest = chunk;
    while (rest.length > 0) {
      if (this.inPart === this.partSize) {
        this.digests.push(this.part.digest());
        this.part = createHash('md5');
        this.inPart = 0;
      }
      const n = Math.min(this.partSize - this.inPart, rest.length);
      this.part.update(rest.subarray(0, n));
      this.inPart += n;
      rest = rest.subarray(n);
    }
  }

  /** Once, after the last update. */
  digest(): LocalObject {
    const md5 = this.whole.digest('hex');
    return { size: this.size, md5, etag: expectedEtag(md5, [...this.digests, this.part.digest()]) };
  }
}

/** Pure: size, md5 and part-layout ETag of bytes in memory. */
export function hashBytes(bytes: Buffer, partSize = PART_SIZE): LocalObject {
  const h = new ObjectHasher(partSize);
  h.update(bytes);
  return h.digest();
}

/** Size, md5 and the ETag an upload in PART_SIZE parts gets, in one pass over the file. */
export async function hashFile(path: string, partSize = PART_SIZE): Promise<LocalObject> {
  const fh = await open(path, constants.O_RDONLY);
  try {
    return await hashHandle(fh, partSize);
  } finally {
    await fh.close();
  }
}

async function hashHandle(fh: FileHandle, partSize = PART_SIZE): Promise<LocalObject> {
  const h = new ObjectHasher(partSize);
  for await (const c of fh.createReadStream({ start: 0, autoClose: false, highWaterMark: 1 << 20 })) h.update(c as Buffer);
  return h.digest();
}

/** What an upload sends: the body, and afterwards the hash of the bytes that really went out. */
export interface Sending {
  body: Buffer | Readable;
  /** Valid once the body was read to its end. */
  sent(): LocalObject;
}

export interface LocalFile extends LocalObject {
  path: string;
  /** The content as checked: the bytes held in memory, or the file opened at the check, read from 0. */
  read(): Sending;
  /** True when `path` is no longer the file that was checked (an export renamed a new one over it). */
  replaced(): boolean;
}

export interface LocalImage {
  os: string;
  storeOs: string;
  version: string;
  dir: string;
  /** md5 of img.tar.lz4, checked against img.tar.lz4.md5. */
  md5: string;
  files: Record<ArtifactFile, LocalFile>;
  /** The build record to publish, as bytes (release adds the registry part to it). */
  record: Buffer;
  /** Closes the image file held open since the check. */
  close(): Promise<void>;
}

export interface ImagePair {
  os: string;
  version: string;
  /** The variant that builds this version ('' for the default). */
  variant?: string;
  /** Its name in the store and the image id (image.yaml publish_as; default the folder). */
  storeOs?: string;
}

/** The <os>/<version> pairs the image.yaml files under `root` define, each variant's version included. */
export function definedImages(root = ROOT): ImagePair[] {
  const out: ImagePair[] = [];
  for (const os of listOsFolders(root)) {
    const def = loadImageDef(os, '', root);
    out.push({ os, version: def.version, variant: '', storeOs: def.publish_as });
    for (const [variant, v] of Object.entries(def.variants)) {
      const version = v.version ?? def.version;
      if (!out.some((p) => p.os === os && p.version === version)) out.push({ os, version, variant, storeOs: def.publish_as });
    }
  }
  return out;
}

export interface LocalCandidate {
  os: string;
  version: string;
  dir: string;
  variant?: string;
  /** Its name in the store and the image id: image.yaml's publish_as (nvidia/ publishes as debian-nvidia). */
  storeOs: string;
}

export interface LocalListing {
  found: LocalCandidate[];
  /** Folders with an img.tar.lz4 that are not published, and why (e.g. "images/debian/12-bak: ..."). */
  setAside: string[];
}

/** A path as messages show it: relative to the working directory when inside it. */
const shown = (p: string): string => {
  const r = relative(process.cwd(), p);
  return r === '' ? p : r.startsWith('..') ? p : r;
};

function lstatOrNull(p: string): Stats | null {
  try {
    return lstatSync(p);
  } catch {
    return null;
  }
}

function refuseSymlink(p: string, st: Stats): void {
  if (st.isSymbolicLink()) {
    throw new PreconditionError(`${shown(p)} is a symlink: release publishes only what the export wrote under images/`, `replace it with the exported folder or file (make export OS=<os>), or remove it`);
  }
}

/**
 * The folders under imagesDir to publish: images/<os>/<version>/ with an img.tar.lz4, for a pair
 * an image.yaml defines. A symlink on the way to one of them is an error; folders of pairs no
 * image.yaml defines (debian/12-bak, an old debian/11) are set aside and named.
 */
export function findLocalImages(imagesDir: string, defined: readonly ImagePair[]): LocalListing {
  const found: LocalCandidate[] = [];
  const setAside: string[] = [];
  const known = (os: string, version: string): boolean => defined.some((d) => d.os === os && d.version === version);
  const knownList = defined.map((d) => `${d.os}/${d.version}`).join(', ');
  if (existsSync(imagesDir)) {
    for (const os of readdirSync(imagesDir).sort()) {
      const osDir = join(imagesDir, os);
      const osStat = lstatOrNull(osDir);
      if (os.startsWith('.') || !osStat) continue;
      const osKnown = defined.some((d) => d.os === os);
      if (osStat.isSymbolicLink()) {
        if (osKnown) refuseSymlink(osDir, osStat);
        setAside.push(`${shown(osDir)}: a symlink, not an OS folder of this checkout`);
        continue;
      }
      if (!osStat.isDirectory()) continue;
      for (const version of readdirSync(osDir).sort()) {
        const dir = join(osDir, version);
        const st = lstatOrNull(dir);
        if (version.startsWith('.') || !st) continue;
        if (!known(os, version)) {
          if (st.isSymbolicLink() || existsSync(join(dir, IMAGE_FILE))) setAside.push(`${shown(dir)}: no image.yaml defines ${os}/${version} (defined: ${knownList})`);
          continue;
        }
        refuseSymlink(dir, st);
        if (!st.isDirectory() || !lstatOrNull(join(dir, IMAGE_FILE))) continue;
        imagePath(os, version);
        const pair = defined.find((d) => d.os === os && d.version === version);
        found.push({ os, version, dir, variant: pair?.variant ?? '', storeOs: pair?.storeOs ?? os });
      }
    }
  }
  if (found.length === 0) {
    throw new PreconditionError(`no images under ${shown(imagesDir)}/ (expected <os>/<version>/${IMAGE_FILE} of ${knownList})`, 'build one first: make debian');
  }
  return { found, setAside };
}

/** Open a regular file, never through a symlink. */
async function openPlain(path: string, fix: string): Promise<{ fh: FileHandle; st: Stats }> {
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new PreconditionError(`${shown(path)} is a symlink: release publishes only what the export wrote`, fix);
    if (code === 'ENOENT') throw new PreconditionError(`${shown(path)} is missing`, fix);
    throw e;
  }
  const st = await fh.stat();
  if (!st.isFile()) {
    await fh.close();
    throw new PreconditionError(`${shown(path)} is not a regular file`, fix);
  }
  return { fh, st };
}

function replacedCheck(path: string, st: Stats): () => boolean {
  return () => {
    const now = lstatOrNull(path);
    return !now || now.ino !== st.ino || now.dev !== st.dev;
  };
}

/** A small file, read once into memory: what is uploaded is what was checked. */
async function smallFile(path: string, fix: string): Promise<LocalFile & { bytes: Buffer }> {
  const { fh, st } = await openPlain(path, fix);
  let bytes: Buffer;
  try {
    bytes = await fh.readFile();
  } finally {
    await fh.close();
  }
  const h = hashBytes(bytes);
  return { path, bytes, ...h, read: () => ({ body: bytes, sent: () => h }), replaced: replacedCheck(path, st) };
}

/** A file's bytes held in memory as an upload source (the build record as published). */
export function memoryFile(path: string, bytes: Buffer): LocalFile & { bytes: Buffer } {
  const h = hashBytes(bytes);
  return { path, bytes, ...h, read: () => ({ body: bytes, sent: () => h }), replaced: () => false };
}

/**
 * The build record to publish: the local one when it says these bytes passed their lint and VM
 * test; otherwise a refusal naming why and what to run, or with FORCE=1 the record marked as
 * released untested (so the store says so too).
 */
async function recordToPublish(img: LocalCandidate, md5: string, force: boolean, warn: (line: string) => void): Promise<LocalFile & { bytes: Buffer }> {
  const path = join(img.dir, RECORD_FILE);
  const local = lstatOrNull(path) ? await smallFile(path, `re-run make ${img.os}`) : null;
  const rec = local ? parseRecord(local.bytes.toString('utf8')) : null;
  const target = img.variant ? `${img.os} VARIANT=${img.variant}` : img.os;
  const verdict = releaseCheck(rec, md5, target);
  if (verdict.ok) return local!;
  if (!force) throw new PreconditionError(`${shown(img.dir)} is not published: ${verdict.reason}`, verdict.fix);
  warn(`${shown(img.dir)}: published untested (FORCE=1): ${verdict.reason}`);
  const marked = { ...(rec ?? { schema: RECORD_SCHEMA, definition: { os: img.os, version: img.version }, written: {} }), released_untested: verdict.reason };
  return memoryFile(path, Buffer.from(`${JSON.stringify(marked, null, 2)}\n`));
}

export interface CheckOptions {
  /** make release FORCE=1: publish without a build record that says the bytes passed. */
  force?: boolean;
  warn?: (line: string) => void;
}

/**
 * Check one artifact set. Every rule a local image must pass before it may be published is in
 * this function, and nowhere else:
 * - the files exist as regular files, not symlinks;
 * - img.tar.lz4 matches its .md5 (hashed from the file opened here, which stays open: the upload
 *   reads the same bytes, and checks them again as they go out);
 * - packages.txt is not empty;
 * - its build record (build.json) says these bytes, by md5, passed the lint and the VM test
 *   (unless forced, when the published record says so).
 */
export async function checkLocalImage(img: LocalCandidate, o: CheckOptions = {}): Promise<LocalImage> {
  const where = shown(img.dir);
  const fix = `re-run make export OS=${img.os}`;
  for (const f of UPLOAD_ORDER) {
    if (f === RECORD_FILE) continue; // checked below, with what it says
    const st = lstatOrNull(join(img.dir, f));
    if (!st) throw new PreconditionError(`${where}/${f} is missing`, fix);
  }
  const md5File = await smallFile(join(img.dir, MD5_FILE), fix);
  let recorded: string;
  try {
    recorded = parseMd5File(md5File.bytes.toString('utf8'), IMAGE_FILE);
  } catch (e) {
    throw new PreconditionError(`${where}/${MD5_FILE}: ${(e as Error).message}`, fix);
  }
  const packages = await smallFile(join(img.dir, PACKAGES_FILE), fix);
  if (packages.size === 0) throw new PreconditionError(`${where}/${PACKAGES_FILE} is empty`, fix);
  const sbom = await smallFile(join(img.dir, SBOM_FILE), fix);

  const imagePathOnDisk = join(img.dir, IMAGE_FILE);
  const { fh, st } = await openPlain(imagePathOnDisk, fix);
  let image: LocalFile;
  try {
    const checked = await hashHandle(fh);
    if (checked.md5 !== recorded) throw new PreconditionError(`${where}/${IMAGE_FILE} does not match its .md5 (file says ${recorded}, content is ${checked.md5})`, fix);
    image = {
      path: imagePathOnDisk,
      ...checked,
      read: () => {
        const h = new ObjectHasher();
        let sent: LocalObject | null = null;
        const tap = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            h.update(chunk);
            cb(null, chunk);
          },
          flush(cb) {
            sent = h.digest();
            cb();
          },
        });
        const body = fh.createReadStream({ start: 0, autoClose: false, highWaterMark: 1 << 20 }).pipe(tap);
        return {
          body,
          sent: () => {
            if (!sent) throw new Error(`${imagePathOnDisk}: the upload did not read the file to its end`);
            return sent;
          },
        };
      },
      replaced: replacedCheck(imagePathOnDisk, st),
    };
  } catch (e) {
    await fh.close();
    throw e;
  }
  let record: LocalFile & { bytes: Buffer };
  try {
    record = await recordToPublish(img, image.md5, o.force ?? false, o.warn ?? (() => {}));
    // the SBOM must be the one the export wrote beside these bytes (the record names its sha256)
    const named = parseRecord(record.bytes.toString('utf8'))?.export?.sbom?.sha256;
    const sha = createHash('sha256').update(sbom.bytes).digest('hex');
    if (named && named !== sha) throw new PreconditionError(`${where}/${SBOM_FILE} is not the SBOM the export wrote (sha256 ${sha.slice(0, 12)}…, the build record names ${named.slice(0, 12)}…)`, fix);
  } catch (e) {
    await fh.close();
    throw e;
  }
  return {
    ...img,
    md5: image.md5,
    record: record.bytes,
    files: { [IMAGE_FILE]: image, [PACKAGES_FILE]: packages, [SBOM_FILE]: sbom, [RECORD_FILE]: record, [MD5_FILE]: md5File },
    close: () => fh.close(),
  };
}
