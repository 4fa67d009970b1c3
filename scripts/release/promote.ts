// `make promote DATE=YYYYMMDD`: upstream's release practice. The images tested on stable/ are
// copied server-side (CopyObject, no download) to metal-os/<DATE>/, the .md5 of each image last,
// each copy verified. A release prefix is immutable: differing objects there need FORCE=1. It holds
// the locks of stable/ (nothing changes what it copies) and of the release prefix (lock.ts).
import type { Env } from '../lib/config.ts';
import { PreconditionError, UsageError } from '../lib/errors.ts';
import { info, warn, type Steps } from '../lib/log.ts';
import { parseMd5File } from '../lib/md5file.ts';
import { createHash } from 'node:crypto';
import {
  IMAGE_FILE,
  MD5_FILE,
  PACKAGES_FILE,
  SBOM_FILE,
  RECORD_FILE,
  UPLOAD_ORDER,
  cacheControl,
  compareObject,
  contentType,
  imageId,
  listedImages,
  normalizeBaseUrl,
  objectKey,
  type ArtifactFile,
  type Comparison,
  type ListedImage,
  type LocalObject,
} from './plan.ts';
import { STORE_ROOT, isDate, parsePrefix, resolvePublishTarget, type PublishTarget } from './prefix.ts';
import { PrefixLock } from './lock.ts';
import { phaseRunner, verifyObject } from './publish.ts';
import { Store, storeSettings } from './store.ts';

export const STABLE_PREFIX = `${STORE_ROOT}/stable`;
const MAX_COPY = 5 * 1024 ** 3;

export interface PromoteOptions {
  env: Env;
  /** YYYYMMDD; default DATE from the environment, or the date of a release pipeline. */
  date?: string;
  force?: boolean;
  dryRun?: boolean;
  quiet?: boolean;
  steps?: Steps;
}

export type CopyAction = 'copied' | 'skipped' | 'would copy';

export interface PromotedObject {
  id: string;
  file: ArtifactFile;
  from: string;
  key: string;
  url: string;
  size: number;
  action: CopyAction;
}

/** The release to promote to: the DATE given, or the date of a tag pipeline. */
export function promoteTarget(date: string | undefined, env: Env): PublishTarget {
  if (date) {
    if (!isDate(date)) throw new UsageError(`DATE=${date} is not a date YYYYMMDD`, 'e.g. make promote DATE=20230710');
    return parsePrefix(date, 'DATE');
  }
  let t: PublishTarget | null = null;
  try {
    t = resolvePublishTarget(env);
  } catch {
    t = null;
  }
  if (t?.channel === 'release') return t;
  throw new UsageError(`DATE is not set: promote copies ${STABLE_PREFIX}/ to ${STORE_ROOT}/<DATE>/`, 'run make promote DATE=YYYYMMDD, e.g. make promote DATE=20230710');
}

interface Source {
  image: ListedImage;
  objects: Record<ArtifactFile, LocalObject & { key: string; contentType: string | undefined }>;
}

export async function promote(o: PromoteOptions): Promise<{ target: PublishTarget; objects: PromotedObject[] }> {
  const say = o.quiet ? () => {} : info;
  const phase = phaseRunner(o.steps);
  const baseUrl = normalizeBaseUrl(o.env.PUBLIC_BASE_URL);
  const target = await phase('resolve target', async () => {
    const t = promoteTarget(o.date ?? o.env.DATE, o.env);
    say(`promoting ${STABLE_PREFIX}/ to ${t.prefix}/ (${t.reason})`);
    return t;
  });
  const store = new Store(storeSettings(o.env));
  const locks: PrefixLock[] = [];
  try {
    await store.check(STABLE_PREFIX);
    if (!o.dryRun) {
      await phase('lock prefixes', async () => {
        const rerun = `make promote DATE=${target.date}`;
        for (const prefix of [STABLE_PREFIX, target.prefix]) locks.push(await PrefixLock.acquire(store, prefix, 'promote', rerun));
      });
    }
    const sources = await phase('check stable images', async () => {
      const listed = listedImages(await store.list(STABLE_PREFIX), STABLE_PREFIX);
      if (listed.length === 0) {
        throw new PreconditionError(`no complete image under ${STABLE_PREFIX}/ (an image counts only with its .md5 beside it)`, 'publish the default branch first: make release');
      }
      const out: Source[] = [];
      for (const image of listed) out.push(await readSource(store, image, say));
      return out;
    });

    const keyOf = (s: Source, f: ArtifactFile): string => objectKey(target.prefix, s.image.os, s.image.version, f);
    const decisions = await phase('check release prefix', async () => {
      const all = new Map<Source, Record<ArtifactFile, Comparison>>();
      const conflicts: string[] = [];
      for (const s of sources) {
        const d = {} as Record<ArtifactFile, Comparison>;
        for (const f of UPLOAD_ORDER) {
          d[f] = compareObject(await store.head(keyOf(s, f)), s.objects[f]);
          if (d[f] === 'different') conflicts.push(keyOf(s, f));
        }
        all.set(s, d);
      }
      if (conflicts.length > 0) {
        const more = conflicts.length > 1 ? ` (and ${conflicts.length - 1} more)` : '';
        if (!o.force) {
          throw new PreconditionError(
            `${conflicts[0]} already exists with other content${more}, and ${target.prefix}/ is a release: its objects are immutable`,
            `promote to a new date, or re-run with make promote DATE=${target.date} FORCE=1 to overwrite`,
          );
        }
        if (!o.quiet) warn(`forced: overwriting ${conflicts.length} object(s) of release ${target.prefix}/`);
      }
      return all;
    });

    return await phase(o.dryRun ? 'plan copies' : 'copy', async () => {
      const objects: PromotedObject[] = [];
      for (const s of sources) {
        const d = decisions.get(s)!;
        const id = imageId(s.image.os, s.image.version, target.date!);
        const row = (f: ArtifactFile, action: CopyAction): PromotedObject => ({ id, file: f, from: s.objects[f].key, key: keyOf(s, f), url: baseUrl + keyOf(s, f), size: s.objects[f].size, action });
        if (o.dryRun) {
          for (const f of UPLOAD_ORDER) objects.push(row(f, d[f] === 'same' ? 'skipped' : 'would copy'));
          continue;
        }
        if (d[IMAGE_FILE] !== 'same' && d[MD5_FILE] !== 'absent') {
          await store.delete(keyOf(s, MD5_FILE));
          d[MD5_FILE] = 'absent';
        }
        for (const f of UPLOAD_ORDER) {
          if (d[f] === 'same') {
            objects.push(row(f, 'skipped'));
            continue;
          }
          for (const l of locks) l.assertHeld();
          const src = s.objects[f];
          await store.copy(src.key, keyOf(s, f), { md5: src.md5, contentType: src.contentType ?? contentType(f), cacheControl: cacheControl('release') });
          await verifyObject(store, keyOf(s, f), src);
          say(`copied ${src.key} to ${keyOf(s, f)}, verified`);
          objects.push(row(f, 'copied'));
        }
      }
      return { target, objects };
    });
  } finally {
    for (const l of locks.reverse()) await l.release();
    store.destroy();
  }
}

/** One stable image, checked to be consistent: the image matches its .md5, packages.txt exists. */
async function readSource(store: Store, image: ListedImage, say: (s: string) => void): Promise<Source> {
  const fix = 'wait for the stable upload to finish, or re-run make release on the default branch';
  const md5Bytes = await store.getBytes(image.md5Key);
  let md5: string;
  try {
    md5 = parseMd5File(md5Bytes?.toString('utf8') ?? '', IMAGE_FILE);
  } catch (e) {
    throw new PreconditionError(`${image.md5Key}: ${(e as Error).message}`, fix);
  }
  if (!image.packagesKey) throw new PreconditionError(`${image.imageKey} has no ${PACKAGES_FILE} beside it`, fix);
  if (!image.sbomKey) throw new PreconditionError(`${image.imageKey} has no ${SBOM_FILE} beside it`, 're-run make release on the default branch (it publishes the SBOM)');
  if (!image.recordKey) throw new PreconditionError(`${image.imageKey} has no ${RECORD_FILE} beside it: nothing says what was tested`, 're-run make release on the default branch (it publishes the build record)');
  const head = await store.head(image.imageKey);
  if (!head) throw new PreconditionError(`${image.imageKey} disappeared while promoting`, fix);
  if (head.size > MAX_COPY) throw new PreconditionError(`${image.imageKey} is larger than the 5 GiB a single CopyObject can copy`, 'copy it with a multipart copy (not implemented)');
  if (head.etag !== md5 && head.md5Meta !== md5 && (await store.md5OfObject(image.imageKey)) !== md5) {
    throw new PreconditionError(`${image.imageKey} does not match its .md5 ${md5}`, fix);
  }
  const small = async (key: string, known?: Buffer | null): Promise<LocalObject & { key: string; contentType: string | undefined }> => {
    const bytes = known ?? (await store.getBytes(key));
    if (!bytes) throw new PreconditionError(`${key} disappeared while promoting`, fix);
    const h = createHash('md5').update(bytes).digest('hex');
    return { key, size: bytes.length, md5: h, etag: h, contentType: undefined };
  };
  say(`${image.imageKey}: md5 ${md5} matches its .md5`);
  return {
    image,
    objects: {
      [IMAGE_FILE]: { key: image.imageKey, size: head.size, md5, etag: head.etag, contentType: head.contentType },
      [PACKAGES_FILE]: await small(image.packagesKey),
      [SBOM_FILE]: await small(image.sbomKey),
      [RECORD_FILE]: await small(image.recordKey),
      [MD5_FILE]: await small(image.md5Key, md5Bytes),
    } as Source['objects'],
  };
}
