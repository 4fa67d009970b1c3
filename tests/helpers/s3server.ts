// A real S3 server for tests and demos: versitygw (Apache-2.0, pinned in scripts/tools/go.mod,
// built by `make setup` into .state/bin/) with its posix backend on a temp dir, on 127.0.0.1 at a
// free port, with throwaway credentials.
//
// As a program it runs one server until Ctrl-C and writes its settings to an env file (0600), so
// `make release` can be pointed at it without printing the secret:
//   node --import tsx tests/helpers/s3server.ts /tmp/s3.env &
//   METAL_ENV_FILE=/tmp/s3.env make release PUBLISH_PREFIX=metal-os/stable
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { config } from '../../scripts/lib/config.ts';
import { PreconditionError } from '../../scripts/lib/errors.ts';
import { stream, type Streaming } from '../../scripts/lib/shell.ts';
import '../../scripts/release/store.ts'; // for its silencing of the SDK's node-version warning

export interface S3Server {
  endpoint: string;
  port: number;
  bucket: string;
  dataDir: string;
  /** The S3_* settings for this server, as config keys. */
  env: Record<'S3_ENDPOINT' | 'S3_REGION' | 'S3_BUCKET' | 'S3_ACCESS_KEY_ID' | 'S3_SECRET_ACCESS_KEY' | 'S3_FORCE_PATH_STYLE', string>;
  /** An SDK client with the server's credentials, for assertions. */
  client: S3Client;
  stop(): Promise<void>;
}

export function versitygwBinary(): string {
  const bin = join(config().binDir, 'versitygw');
  if (!existsSync(bin)) throw new PreconditionError(`${bin} is missing (the S3 test server)`, 'run make setup');
  return bin;
}

/** A TCP port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

async function waitForHttp(url: string, proc: Streaming, timeoutMs: number): Promise<void> {
  let exited: unknown = null;
  proc.done.then(
    () => (exited = new Error('versitygw exited')),
    (e: unknown) => (exited = e),
  );
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exited) throw exited;
    try {
      await fetch(url, { signal: AbortSignal.timeout(500) });
      return; // any HTTP answer (403 without credentials) means it is serving
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`versitygw did not answer on ${url} within ${timeoutMs} ms`);
}

export async function startS3Server(opts: { bucket?: string } = {}): Promise<S3Server> {
  const bin = versitygwBinary();
  const dataDir = mkdtempSync(join(tmpdir(), 'metal-s3-'));
  const port = await freePort();
  const accessKeyId = `test${randomBytes(6).toString('hex')}`;
  const secretAccessKey = randomBytes(18).toString('base64url');
  const endpoint = `http://127.0.0.1:${port}`;
  // Credentials go through the environment, not argv: argv is logged with --debug and shown by ps.
  const proc = stream([bin, '--port', `127.0.0.1:${port}`, '--quiet', 'posix', dataDir], {
    env: { ROOT_ACCESS_KEY_ID: accessKeyId, ROOT_SECRET_ACCESS_KEY: secretAccessKey },
    stdout: 'ignore',
  });
  const stop = async (): Promise<void> => {
    proc.kill();
    await proc.done.catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await waitForHttp(endpoint, proc, 10_000);
    const bucket = opts.bucket ?? 'metal-images';
    const client = new S3Client({ region: 'us-east-1', endpoint, forcePathStyle: true, credentials: { accessKeyId, secretAccessKey } });
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    return {
      endpoint,
      port,
      bucket,
      dataDir,
      env: { S3_ENDPOINT: endpoint, S3_REGION: 'us-east-1', S3_BUCKET: bucket, S3_ACCESS_KEY_ID: accessKeyId, S3_SECRET_ACCESS_KEY: secretAccessKey, S3_FORCE_PATH_STYLE: '1' },
      client,
      stop: async () => {
        client.destroy();
        await stop();
      },
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

export interface Proxy {
  endpoint: string;
  /** From now on no byte passes in either direction, on open or new connections: a server that hangs. */
  stall(): void;
  close(): Promise<void>;
}

/**
 * A TCP proxy to 127.0.0.1:<port> that passes client→server bytes at `bytesPerSecond` in total over
 * all connections: a slow uplink, so an upload can be interrupted part-way without hooks in the code.
 * `stall()` turns it into a server that accepts connections and stops answering mid-transfer.
 */
export async function startThrottledProxy(port: number, bytesPerSecond: number): Promise<Proxy> {
  let nextFree = Date.now();
  let stalled = false;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    if (stalled) {
      client.pause();
      return;
    }
    const upstream = connect(port, '127.0.0.1');
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    for (const s of [client, upstream]) {
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    let inFlight = false;
    let ended = false;
    client.on('end', () => (inFlight ? (ended = true) : upstream.end()));
    upstream.on('data', (chunk: Buffer) => {
      if (!stalled) client.write(chunk);
      else upstream.pause();
    });
    upstream.on('end', () => {
      if (!stalled) client.end();
    });
    client.on('data', (chunk: Buffer) => {
      const now = Date.now();
      nextFree = Math.max(now, nextFree) + (chunk.length * 1000) / bytesPerSecond;
      client.pause();
      inFlight = true;
      setTimeout(() => {
        inFlight = false;
        if (stalled) return; // the chunk is swallowed and the client stays paused: nothing more is read
        if (!upstream.destroyed) upstream.write(chunk);
        if (ended) upstream.end();
        else client.resume();
      }, nextFree - now);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port: proxyPort } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${proxyPort}`,
    stall: () => {
      stalled = true;
      for (const s of sockets) s.pause();
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// As a program: run a server until SIGINT/SIGTERM; its settings go to the env file named.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const envFile = process.argv[2];
  if (!envFile) {
    console.error('usage: node --import tsx tests/helpers/s3server.ts <env-file>');
    process.exit(2);
  }
  const srv = await startS3Server();
  writeFileSync(envFile, Object.entries(srv.env).map(([k, v]) => `${k}=${v}\n`).join(''), { mode: 0o600 });
  console.log(`versitygw serving ${srv.endpoint}, bucket ${srv.bucket}, data in ${srv.dataDir}`);
  console.log(`settings (with the secret) written to ${envFile}: set -a; . ${envFile}; set +a`);
  const quit = (): void => {
    void srv.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', quit);
  process.on('SIGTERM', quit);
}
