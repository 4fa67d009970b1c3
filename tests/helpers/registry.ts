// A real OCI registry for the release tests: distribution's `registry serve` (pinned in
// scripts/tools/registry/go.mod, built on first use into .state/bin), on 127.0.0.1 at a free port,
// filesystem storage in a temp dir, htpasswd (bcrypt) auth with a throwaway account. docker talks
// to it over plain http: the daemon allows that for 127.0.0.0/8 without configuration.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureGoTool } from '../../scripts/lib/setup.ts';
import { run, stream } from '../../scripts/lib/shell.ts';
import { freePort } from './s3server.ts';

export interface TestRegistry {
  host: string;
  username: string;
  password: string;
  dir: string;
  /** Basic auth header for assertions over the HTTP API. */
  auth: string;
  /** The manifest digest and config digest a tag holds, or null (HTTP API, as a consumer sees it). */
  tag(name: string, tag: string): Promise<{ digest: string; config: string } | null>;
  stop(): Promise<void>;
}

/** bcrypt for htpasswd (distribution accepts no other hash): Python's crypt over libcrypt. */
async function bcrypt(password: string): Promise<string> {
  const py = 'import crypt,sys; print(crypt.crypt(sys.stdin.read(), crypt.mksalt(crypt.METHOD_BLOWFISH)))';
  const h = (await run(['python3', '-W', 'ignore', '-c', py], { input: password })).stdout.trim();
  if (!h.startsWith('$2')) throw new Error(`python3's crypt made no bcrypt hash (${h.slice(0, 4)}): the test registry needs one`);
  return h;
}

export async function startRegistry(): Promise<TestRegistry> {
  const bin = await ensureGoTool('registry', { quiet: true });
  const dir = mkdtempSync(join(tmpdir(), 'metal-registry-'));
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const username = `ci${randomBytes(3).toString('hex')}`;
  const password = randomBytes(12).toString('base64url');
  writeFileSync(join(dir, 'htpasswd'), `${username}:${await bcrypt(password)}\n`, { mode: 0o600 });
  writeFileSync(
    join(dir, 'config.yml'),
    [
      'version: 0.1',
      'log:',
      '  level: error',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(dir, 'data')}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: ${host}`,
      `  secret: ${randomBytes(16).toString('hex')}`,
      'auth:',
      '  htpasswd:',
      '    realm: metal-images-test',
      `    path: ${join(dir, 'htpasswd')}`,
      '',
    ].join('\n'),
  );
  const proc = stream([bin, 'serve', join(dir, 'config.yml')], { env: { OTEL_TRACES_EXPORTER: 'none', OTEL_SDK_DISABLED: 'true' }, stdout: 'ignore' });
  let exited: unknown = null;
  proc.done.then(() => (exited = new Error('registry exited')), (e: unknown) => (exited = e));
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (exited) throw exited;
    try {
      const r = await fetch(`http://${host}/v2/`, { signal: AbortSignal.timeout(500) });
      if (r.status === 401) break;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`the test registry did not answer on ${host}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const auth = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
  return {
    host,
    username,
    password,
    dir,
    auth,
    async tag(name, tag) {
      const r = await fetch(`http://${host}/v2/${name}/manifests/${tag}`, {
        headers: { Authorization: auth, Accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json' },
      });
      if (r.status === 404) return null;
      if (!r.ok) throw new Error(`registry answered ${r.status} for ${name}:${tag}`);
      const body = (await r.json()) as { config: { digest: string } };
      return { digest: r.headers.get('docker-content-digest')!, config: body.config.digest };
    },
    async stop() {
      proc.kill();
      await proc.done.catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
