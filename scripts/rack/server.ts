// The test host's side of provisioning, on 127.0.0.1 only: what metal-api and the image store are
// for the metal-hammer. It serves the job (image URL, filesystem layout, machine) and the image
// files, and takes the hammer's step events and the files it wrote (install.yaml, boot-info.yaml,
// fstab, the installer's output). The hammer VM reaches it through QEMU's user network
// (guestfwd), which only forwards to this loopback port.
import { createReadStream, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { basename, join } from 'node:path';

export interface HammerEvent {
  step: string;
  status: 'start' | 'ok' | 'failed';
  seconds?: number;
  detail?: string;
  output?: string;
  /** Seconds since the server started (the host's clock). */
  at: number;
}

export interface ProvisionServer {
  port: number;
  events: HammerEvent[];
  files: Map<string, Buffer>;
  /** Resolves with the first event matching `pred` (or rejects when `signal` fires). */
  waitFor(pred: (e: HammerEvent) => boolean, abort: Promise<unknown>): Promise<HammerEvent>;
  /** Bytes of the image served so far (for progress). */
  served(): number;
  close(): Promise<void>;
}

/** Files the hammer may upload; anything else is refused. */
export const UPLOADS = ['install.yaml', 'boot-info.yaml', 'fstab', 'lvmlocal.conf', 'installer.log'] as const;

function body(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > limit) {
        reject(new Error('body too large'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/**
 * Serve `job` at /job.json and the artifact files of `imageDir` under /images/<name>. `listeners`
 * get every event as it arrives.
 */
export async function startServer(job: unknown, imageDir: string, onEvent: (e: HammerEvent) => void = () => {}): Promise<ProvisionServer> {
  const t0 = performance.now();
  const events: HammerEvent[] = [];
  const files = new Map<string, Buffer>();
  const waiters: { pred: (e: HammerEvent) => boolean; resolve: (e: HammerEvent) => void }[] = [];
  let servedBytes = 0;
  const jobText = JSON.stringify(job);
  const server: Server = createServer((req, res) => {
    void (async () => {
      const url = req.url ?? '/';
      try {
        if (req.method === 'GET' && url === '/job.json') {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(jobText);
          return;
        }
        const img = /^\/images\/([A-Za-z0-9._-]+)$/.exec(url);
        if (req.method === 'GET' && img) {
          const p = join(imageDir, basename(img[1]!));
          let size: number;
          try {
            size = statSync(p).size;
          } catch {
            res.writeHead(404).end();
            return;
          }
          res.writeHead(200, { 'content-length': String(size), 'content-type': 'application/octet-stream' });
          const s = createReadStream(p);
          s.on('data', (c) => (servedBytes += (c as Buffer).length));
          s.pipe(res);
          return;
        }
        if (req.method === 'POST' && url === '/events') {
          const e = JSON.parse((await body(req, 1 << 20)).toString()) as Omit<HammerEvent, 'at'>;
          const ev: HammerEvent = { ...e, at: (performance.now() - t0) / 1000 };
          events.push(ev);
          onEvent(ev);
          for (const w of [...waiters]) {
            if (w.pred(ev)) {
              waiters.splice(waiters.indexOf(w), 1);
              w.resolve(ev);
            }
          }
          res.writeHead(204).end();
          return;
        }
        const up = /^\/files\/([a-z.-]+)$/.exec(url);
        if (req.method === 'POST' && up && (UPLOADS as readonly string[]).includes(up[1]!)) {
          files.set(up[1]!, await body(req, 4 << 20));
          res.writeHead(204).end();
          return;
        }
        res.writeHead(404).end();
      } catch {
        res.writeHead(400).end();
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    port,
    events,
    files,
    served: () => servedBytes,
    waitFor(pred, abort) {
      const hit = events.find(pred);
      if (hit) return Promise.resolve(hit);
      return new Promise<HammerEvent>((resolve, reject) => {
        const w = { pred, resolve };
        waiters.push(w);
        abort.then(
          (v) => {
            const i = waiters.indexOf(w);
            if (i >= 0) waiters.splice(i, 1);
            reject(v);
          },
          (e) => reject(e),
        );
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
