// `make release`: publish every local image to the prefix the CI environment names. Per image the
// order is img.tar.lz4, packages.txt, img.tar.lz4.md5, each verified before the next, so the md5
// (what metal-image-cache-sync and the metal-hammer trust) only ever appears beside a complete,
// verified image. What is uploaded is what was checked: the image file stays open from its check
// to its upload and is hashed again as it goes out, the small files are held in memory. One run
// writes a prefix at a time (lock.ts). Identical objects are skipped; release prefixes are
// immutable unless forced (make release FORCE=1).
import type { Env } from '../lib/config.ts';
import { MetalError, PreconditionError } from '../lib/errors.ts';
import { formatBytes, info, Progress, warn, type Steps } from '../lib/log.ts';
import { parseMd5File } from '../lib/md5file.ts';
import { checkLocalImage, definedImages, findLocalImages, type ImagePair, type LocalFile, type LocalImage } from './local.ts';
import { PrefixLock } from './lock.ts';
import {
  IMAGE_FILE,
  MD5_FILE,
  UPLOAD_ORDER,
  cacheControl,
  compareObject,
  contentType,
  imageId,
  imagePatch,
  listedImages,
  normalizeBaseUrl,
  objectKey,
  type ArtifactFile,
  type Comparison,
} from './plan.ts';
import { resolvePublishTarget, type PublishTarget } from './prefix.ts';
import { Store, storeSettings } from './store.ts';
import { DockerLogin, RegistryClient, registrySettings, sweepDockerLogins, registryTags, repositoryOf, type RegistrySettings } from './registry.ts';
import { parseRecord, readRecord, writeRecord, type BuildRecord, type RegistryPart } from '../lib/build-record.ts';
import { memoryFile } from './local.ts';
import { imageExists } from '../lib/docker.ts';
import { RECORD_FILE } from './plan.ts';

export interface PublishOptions {
  env: Env;
  imagesDir: string;
  now?: Date;
  dryRun?: boolean;
  /** Overwrite differing objects under a release prefix (make release FORCE=1). */
  force?: boolean;
  /** No progress or log lines (tests). */
  quiet?: boolean;
  /** Run the phases as named, timed steps (the CLI). */
  steps?: Steps;
  /** The <os>/<version> pairs that may be published; default: what the checkout's image.yaml files define. */
  defined?: readonly ImagePair[];
}

export type Action = 'uploaded' | 'skipped' | 'would upload';

export interface PublishedObject {
  /** Image id, e.g. debian-12.0.20230710. */
  id: string;
  file: ArtifactFile;
  key: string;
  url: string;
  size: number;
  action: Action;
}

export interface PublishResult {
  target: PublishTarget;
  objects: PublishedObject[];
}

/** Runs `fn` as a named step when there are steps, else just runs it. */
export function phaseRunner(steps: Steps | undefined): <T>(name: string, fn: () => Promise<T>) => Promise<T> {
  return (name, fn) => (steps ? steps.run(name, fn) : fn());
}

export const FORCE_HINT = 'make release FORCE=1';

export async function publish(o: PublishOptions): Promise<PublishResult> {
  const say = o.quiet ? () => {} : info;
  const phase = phaseRunner(o.steps);
  const now = o.now ?? new Date();
  const baseUrl = normalizeBaseUrl(o.env.PUBLIC_BASE_URL);

  const target = await phase('resolve target', async () => {
    const t = resolvePublishTarget(o.env);
    say(`publishing to ${t.prefix}/ (${t.reason})`);
    return t;
  });
  // Cheap checks first: settings, the local folders, then one request to the store (endpoint,
  // credentials, bucket) and its lock, all before the images are read, hashed and uploaded.
  const settings = o.dryRun ? null : storeSettings(o.env);
  const registry = registrySettings(o.env);
  if (!registry) say('not pushing docker images: REGISTRY is not set (see .env.example)');
  const listing = findLocalImages(o.imagesDir, o.defined ?? definedImages());
  if (!o.quiet) for (const s of listing.setAside) warn(`not published: ${s}`);
  const store = settings ? new Store(settings) : null;
  let lock: PrefixLock | null = null;
  const images: LocalImage[] = [];
  const client = registry && !o.dryRun ? new RegistryClient(registry) : null;
  try {
    if (client) {
      for (const n of sweepDockerLogins()) say(`removed the docker login a killed release left: ${n}`);
      await phase('check registry access', () => client.check(repositoryOf(client.s, listing.found[0]!.storeOs)));
    }
    if (store) {
      await phase('check store access', () => store.check(target.prefix));
      lock = await phase('lock prefix', async () => {
        const l = await PrefixLock.acquire(store, target.prefix, 'release', 'make release');
        say(`holding ${l.key}${l.tookOver ? `, taken over from ${l.tookOver}` : ''}`);
        return l;
      });
    }
    await phase('check local images', async () => {
      for (const f of listing.found) {
        const img = await checkLocalImage(f, { force: o.force, warn: o.quiet ? undefined : warn });
        images.push(img);
        say(`${img.storeOs}/${img.version}: ${IMAGE_FILE} ${formatBytes(img.files[IMAGE_FILE].size)}, md5 ${img.md5} matches its .md5`);
      }
    });
    const ctx: Ctx = { target, baseUrl, now, say, phase, force: o.force ?? false, quiet: o.quiet ?? false };
    if (registry && o.dryRun) planPushes(ctx, registry, images);
    const push = client ? () => phase('push docker images', () => pushAll(ctx, client, images)) : async () => {};
    const result = await (store && lock ? uploadAll(ctx, store, lock, images, push) : dryRun(ctx, images));
    for (const img of images) {
      for (const f of UPLOAD_ORDER) {
        if (!o.quiet && img.files[f].replaced()) warn(`${img.files[f].path} was replaced meanwhile; ${o.dryRun ? 'this plan is' : 'what was published is'} the file as it was checked`);
      }
    }
    return result;
  } finally {
    for (const img of images) await img.close();
    await lock?.release();
    store?.destroy();
  }
}

interface Ctx {
  target: PublishTarget;
  baseUrl: string;
  now: Date;
  say: (line: string) => void;
  phase: ReturnType<typeof phaseRunner>;
  force: boolean;
  quiet: boolean;
}

function keyOf(ctx: Ctx, img: LocalImage, f: ArtifactFile): string {
  return objectKey(ctx.target.prefix, img.storeOs, img.version, f);
}

function row(ctx: Ctx, img: LocalImage, f: ArtifactFile, action: Action, patch: string): PublishedObject {
  const key = keyOf(ctx, img, f);
  return { id: imageId(img.storeOs, img.version, patch), file: f, key, url: ctx.baseUrl + key, size: img.files[f].size, action };
}

/** DRY_RUN: every key and URL, in upload order, without touching the store (no credentials). */
async function dryRun(ctx: Ctx, images: LocalImage[]): Promise<PublishResult> {
  const patch = imagePatch(ctx.target.date, ctx.now);
  const objects = images.flatMap((img) => UPLOAD_ORDER.map((f) => row(ctx, img, f, 'would upload', patch)));
  ctx.say(`[dry-run] the store is not contacted; ${objects.length} object(s) would be written, in this order`);
  return { target: ctx.target, objects };
}

/** DRY_RUN: what would be pushed where, without contacting the registry. */
function planPushes(ctx: Ctx, s: RegistrySettings, images: LocalImage[]): void {
  for (const img of images) {
    const id = parseRecord(img.record.toString('utf8'))?.build?.docker_image_id ?? '(no docker image in the build record)';
    for (const tag of registryTags(ctx.target, img.version)) ctx.say(`[dry-run] would push docker image ${id.slice(0, 19)} as ${repositoryOf(s, img.storeOs)}:${tag}`);
  }
}

/** Pure: the record with its registry part, or the same record when the part is already that. */
export function withRegistry(rec: BuildRecord, part: RegistryPart, now: Date): BuildRecord {
  if (JSON.stringify(rec.registry) === JSON.stringify(part)) return rec;
  return { ...rec, registry: part, written: { ...rec.written, registry: now.toISOString() } };
}

/**
 * Push each image's docker image (the one its tarball was exported from) under its tags, and put
 * the digest into the build record that is published (and the local one). Runs before the record
 * and the md5 are uploaded: a failed push leaves no .md5 in the store.
 */
async function pushAll(ctx: Ctx, client: RegistryClient, images: LocalImage[]): Promise<void> {
  const login = await DockerLogin.open(client.s);
  try {
    for (const img of images) {
      const rec = parseRecord(img.record.toString('utf8'));
      const imageId = rec?.build?.docker_image_id;
      const target = img.os;
      if (!rec || !imageId) throw new PreconditionError(`${img.dir}: the build record names no docker image to push`, `run make ${target}`);
      if (!(await imageExists(imageId))) throw new PreconditionError(`the docker image ${imageId.slice(0, 19)} that ${img.os}/${img.version} was exported from is gone from the docker daemon`, `run make ${target} (it builds and exports it again)`);
      const repository = repositoryOf(client.s, img.storeOs);
      const tags = registryTags(ctx.target, img.version);
      let digest = '';
      for (const tag of tags) {
        const ref = `${repository}:${tag}`;
        const remote = await client.tag(repository, tag);
        if (remote && remote.config === imageId) {
          ctx.say(`${ref} already holds docker image ${imageId.slice(0, 19)} (${remote.digest}), nothing to push`);
          digest = remote.digest;
          continue;
        }
        if (remote && ctx.target.channel === 'release') {
          if (!ctx.force) {
            throw new PreconditionError(
              `${ref} already holds another image (${remote.digest}), and ${ctx.target.prefix}/ is a release: its tags are immutable`,
              `release under a new date, or re-run with ${FORCE_HINT} to overwrite`,
            );
          }
          if (!ctx.quiet) warn(`forced: pushing over the release tag ${ref} (was ${remote.digest})`);
        }
        ctx.say(`pushing docker image ${imageId.slice(0, 19)} as ${ref}`);
        const pushed = await login.push(imageId, ref, tag);
        const now = await client.tag(repository, tag);
        if (!now || now.digest !== pushed || now.config !== imageId) {
          throw new MetalError('tool', `${ref} does not hold what was pushed (${pushed}) right after the push`, 're-run make release');
        }
        ctx.say(`pushed ${ref}: ${pushed}, verified`);
        digest = pushed;
      }
      const part: RegistryPart = { repository, tags, digest, docker_image_id: imageId, prefix: ctx.target.prefix };
      const published = withRegistry(rec, part, ctx.now);
      if (published !== rec) {
        img.record = Buffer.from(`${JSON.stringify(published, null, 2)}\n`);
        img.files[RECORD_FILE] = memoryFile(img.files[RECORD_FILE].path, img.record);
      }
      // the local record says where its image went too (when it is still the record of these bytes)
      const local = readRecord(img.dir);
      if (local?.export?.md5 === img.md5) {
        const updated = withRegistry(local, part, ctx.now);
        if (updated !== local) writeRecord(img.dir, updated);
      }
    }
  } finally {
    await login.close();
  }
}

async function uploadAll(ctx: Ctx, store: Store, lock: PrefixLock, images: LocalImage[], push: () => Promise<void>): Promise<PublishResult> {
  const { target, say, phase } = ctx;
  const decisions = await phase('compare with store', async () => {
    const all = new Map<LocalImage, Record<ArtifactFile, Comparison>>();
    const conflicts: string[] = [];
    for (const img of images) {
      const d = {} as Record<ArtifactFile, Comparison>;
      for (const f of UPLOAD_ORDER) {
        d[f] = compareObject(await store.head(keyOf(ctx, img, f)), img.files[f]);
        if (d[f] === 'different' && target.channel === 'release') conflicts.push(keyOf(ctx, img, f));
      }
      const todo = UPLOAD_ORDER.filter((f) => d[f] !== 'same');
      say(`${img.os}/${img.version}: ${todo.length === 0 ? 'already published, nothing to upload' : `to upload: ${todo.map((f) => `${f} (${d[f] === 'absent' ? 'new' : 'changed'})`).join(', ')}`}`);
      all.set(img, d);
    }
    if (conflicts.length > 0) {
      const more = conflicts.length > 1 ? ` (and ${conflicts.length - 1} more)` : '';
      if (!ctx.force) {
        throw new PreconditionError(
          `${conflicts[0]} already exists with other content${more}, and ${target.prefix}/ is a release: its objects are immutable`,
          `release under a new date, or re-run with ${FORCE_HINT} to overwrite`,
        );
      }
      if (!ctx.quiet) warn(`forced: overwriting ${conflicts.length} object(s) of release ${target.prefix}/`);
    }
    return all;
  });

  // the docker images, after the store said yes and before the record (which names their digest)
  await push();
  const changed: string[] = [];
  for (const img of images) {
    const d = decisions.get(img)!;
    const now = compareObject(await store.head(keyOf(ctx, img, RECORD_FILE)), img.files[RECORD_FILE]);
    if (now === 'different' && d[RECORD_FILE] !== 'different' && target.channel === 'release') changed.push(keyOf(ctx, img, RECORD_FILE));
    d[RECORD_FILE] = now;
  }
  if (changed.length > 0 && !ctx.force) {
    throw new PreconditionError(`${changed[0]} already exists with another registry digest, and ${target.prefix}/ is a release: its objects are immutable`, `release under a new date, or re-run with ${FORCE_HINT} to overwrite`);
  }

  const actions = await phase('upload', async () => {
    const done = new Map<string, Action>();
    for (const img of images) {
      const d = decisions.get(img)!;
      lock.assertHeld();
      if (d[IMAGE_FILE] !== 'same') {
        await abortAbandonedUploads(ctx, store, lock, img);
        if (d[MD5_FILE] !== 'absent') {
          // The old .md5 must not sit beside a new (or half-written) image: it goes first.
          await store.delete(keyOf(ctx, img, MD5_FILE));
          d[MD5_FILE] = 'absent';
          say(`${img.os}/${img.version}: removed the old ${MD5_FILE} until the new image is verified`);
        }
      }
      for (const f of UPLOAD_ORDER) {
        const key = keyOf(ctx, img, f);
        if (d[f] === 'same') {
          done.set(key, 'skipped');
          continue;
        }
        lock.assertHeld();
        if (f === MD5_FILE) await uploadMd5(ctx, store, img);
        else await uploadVerified(store, key, img.files[f], f, target, ctx.quiet);
        done.set(key, 'uploaded');
      }
    }
    return done;
  });

  return phase('verify listing', async () => {
    const listed = listedImages(await store.list(target.prefix), target.prefix);
    const objects: PublishedObject[] = [];
    for (const img of images) {
      const seen = listed.find((l) => l.os === img.storeOs && l.version === img.version && l.prefix === target.prefix);
      if (!seen || seen.size !== img.files[IMAGE_FILE].size) {
        throw new MetalError('tool', `${keyOf(ctx, img, IMAGE_FILE)} is not listed with its .md5 after the upload`, 're-run make release');
      }
      const patch = imagePatch(target.date, seen.lastModified ?? ctx.now);
      for (const f of UPLOAD_ORDER) objects.push(row(ctx, img, f, actions.get(keyOf(ctx, img, f))!, patch));
    }
    say(`${images.length} image(s) listed with their .md5 under ${target.prefix}/, as metal-image-cache-sync sees them`);
    return { target, objects };
  });
}

/**
 * Unfinished multipart uploads of the image key begun before this run took the prefix lock belong
 * to runs that have ended or died (only the lock holder writes): they are aborted. One begun after
 * is someone writing without the lock: nothing is aborted, and the release stops.
 */
async function abortAbandonedUploads(ctx: Ctx, store: Store, lock: PrefixLock, img: LocalImage): Promise<void> {
  const key = keyOf(ctx, img, IMAGE_FILE);
  const ups = await store.unfinishedUploads(key);
  // Store timestamps have one-second precision: an upload begun in the second the lock was taken
  // counts as begun before (only a run without the lock could start one after, in that second).
  const second = (d: Date): number => Math.floor(d.getTime() / 1000);
  const before = ups.filter((u) => u.initiated && second(u.initiated) <= second(lock.acquiredAt));
  const after = ups.filter((u) => u.initiated && second(u.initiated) > second(lock.acquiredAt));
  if (after.length > 0) {
    throw new PreconditionError(
      `${key} has an unfinished upload begun ${after[0]!.initiated!.toISOString()}, after this run took the lock on ${ctx.target.prefix}/: something writes there without the lock`,
      'let that writer (an older checkout of this project?) finish, then re-run make release',
    );
  }
  for (const u of before) await store.abortUpload(key, u.uploadId);
  if (before.length > 0) ctx.say(`${img.os}/${img.version}: aborted ${before.length} unfinished upload(s) begun before this run took the lock (${lock.tookOver ? `left by ${lock.tookOver}` : 'left by a run that has ended'})`);
}

/**
 * The .md5 last: its bytes are those checked against the image, and the image object must still
 * be that image right before it is written. If the .md5 does not read back as the image's md5, it
 * is removed again: no .md5 in the store ever points at other bytes.
 */
async function uploadMd5(ctx: Ctx, store: Store, img: LocalImage): Promise<void> {
  const imageKey = keyOf(ctx, img, IMAGE_FILE);
  const key = keyOf(ctx, img, MD5_FILE);
  if (compareObject(await store.head(imageKey), img.files[IMAGE_FILE]) !== 'same') {
    throw new MetalError('tool', `${imageKey} changed in the store before its ${MD5_FILE} was written; no .md5 was written`, 're-run make release');
  }
  try {
    await uploadVerified(store, key, img.files[MD5_FILE], MD5_FILE, ctx.target, ctx.quiet);
    const text = (await store.getBytes(key))?.toString('utf8') ?? '';
    let remote: string | null = null;
    try {
      remote = parseMd5File(text);
    } catch {
      remote = null;
    }
    if (remote !== img.md5) throw new MetalError('tool', `${key} reads back as ${JSON.stringify(text)}, expected the md5 ${img.md5}; it was removed again`, 're-run make release');
  } catch (e) {
    await store.delete(key).catch(() => {});
    throw e;
  }
}

async function uploadVerified(store: Store, key: string, local: LocalFile, file: ArtifactFile, target: PublishTarget, quiet: boolean): Promise<void> {
  const progress = quiet || file !== IMAGE_FILE ? null : new Progress(`upload ${key} (${formatBytes(local.size)})`);
  const sending = local.read();
  await store.upload(key, sending, {
    size: local.size,
    md5: local.md5,
    contentType: contentType(file),
    cacheControl: cacheControl(target.channel),
    onProgress: progress ? (n) => progress.update(n) : undefined,
  });
  progress?.done(local.size);
  const sent = sending.sent();
  if (sent.md5 !== local.md5 || sent.size !== local.size) {
    throw new MetalError(
      'tool',
      `${local.path} changed while it was uploaded (md5 ${local.md5} when checked, ${sent.md5} as sent): ${key} holds other bytes, and no .md5 beside it`,
      're-run make release once nothing writes the file any more',
    );
  }
  await verifyObject(store, key, local);
  if (!quiet && !progress) info(`uploaded ${key} (${formatBytes(local.size)}), verified`);
  if (progress) info(`verified ${key}`);
}

/**
 * The object as stored must be the local file: same size, and an ETag the server computed from the
 * content we sent (its md5, or the multipart ETag of our parts). Servers whose ETags are not md5
 * based (encryption, integrity ETags) get the object read back and hashed instead.
 */
export async function verifyObject(store: Store, key: string, local: { size: number; md5: string; etag: string }): Promise<void> {
  const r = await store.head(key);
  if (!r) throw new MetalError('tool', `${key} is missing right after its upload`, 're-run make release');
  if (r.size !== local.size) throw new MetalError('tool', `${key} has ${r.size} bytes in the store, ${local.size} locally`, 're-run make release');
  if (r.etag === local.md5 || r.etag === local.etag) return;
  const md5 = await store.md5OfObject(key);
  if (md5 !== local.md5) throw new MetalError('tool', `${key} in the store has md5 ${md5}, the local file ${local.md5}`, 're-run make release');
}
