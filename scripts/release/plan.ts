// What goes where in the image store, and how a remote object compares with a local file. Pure:
// keys, URLs, image ids, headers, ETags and the cache-sync view of a bucket listing.
import { createHash } from 'node:crypto';
import { UsageError } from '../lib/errors.ts';
import { STORE_ROOT, isDate, parsePrefix, utcDate, type Channel } from './prefix.ts';

import { IMAGE_FILE, MD5_FILE, PACKAGES_FILE, SBOM_FILE } from '../lib/artifacts.ts';
import { RECORD_FILE } from '../lib/build-record.ts';

export { IMAGE_FILE, MD5_FILE, PACKAGES_FILE, RECORD_FILE, SBOM_FILE };
export type ArtifactFile = typeof IMAGE_FILE | typeof MD5_FILE | typeof PACKAGES_FILE | typeof SBOM_FILE | typeof RECORD_FILE;
/**
 * Upload order: the image first, the md5 last, so a consumer never sees an md5 without its image.
 * The SBOM and the build record (what was linted and tested, the registry digest) travel with it.
 */
export const UPLOAD_ORDER: readonly ArtifactFile[] = [IMAGE_FILE, PACKAGES_FILE, SBOM_FILE, RECORD_FILE, MD5_FILE];

export const DEFAULT_BASE_URL = 'https://images.metal-stack.io/';

/** lib-storage part size: files up to this size go in one PUT, larger ones in parts of this size. */
export const PART_SIZE = 16 * 1024 * 1024;

const OS = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;
const VERSION = /^[0-9]+(?:\.[0-9]+)?(?:-[a-z0-9]+)?$/;

/** "<os>/<version>" after checking both are plain names (no "/", "..", upper case). */
export function imagePath(os: string, version: string): string {
  if (!OS.test(os)) throw new UsageError(`"${os}" is not an OS folder name ([a-z0-9-])`);
  if (!VERSION.test(version)) throw new UsageError(`"${version}" is not an image version (<major>[.<minor>][-<flavour>])`);
  return `${os}/${version}`;
}

/** e.g. objectKey("metal-os/20230710", "debian", "12", "img.tar.lz4"). */
export function objectKey(prefix: string, os: string, version: string, file: ArtifactFile): string {
  return `${prefix}/${imagePath(os, version)}/${file}`;
}

/** PUBLIC_BASE_URL as given, checked, with exactly one trailing slash. */
export function normalizeBaseUrl(base: string | undefined): string {
  const b = base ?? DEFAULT_BASE_URL;
  let u: URL;
  try {
    u = new URL(b);
  } catch {
    throw new UsageError(`PUBLIC_BASE_URL="${b}" is not a URL`, `e.g. PUBLIC_BASE_URL=${DEFAULT_BASE_URL}`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new UsageError(`PUBLIC_BASE_URL="${b}" must be http(s)`, `e.g. PUBLIC_BASE_URL=${DEFAULT_BASE_URL}`);
  if (u.search || u.hash || u.username || u.password) throw new UsageError(`PUBLIC_BASE_URL="${b}" must be a plain base URL (no query, fragment or credentials)`);
  return b.replace(/\/+$/, '') + '/';
}

export function publicUrl(baseUrl: string, key: string): string {
  return normalizeBaseUrl(baseUrl) + key;
}

/** "12" → "12.0"; "22.04" and "3.0-ubuntu" stay: the major.minor of the image id. */
export function majorMinor(version: string): string {
  if (!VERSION.test(version)) throw new UsageError(`"${version}" is not an image version (<major>[.<minor>][-<flavour>])`);
  const m = /^(\d+)(\.\d+)?(-.*)?$/.exec(version)!;
  return `${m[1]}${m[2] ?? '.0'}${m[3] ?? ''}`;
}

/**
 * Image id as the metal-api sees it: <os>-<major.minor.patch>, the patch a date YYYYMMDD:
 * debian-12.0.20230710, ubuntu-22.04.20230710, firewall-3.0-ubuntu.20230710.
 * Releases use their prefix date. stable/ and pull_requests/ have no date in the prefix: their
 * images are named after the UTC day the image object was written (its LastModified), which is
 * what a metal-api entry pointing at that URL would have to be called.
 */
export function imageId(os: string, version: string, patch: string): string {
  imagePath(os, version);
  if (!isDate(patch)) throw new UsageError(`patch "${patch}" is not a date YYYYMMDD`);
  return `${os}-${majorMinor(version)}.${patch}`;
}

/** The patch of an image: the release date, or the day the image object was written. */
export function imagePatch(channelDate: string | null, written: Date): string {
  return channelDate ?? utcDate(written);
}

/** stable and pull request objects are moving targets: no cache may keep them. */
export function cacheControl(channel: Channel): string | undefined {
  return channel === 'release' ? undefined : 'no-store';
}

export function contentType(file: ArtifactFile): string {
  if (file === IMAGE_FILE) return 'application/x-lz4';
  if (file === SBOM_FILE) return 'application/spdx+json';
  return file === RECORD_FILE ? 'application/json' : 'text/plain; charset=utf-8';
}

/** The ETag S3 computes for a multipart upload: md5 of the parts' binary md5s, "-", part count. */
export function multipartEtag(partDigests: readonly Buffer[]): string {
  const h = createHash('md5');
  for (const d of partDigests) h.update(d);
  return `${h.digest('hex')}-${partDigests.length}`;
}

/** ETag of a file uploaded with PART_SIZE parts: its md5 if it fits one PUT, else multipartEtag. */
export function expectedEtag(md5: string, partDigests: readonly Buffer[]): string {
  return partDigests.length <= 1 ? md5 : multipartEtag(partDigests);
}

export interface RemoteObject {
  size: number;
  /** Without quotes. */
  etag: string;
  /** x-amz-meta-md5, written by this tool beside every object. */
  md5Meta: string | undefined;
  lastModified: Date | undefined;
  cacheControl: string | undefined;
  contentType: string | undefined;
}

export interface LocalObject {
  size: number;
  md5: string;
  /** The ETag the server computes when this tool uploads the file. */
  etag: string;
}

export type Comparison = 'absent' | 'same' | 'different';

/**
 * Is the remote object the local file? Sizes must match and the content must be vouched for by the
 * server's ETag (the md5, or the multipart ETag of our part layout) or, when the ETag is of another
 * kind (another part size, server-side encryption), by the md5 this tool stores in the metadata.
 */
export function compareObject(remote: RemoteObject | null, local: LocalObject): Comparison {
  if (!remote) return 'absent';
  if (remote.size !== local.size) return 'different';
  if (remote.etag === local.md5 || remote.etag === local.etag || remote.md5Meta === local.md5) return 'same';
  return 'different';
}

export interface ListedObject {
  key: string;
  size: number;
  lastModified: Date | undefined;
}

export interface ListedImage {
  /** The prefix the image lives under, e.g. metal-os/stable. */
  prefix: string;
  os: string;
  version: string;
  imageKey: string;
  md5Key: string;
  packagesKey: string | null;
  /** The build record published beside it (build.json), if any. */
  recordKey: string | null;
  /** The SPDX SBOM published beside it (img.tar.lz4.spdx.json), if any. */
  sbomKey: string | null;
  size: number;
  lastModified: Date | undefined;
}

/**
 * The images of a listing as metal-image-cache-sync sees them: a key "<prefix>/<os>/<version>/
 * img.tar.lz4" counts only when "<key>.md5" is listed too. Sorted by prefix, os, version.
 */
export function listedImages(objects: readonly ListedObject[], prefix: string): ListedImage[] {
  const byKey = new Map(objects.map((o) => [o.key, o]));
  const out: ListedImage[] = [];
  const under = `${prefix.replace(/\/$/, '')}/`;
  for (const o of objects) {
    if (!o.key.startsWith(under) || !o.key.endsWith(`/${IMAGE_FILE}`)) continue;
    if (!byKey.has(`${o.key}.md5`)) continue;
    const parts = o.key.split('/');
    if (parts.length < 4) continue;
    const [os, version] = parts.slice(-3, -1) as [string, string];
    if (!OS.test(os) || !VERSION.test(version)) continue;
    const dir = parts.slice(0, -1).join('/');
    out.push({
      prefix: parts.slice(0, -3).join('/'),
      os,
      version,
      imageKey: o.key,
      md5Key: `${o.key}.md5`,
      packagesKey: byKey.has(`${dir}/${PACKAGES_FILE}`) ? `${dir}/${PACKAGES_FILE}` : null,
      recordKey: byKey.has(`${dir}/${RECORD_FILE}`) ? `${dir}/${RECORD_FILE}` : null,
      sbomKey: byKey.has(`${dir}/${SBOM_FILE}`) ? `${dir}/${SBOM_FILE}` : null,
      size: o.size,
      lastModified: o.lastModified,
    });
  }
  const cmp = new Intl.Collator('en', { numeric: true }).compare;
  return out.sort((a, b) => cmp(a.prefix, b.prefix) || cmp(a.os, b.os) || cmp(a.version, b.version));
}

/** The release date of a prefix (metal-os/20230710 → 20230710), null for stable and PRs. */
export function prefixDate(prefix: string): string | null {
  if (prefix === STORE_ROOT) return null;
  try {
    return parsePrefix(prefix, 'prefix').date;
  } catch {
    return null;
  }
}

export interface DownloadRow {
  id: string;
  url: string;
  /** null when the .md5 object is not an md5sum line. */
  md5: string | null;
  packagesUrl: string | null;
  /** What the published build record says was tested on these bytes. */
  tested: string;
}

/** The markdown downloads table. */
export function downloadsMarkdown(rows: readonly DownloadRow[]): string {
  const lines = ['| Image | URL | MD5 | Packages | Tested |', '| --- | --- | --- | --- | --- |'];
  for (const r of rows) {
    const pkgs = r.packagesUrl ? `[packages.txt](${r.packagesUrl})` : '-';
    lines.push(`| ${r.id} | ${r.url} | ${r.md5 ?? '(invalid .md5)'} | ${pkgs} | ${r.tested} |`);
  }
  return lines.join('\n') + '\n';
}
