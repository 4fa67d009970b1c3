// The S3 image store: settings from the environment, one client, and the few operations the
// publish commands need. Every SDK failure becomes a one-line typed error with the next step;
// credentials never appear in any message (they are scrubbed from everything this module throws).
import {
  S3Client,
  PutObjectCommand,
  HeadObjectCommand,
  GetObjectCommand,
  CopyObjectCommand,
  DeleteObjectCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  ListMultipartUploadsCommand,
  AbortMultipartUploadCommand,
  type _Object,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createHash } from 'node:crypto';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { flag, type Env } from '../lib/config.ts';
import { MetalError, PreconditionError, UsageError } from '../lib/errors.ts';
import { debug } from '../lib/log.ts';
import type { Sending } from './local.ts';
import { PART_SIZE, type ListedObject, type RemoteObject } from './plan.ts';

export interface StoreSettings {
  /** Custom endpoint (MinIO, versitygw, Ceph, ...); undefined: AWS. */
  endpoint: string | undefined;
  region: string;
  bucket: string;
  forcePathStyle: boolean;
  accessKeyId: string;
  secretAccessKey: string;
  /** A request fails after this long without a byte moving (S3_STALL_TIMEOUT, default 30 s). */
  stallTimeoutMs: number;
}

/** Attempts per request (the first and two retries). */
export const ATTEMPTS = 3;
export const DEFAULT_STALL_TIMEOUT_S = 30;

// The SDK warns on every run that its releases after January 2027 will need node 22; this pinned
// version works on the node >= 20 the project supports, and the warning would bury the real output.
process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] = 'true';

const CREDENTIALS_HINT = 'check S3_ACCESS_KEY_ID/S3_SECRET_ACCESS_KEY in .env';

/** Pure: the store settings from the environment. Missing or malformed values fail here, early. */
export function storeSettings(env: Env): StoreSettings {
  const bucket = env.S3_BUCKET;
  if (!bucket) throw new PreconditionError('S3_BUCKET is not set', 'set S3_BUCKET in .env (see .env.example)');
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw new UsageError(`S3_BUCKET="${bucket}" is not a bucket name`, 'set S3_BUCKET in .env');
  let endpoint: string | undefined;
  if (env.S3_ENDPOINT) {
    let u: URL;
    try {
      u = new URL(env.S3_ENDPOINT);
    } catch {
      throw new UsageError('S3_ENDPOINT is not a URL', 'set S3_ENDPOINT=https://host[:port] in .env');
    }
    if (u.username || u.password) throw new UsageError('S3_ENDPOINT must not carry credentials', 'put them in S3_ACCESS_KEY_ID/S3_SECRET_ACCESS_KEY instead');
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError(`S3_ENDPOINT="${env.S3_ENDPOINT}" must be http(s)`, 'set S3_ENDPOINT=https://host[:port] in .env');
    endpoint = env.S3_ENDPOINT.replace(/\/+$/, '');
  }
  const accessKeyId = env.S3_ACCESS_KEY_ID;
  const secretAccessKey = env.S3_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) {
    const missing = [!accessKeyId && 'S3_ACCESS_KEY_ID', !secretAccessKey && 'S3_SECRET_ACCESS_KEY'].filter(Boolean).join(' and ');
    throw new PreconditionError(`${missing} not set`, 'put the store credentials in .env (see .env.example); make release DRY_RUN=1 needs none');
  }
  let stallTimeoutMs = DEFAULT_STALL_TIMEOUT_S * 1000;
  if (env.S3_STALL_TIMEOUT !== undefined) {
    const sec = Number(env.S3_STALL_TIMEOUT);
    if (!/^\d+(\.\d+)?$/.test(env.S3_STALL_TIMEOUT) || sec < 1 || sec > 3600) throw new UsageError(`S3_STALL_TIMEOUT=${env.S3_STALL_TIMEOUT} is not a number of seconds from 1 to 3600`, `set S3_STALL_TIMEOUT=${DEFAULT_STALL_TIMEOUT_S} in .env (the default)`);
    stallTimeoutMs = sec * 1000;
  }
  return {
    stallTimeoutMs,
    endpoint,
    region: env.S3_REGION ?? 'us-east-1',
    bucket,
    forcePathStyle: env.S3_FORCE_PATH_STYLE === undefined ? endpoint !== undefined : flag(env, 'S3_FORCE_PATH_STYLE'),
    accessKeyId,
    secretAccessKey,
  };
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ECONNRESET', 'EPIPE', 'TimeoutError']);
// XAdminUserNotFound: versitygw's answer to an unknown access key.
const BAD_CREDENTIALS = new Set(['InvalidAccessKeyId', 'XAdminUserNotFound', 'SignatureDoesNotMatch', 'InvalidClientTokenId', 'InvalidToken', 'ExpiredToken', 'AuthorizationHeaderMalformed']);

interface SdkError {
  name?: string;
  code?: string;
  Code?: string;
  message?: string;
  errors?: { code?: string }[];
  $metadata?: { httpStatusCode?: number };
}

/**
 * Pure: a one-line typed error for an SDK failure. `where` names the store ("S3 store <endpoint>"),
 * `what` the operation and key ("upload metal-os/stable/debian/12/img.tar.lz4"). Any of `secrets`
 * found in the server's message is replaced by ***.
 */
export function explainS3Error(e: unknown, where: string, what: string, bucket: string, secrets: readonly string[] = []): MetalError {
  if (e instanceof MetalError) return e;
  const err = (e ?? {}) as SdkError;
  const code = err.code ?? err.errors?.find((x) => x.code)?.code ?? err.Code ?? err.name ?? 'Error';
  const status = err.$metadata?.httpStatusCode;
  if (BAD_CREDENTIALS.has(code)) return new PreconditionError(`${where} rejected the credentials (${code})`, CREDENTIALS_HINT);
  if (code === 'NoSuchBucket') return new PreconditionError(`bucket "${bucket}" does not exist at ${where}`, 'create it, or set S3_BUCKET in .env');
  if (code === 'AccessDenied' || code === 'Forbidden' || status === 403) {
    return new PreconditionError(`${where} denied ${what} in bucket "${bucket}" (${code})`, `${CREDENTIALS_HINT}, and that they may write bucket "${bucket}"`);
  }
  if (UNREACHABLE.has(code) || UNREACHABLE.has(err.name ?? '')) {
    return new PreconditionError(`${where} is not reachable (${code === 'TimeoutError' || code === 'ETIMEDOUT' ? 'timed out' : code}) during ${what}`, 'check S3_ENDPOINT in .env and that the server is up');
  }
  let detail = (err.message ?? '').split('\n')[0]!.slice(0, 200);
  for (const s of secrets) detail = detail.split(s).join('***');
  return new MetalError('tool', `${what} failed at ${where}: ${code}${status ? ` (HTTP ${status})` : ''}${detail && detail !== code ? `: ${detail}` : ''}`, 're-run with METAL_DEBUG=1 for the request log');
}

/**
 * An HTTP(S) agent whose requests fail after `idleMs` in which their connection moved no byte,
 * in either direction. Node's own socket timeout (the SDK's socketTimeout) restarts once while a
 * write is pending, and the SDK registers it 3 s late: against a server that stops reading mid-upload
 * one attempt took 63 s with a 30 s setting. One connection per request (no keep-alive), so a
 * connection's silence is its request's.
 */
export function stallGuardedAgent(https: boolean, idleMs: number): HttpAgent {
  const agent = https ? new HttpsAgent({ keepAlive: false, maxSockets: Infinity }) : new HttpAgent({ keepAlive: false, maxSockets: Infinity });
  const create = agent.createConnection.bind(agent) as (o: unknown, cb?: unknown) => Socket;
  (agent as unknown as { createConnection: typeof create }).createConnection = (options, cb) => {
    const socket = create(options, cb);
    let moved = -1;
    let last = Date.now();
    const tick = Math.max(100, Math.min(1000, idleMs / 10));
    const timer = setInterval(() => {
      if (socket.connecting) {
        last = Date.now(); // the SDK's connectionTimeout bounds connecting
        return;
      }
      const now = socket.bytesRead + socket.bytesWritten;
      if (now !== moved) {
        moved = now;
        last = Date.now();
      } else if (Date.now() - last >= idleMs) {
        clearInterval(timer);
        socket.destroy(Object.assign(new Error(`no byte moved for ${idleMs / 1000} s`), { name: 'TimeoutError', code: 'ETIMEDOUT' }));
      }
    }, tick);
    timer.unref();
    socket.once('close', () => clearInterval(timer));
    return socket;
  };
  return agent;
}

function unquote(etag: string | undefined): string {
  return (etag ?? '').replace(/^"|"$/g, '');
}

export interface UploadOptions {
  size: number;
  /** Stored as x-amz-meta-md5. */
  md5: string;
  contentType: string;
  cacheControl: string | undefined;
  onProgress?: (loaded: number) => void;
}

export class Store {
  readonly bucket: string;
  /** The store in messages: "S3 store <endpoint>", never credentials. */
  readonly where: string;
  private readonly s3: S3Client;
  private readonly probe: S3Client;
  private readonly secrets: string[];

  constructor(readonly settings: StoreSettings) {
    this.bucket = settings.bucket;
    this.where = `S3 store ${settings.endpoint ?? `https://s3.${settings.region}.amazonaws.com`}`;
    this.secrets = [settings.secretAccessKey, settings.accessKeyId].filter((s) => s.length >= 4);
    const https = (settings.endpoint ?? 'https:').startsWith('https:');
    const make = (maxAttempts: number, idle: number): S3Client =>
      new S3Client({
        region: settings.region,
        endpoint: settings.endpoint,
        forcePathStyle: settings.forcePathStyle,
        credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey },
        maxAttempts,
        // S3-compatible servers differ in their support of the newer flexible checksums; the
        // content is verified through ETags and a read-back instead.
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        // The agent fails a silent request after `idle`; node's socket timeout stays as a backstop.
        requestHandler: { connectionTimeout: 3000, socketTimeout: 2 * idle + 5000, ...(https ? { httpsAgent: stallGuardedAgent(true, idle) } : { httpAgent: stallGuardedAgent(false, idle) }) },
      });
    // A server that stalls fails a request after S3_STALL_TIMEOUT (30 s) without a byte moving,
    // ATTEMPTS (3) attempts in all: a stalled upload gives up after about 3 x 30 s, and its
    // multipart upload is then aborted with one short attempt.
    this.s3 = make(ATTEMPTS, settings.stallTimeoutMs);
    // One attempt with short timeouts: a wrong endpoint fails in seconds, not after retries.
    this.probe = make(1, Math.min(5000, settings.stallTimeoutMs));
  }

  destroy(): void {
    this.s3.destroy();
    this.probe.destroy();
  }

  private scrub(msg: string): string {
    let out = msg;
    for (const s of this.secrets) out = out.split(s).join('***');
    return out;
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    debug(`s3: ${what}`);
    try {
      return await fn();
    } catch (e) {
      throw this.wrap(e, what);
    }
  }

  /** Fails fast (one attempt, 5 s) on a wrong endpoint, wrong credentials or a missing bucket. */
  async check(prefix: string): Promise<void> {
    await this.call(`list ${prefix}/`, () => this.probe.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: `${prefix}/`, MaxKeys: 1 })));
  }

  async head(key: string): Promise<RemoteObject | null> {
    try {
      const r = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return {
        size: r.ContentLength ?? 0,
        etag: unquote(r.ETag),
        md5Meta: r.Metadata?.['md5'],
        lastModified: r.LastModified,
        cacheControl: r.CacheControl,
        contentType: r.ContentType,
      };
    } catch (e) {
      const err = e as SdkError;
      if (err.name === 'NotFound' || err.name === 'NoSuchKey' || err.$metadata?.httpStatusCode === 404) return null;
      throw this.wrap(e, `head ${key}`);
    }
  }

  private wrap(e: unknown, what: string): MetalError {
    debug(this.scrub(`s3: ${what}: ${(e as Error)?.name}: ${(e as Error)?.message}`));
    return explainS3Error(e, this.where, what, this.bucket, this.secrets);
  }

  /**
   * The object's bytes (small objects only: md5 files, packages lists). null when absent. `once`:
   * one short attempt (cleanup on the way out, when the store may be what failed).
   */
  async getBytes(key: string, o: { once?: boolean } = {}): Promise<Buffer | null> {
    try {
      const r = await (o.once ? this.probe : this.s3).send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return Buffer.from(await r.Body!.transformToByteArray());
    } catch (e) {
      const err = e as SdkError;
      if (err.name === 'NoSuchKey' || err.$metadata?.httpStatusCode === 404) return null;
      throw this.wrap(e, `get ${key}`);
    }
  }

  /** md5 of an object's content, streamed: the verification of last resort when ETags say nothing. */
  async md5OfObject(key: string): Promise<string> {
    return this.call(`read ${key}`, async () => {
      const r = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      const h = createHash('md5');
      for await (const chunk of r.Body as Readable) h.update(chunk as Buffer);
      return h.digest('hex');
    });
  }

  /**
   * Upload a body: one PUT up to PART_SIZE, multipart above. The md5 is kept as x-amz-meta-md5.
   * A failed multipart upload is aborted with one short attempt (a stalled server must not hold
   * the run for another round of retries); if even that fails, the next release, holding the
   * prefix lock, aborts it.
   */
  async upload(key: string, sending: Sending, o: UploadOptions): Promise<void> {
    const up = new Upload({
      client: this.s3,
      partSize: PART_SIZE,
      queueSize: 4,
      leavePartsOnError: true,
      params: {
        Bucket: this.bucket,
        Key: key,
        Body: sending.body,
        ContentLength: o.size,
        ContentType: o.contentType,
        CacheControl: o.cacheControl,
        Metadata: { md5: o.md5 },
      },
    });
    if (o.onProgress) up.on('httpUploadProgress', (p) => o.onProgress!(p.loaded ?? 0));
    try {
      await this.call(`upload ${key}`, () => up.done());
    } catch (e) {
      if (up.uploadId) {
        try {
          await this.probe.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: up.uploadId }));
        } catch (abortError) {
          debug(this.scrub(`s3: abort ${key} upload ${up.uploadId} failed: ${(abortError as Error).message} (the next release aborts it)`));
        }
      }
      throw e;
    }
  }

  /** Write a small object only if the key does not exist (If-None-Match: *). Its ETag, or null when it exists. */
  async putIfAbsent(key: string, body: Buffer, contentType: string): Promise<string | null> {
    return this.conditionalPut(key, body, contentType, { IfNoneMatch: '*' });
  }

  /** Replace a small object only if it is still the version with this ETag. The new ETag, or null when it changed. */
  async putIfMatch(key: string, body: Buffer, contentType: string, etag: string): Promise<string | null> {
    return this.conditionalPut(key, body, contentType, { IfMatch: `"${etag}"` });
  }

  private async conditionalPut(key: string, body: Buffer, contentType: string, cond: { IfNoneMatch?: string; IfMatch?: string }): Promise<string | null> {
    debug(`s3: put ${key} (${cond.IfNoneMatch ? 'if absent' : 'if unchanged'})`);
    try {
      const r = await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: contentType, CacheControl: 'no-store', ...cond }));
      return unquote(r.ETag);
    } catch (e) {
      const err = e as SdkError;
      const status = err.$metadata?.httpStatusCode;
      // 412: the condition failed; 409 ConditionalRequestConflict: a concurrent conditional write won
      if (status === 412 || status === 409 || err.name === 'PreconditionFailed' || err.name === 'ConditionalRequestConflict') return null;
      throw this.wrap(e, `put ${key}`);
    }
  }

  /** Server-side copy (objects up to 5 GiB) with the given headers instead of the source's. */
  async copy(from: string, to: string, o: { md5: string; contentType: string | undefined; cacheControl: string | undefined }): Promise<void> {
    const source = `${this.bucket}/${from}`.split('/').map(encodeURIComponent).join('/');
    await this.call(`copy ${from} to ${to}`, () =>
      this.s3.send(
        new CopyObjectCommand({
          Bucket: this.bucket,
          Key: to,
          CopySource: source,
          MetadataDirective: 'REPLACE',
          ContentType: o.contentType,
          CacheControl: o.cacheControl,
          Metadata: { md5: o.md5 },
        }),
      ),
    );
  }

  async delete(key: string, o: { once?: boolean } = {}): Promise<void> {
    await this.call(`delete ${key}`, () => (o.once ? this.probe : this.s3).send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })));
  }

  /** The unfinished multipart uploads of exactly this key, oldest first. Servers that cannot list them give []. */
  async unfinishedUploads(key: string): Promise<{ uploadId: string; initiated: Date | undefined }[]> {
    try {
      const r = await this.s3.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: key }));
      return (r.Uploads ?? [])
        .filter((u) => u.Key === key && u.UploadId)
        .map((u) => ({ uploadId: u.UploadId!, initiated: u.Initiated }))
        .sort((a, b) => (a.initiated?.getTime() ?? 0) - (b.initiated?.getTime() ?? 0));
    } catch (e) {
      const m = this.wrap(e, `list unfinished uploads of ${key}`);
      if (m.kind === 'precondition') throw m;
      debug(`s3: ${m.message} (ignored: the server may not list multipart uploads)`);
      return [];
    }
  }

  async abortUpload(key: string, uploadId: string): Promise<void> {
    await this.call(`abort the unfinished upload ${uploadId} of ${key}`, () => this.s3.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId })));
  }

  /**
   * Every object under a prefix, with ListObjects (v1) pages like metal-image-cache-sync reads the
   * bucket.
   */
  async list(prefix: string): Promise<ListedObject[]> {
    const out: ListedObject[] = [];
    let marker: string | undefined;
    for (;;) {
      const page = await this.call(`list ${prefix}/`, () => this.s3.send(new ListObjectsCommand({ Bucket: this.bucket, Prefix: `${prefix}/`, Marker: marker })));
      const contents: _Object[] = page.Contents ?? [];
      for (const o of contents) if (o.Key) out.push({ key: o.Key, size: o.Size ?? 0, lastModified: o.LastModified });
      if (!page.IsTruncated || contents.length === 0) break;
      marker = page.NextMarker ?? contents[contents.length - 1]!.Key;
    }
    return out;
  }
}
