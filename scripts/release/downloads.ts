// `make downloads [PREFIX=...]`: the images under a prefix as a markdown table, read from the bucket
// the way metal-image-cache-sync reads it: ListObjects, and an image counts only when its .md5 is
// listed beside it. The md5 column is the .md5 object's hash, what consumers compare against.
import type { Env } from '../lib/config.ts';
import { UsageError } from '../lib/errors.ts';
import { parseMd5File } from '../lib/md5file.ts';
import { IMAGE_FILE, downloadsMarkdown, imageId, imagePatch, listedImages, normalizeBaseUrl, prefixDate, type DownloadRow } from './plan.ts';
import { STORE_ROOT, parsePrefix, resolvePublishTarget } from './prefix.ts';
import { Store, storeSettings } from './store.ts';
import { parseRecord, testedSummary } from '../lib/build-record.ts';

export interface DownloadsOptions {
  env: Env;
  /** metal-os/stable, stable, 20230710, pull_requests/<slug>, or metal-os for all of them. */
  prefix?: string;
  now?: Date;
}

/** The prefix to list: the one given, else where this environment publishes. */
export function downloadsPrefix(given: string | undefined, env: Env): string {
  if (given) return given.replace(/\/$/, '') === STORE_ROOT ? STORE_ROOT : parsePrefix(given, 'PREFIX').prefix;
  try {
    return resolvePublishTarget(env).prefix;
  } catch (e) {
    // a CI variable that names a wrong target (a tag that is no date) is reported as it is
    if (!(e instanceof UsageError) || !e.message.startsWith('cannot tell where to publish')) throw e;
    throw new UsageError('no PREFIX given, and this environment names no publish target', `run make downloads PREFIX=${STORE_ROOT}/stable (or a date, pull_requests/<slug>, ${STORE_ROOT} for all)`);
  }
}

export async function downloads(o: DownloadsOptions): Promise<{ prefix: string; rows: DownloadRow[]; markdown: string }> {
  const now = o.now ?? new Date();
  const prefix = downloadsPrefix(o.prefix, o.env);
  const baseUrl = normalizeBaseUrl(o.env.PUBLIC_BASE_URL);
  const store = new Store(storeSettings(o.env));
  try {
    await store.check(prefix);
    const rows: DownloadRow[] = [];
    for (const img of listedImages(await store.list(prefix), prefix)) {
      let md5: string | null;
      try {
        md5 = parseMd5File((await store.getBytes(img.md5Key))?.toString('utf8') ?? '', IMAGE_FILE);
      } catch {
        md5 = null;
      }
      const record = img.recordKey ? parseRecord((await store.getBytes(img.recordKey))?.toString('utf8') ?? '') : null;
      rows.push({
        id: imageId(img.os, img.version, imagePatch(prefixDate(img.prefix), img.lastModified ?? now)),
        url: baseUrl + img.imageKey,
        md5,
        packagesUrl: img.packagesKey ? baseUrl + img.packagesKey : null,
        tested: testedSummary(record, md5),
      });
    }
    return { prefix, rows, markdown: downloadsMarkdown(rows) };
  } finally {
    store.destroy();
  }
}
