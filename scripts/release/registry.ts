// The OCI side of `make release`: the docker image each tarball was exported from, pushed to the
// registry REGISTRY names (host[:port]/namespace), under upstream's tags:
//
//   metal-os/stable                 <os>:<version>-stable           (moves with every default-branch build)
//   metal-os/<YYYYMMDD>             <os>:<major.minor>.<YYYYMMDD>   (immutable: the image id's version)
//   metal-os/pull_requests/<slug>   <os>:<version>-<slug>           (upstream: SEMVER_PATCH=-<branch>)
//
// The image pushed is the one the build record says the tarball came from (by docker image id,
// not by a tag that may have moved since). docker logs in with a DOCKER_CONFIG of its own, a
// temporary 0700 directory removed afterwards (and on Ctrl-C; a SIGKILLed run's by the next run),
// so no credential is left in ~/.docker; the password goes to `docker login --password-stdin`,
// never onto a command line or into a message. Before anything is pushed, the registry is asked directly over its HTTP API
// (/v2/) whether it answers and takes the credentials; a release tag that already holds another
// image is refused unless forced. A registry writes a tag only after every blob of it is stored,
// so an interrupted push leaves no tag, only unreferenced blobs; the docker CLI is stopped with
// the run (Ctrl-C, SIGTERM), and the daemon drops the push with it.
import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Env } from '../lib/config.ts';
import { onCleanup } from '../lib/cleanup.ts';
import { MetalError, PreconditionError, UsageError } from '../lib/errors.ts';
import { processAlive, run, stream } from '../lib/shell.ts';
import { majorMinor } from './plan.ts';
import type { PublishTarget } from './prefix.ts';

export interface RegistrySettings {
  /** host[:port] */
  host: string;
  /** Path below the host ('' for none), e.g. metal-stack. */
  namespace: string;
  username: string | undefined;
  password: string | undefined;
  /** http for loopback hosts (what docker allows without TLS), https otherwise. */
  scheme: 'http' | 'https';
}

const HOST = /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:]+\])(?::\d{1,5})?$/;
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

export function isLoopback(host: string): boolean {
  const h = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return h === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(h) || h === '::1';
}

/**
 * Pure: the registry settings, or null when REGISTRY is not set (then release pushes nothing, and
 * says so). A REGISTRY that is not host[:port][/namespace], or one credential without the other,
 * is an error before anything is read or written.
 */
export function registrySettings(env: Env): RegistrySettings | null {
  const given = env.REGISTRY;
  if (!given) {
    if (env.REGISTRY_USERNAME || env.REGISTRY_PASSWORD) throw new UsageError('REGISTRY_USERNAME or REGISTRY_PASSWORD is set, but REGISTRY is not', 'set REGISTRY=host[:port]/namespace in .env (or remove the credentials)');
    return null;
  }
  const bare = given.replace(/^[a-z]+:\/\//, '').replace(/\/+$/, '');
  if (bare !== given.replace(/\/+$/, '')) throw new UsageError(`REGISTRY="${given}" has a scheme; docker names registries without one`, `set REGISTRY=${bare}`);
  const [host, ...path] = bare.split('/');
  if (!host || !HOST.test(host) || !path.every((c) => COMPONENT.test(c))) {
    throw new UsageError(`REGISTRY="${given}" is not host[:port]/namespace (lower case; e.g. ghcr.io/metal-stack or 127.0.0.1:5000/metal)`, 'fix REGISTRY in .env');
  }
  const username = env.REGISTRY_USERNAME;
  const password = env.REGISTRY_PASSWORD;
  if (Boolean(username) !== Boolean(password)) {
    throw new UsageError(`REGISTRY_${username ? 'PASSWORD' : 'USERNAME'} is not set, but REGISTRY_${username ? 'USERNAME' : 'PASSWORD'} is`, `set both REGISTRY_USERNAME and REGISTRY_PASSWORD in .env (or neither, for a registry without auth)`);
  }
  return { host, namespace: path.join('/'), username, password, scheme: isLoopback(host) ? 'http' : 'https' };
}

/** Pure: the repository of an image, e.g. 127.0.0.1:5000/metal/debian. */
export function repositoryOf(s: Pick<RegistrySettings, 'host' | 'namespace'>, storeOs: string): string {
  return [s.host, s.namespace, storeOs].filter(Boolean).join('/');
}

/** Pure: the tags of an image version for a publish target (see the table at the top). */
export function registryTags(target: PublishTarget, version: string): string[] {
  let tag: string;
  if (target.channel === 'stable') tag = `${version}-stable`;
  else if (target.channel === 'release') tag = `${majorMinor(version)}.${target.date}`;
  else {
    const slug = target.prefix.split('/').pop()!;
    if (slug === 'stable') throw new UsageError('a pull request slug "stable" would push over the stable tag', 'rename the branch, or set PUBLISH_PREFIX=metal-os/pull_requests/<slug> in .env');
    tag = `${version}-${slug}`;
  }
  if (!TAG.test(tag)) throw new UsageError(`"${tag}" is not a valid OCI tag`, 'set PUBLISH_PREFIX=metal-os/pull_requests/<shorter slug> in .env');
  return [tag];
}

/** Pure: the manifest digest in `docker push` output ("<tag>: digest: sha256:... size: N"). */
export function pushedDigest(output: string, tag: string): string | null {
  const re = new RegExp(`^${tag.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: digest: (sha256:[0-9a-f]{64}) size: \\d+$`, 'm');
  return re.exec(output)?.[1] ?? null;
}

/** Pure: the challenge of a 401 (WWW-Authenticate), e.g. Bearer realm="...",service="...". */
export function parseChallenge(header: string | null): { scheme: string; params: Record<string, string> } | null {
  if (!header) return null;
  const m = /^(\w+)\s*(.*)$/.exec(header.trim());
  if (!m) return null;
  const params: Record<string, string> = {};
  for (const p of m[2]!.matchAll(/(\w+)="([^"]*)"/g)) params[p[1]!.toLowerCase()] = p[2]!;
  return { scheme: m[1]!.toLowerCase(), params };
}

const MANIFEST_TYPES = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.index.v1+json',
].join(', ');

export interface RemoteTag {
  /** The manifest digest (Docker-Content-Digest). */
  digest: string;
  /** The image config's digest: the docker image id of what was pushed. */
  config: string | null;
}

/** The registry's HTTP API, just what release needs: is it there, do the credentials work, what does a tag hold. */
export class RegistryClient {
  private readonly base: string;
  private readonly tokens = new Map<string, string>();
  constructor(readonly s: RegistrySettings, private readonly timeoutMs = 15_000) {
    this.base = `${s.scheme}://${s.host}`;
  }

  private basic(): string | undefined {
    return this.s.username ? `Basic ${Buffer.from(`${this.s.username}:${this.s.password}`).toString('base64')}` : undefined;
  }

  private async fetch(path: string, init: { method?: string; headers?: Record<string, string> } = {}, auth?: string): Promise<Response> {
    try {
      return await fetch(`${this.base}${path}`, { method: init.method ?? 'GET', headers: { ...init.headers, ...(auth ? { Authorization: auth } : {}) }, signal: AbortSignal.timeout(this.timeoutMs), redirect: 'follow' });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (e as Error).message;
      throw new PreconditionError(`registry ${this.s.host} is unreachable (${why})`, `start it, or correct REGISTRY in .env (${this.base}/v2/ must answer)`);
    }
  }

  /** A request with the registry's auth: none, basic, or a bearer token fetched with the credentials. */
  private async request(path: string, scope: string, init: { method?: string; headers?: Record<string, string> } = {}): Promise<Response> {
    const cached = this.tokens.get(scope);
    let r = await this.fetch(path, init, cached);
    if (r.status !== 401) return r;
    const ch = parseChallenge(r.headers.get('www-authenticate'));
    if (ch?.scheme === 'basic') {
      if (!this.s.username) throw this.needsCredentials();
      r = await this.fetch(path, init, this.basic());
      if (r.status === 401) throw this.refused();
      this.tokens.set(scope, this.basic()!);
      return r;
    }
    if (ch?.scheme === 'bearer' && ch.params.realm) {
      const u = new URL(ch.params.realm);
      if (ch.params.service) u.searchParams.set('service', ch.params.service);
      if (scope) u.searchParams.set('scope', scope);
      let t: Response;
      try {
        t = await fetch(u, { headers: this.basic() ? { Authorization: this.basic()! } : {}, signal: AbortSignal.timeout(this.timeoutMs) });
      } catch (e) {
        throw new PreconditionError(`registry ${this.s.host}'s token service ${u.host} is unreachable (${(e as Error).message})`, 'check the network to it, or REGISTRY in .env');
      }
      if (t.status === 401 || t.status === 403) throw this.refused();
      const body = (await t.json().catch(() => ({}))) as { token?: string; access_token?: string };
      const token = body.token ?? body.access_token;
      if (!token) throw new MetalError('tool', `registry ${this.s.host}'s token service answered ${t.status} without a token`, 'check REGISTRY and the credentials in .env');
      this.tokens.set(scope, `Bearer ${token}`);
      r = await this.fetch(path, init, `Bearer ${token}`);
      if (r.status === 401) throw this.refused();
      return r;
    }
    throw this.refused();
  }

  private refused(): PreconditionError {
    return this.s.username
      ? new PreconditionError(`registry ${this.s.host} refused the credentials of REGISTRY_USERNAME=${this.s.username}`, 'set REGISTRY_USERNAME and REGISTRY_PASSWORD in .env to an account that may push there')
      : this.needsCredentials();
  }

  private needsCredentials(): PreconditionError {
    return new PreconditionError(`registry ${this.s.host} asks for credentials, and REGISTRY_USERNAME is not set`, 'set REGISTRY_USERNAME and REGISTRY_PASSWORD in .env');
  }

  /** The registry answers and takes the credentials (for pushing to `repository`). */
  async check(repository: string): Promise<void> {
    const r = await this.request('/v2/', '');
    if (r.status === 401 || r.status === 403) throw this.refused();
    if (!r.ok) throw new MetalError('tool', `registry ${this.s.host} answered ${r.status} on /v2/`, 'check REGISTRY in .env: it must name an OCI registry (docker distribution API)');
    await r.body?.cancel();
    // a token service may grant the login but not the push: ask for that scope now
    const name = repository.slice(this.s.host.length + 1);
    const h = await this.request(`/v2/${name}/tags/list`, `repository:${name}:pull,push`);
    if (h.status === 401 || h.status === 403) throw this.refused();
    await h.body?.cancel();
  }

  /** What `repository:tag` holds, or null when there is no such tag. */
  async tag(repository: string, tag: string): Promise<RemoteTag | null> {
    const name = repository.slice(this.s.host.length + 1);
    const r = await this.request(`/v2/${name}/manifests/${tag}`, `repository:${name}:pull,push`, { headers: { Accept: MANIFEST_TYPES } });
    if (r.status === 404) {
      await r.body?.cancel();
      return null;
    }
    if (!r.ok) throw new MetalError('tool', `registry ${this.s.host} answered ${r.status} for ${repository}:${tag}`, 're-run make release');
    const digest = r.headers.get('docker-content-digest') ?? '';
    const body = (await r.json().catch(() => ({}))) as { config?: { digest?: string } };
    return { digest, config: body.config?.digest ?? null };
  }
}

/** Remove the docker logins (credentials included) that SIGKILLed runs left: the pid in the name is dead. */
export function sweepDockerLogins(): string[] {
  const removed: string[] = [];
  for (const n of readdirSync(tmpdir())) {
    const m = /^metal-images-docker-(\d+)-/.exec(n);
    if (m && !processAlive(Number(m[1]))) {
      rmSync(join(tmpdir(), n), { recursive: true, force: true });
      removed.push(n);
    }
  }
  return removed;
}

/**
 * A docker CLI configuration of its own for one release run: logged in to the registry (when it
 * has credentials), removed afterwards and on interruption.
 */
export class DockerLogin {
  private constructor(readonly dir: string, private readonly drop: () => Promise<void>) {}

  static async open(s: RegistrySettings): Promise<DockerLogin> {
    sweepDockerLogins();
    const dir = mkdtempSync(join(tmpdir(), `metal-images-docker-${process.pid}-`));
    chmodSync(dir, 0o700);
    const drop = onCleanup(`remove the docker login ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
    const login = new DockerLogin(dir, drop);
    if (s.username) {
      const r = await run(['docker', '--config', dir, 'login', s.host, '--username', s.username, '--password-stdin'], { input: s.password, nothrow: true });
      if (r.code !== 0) {
        await login.close();
        const why = (r.stderr || r.stdout).trim().split('\n').pop() ?? '';
        if (/unauthorized|denied|401|incorrect username or password/i.test(why)) throw new PreconditionError(`registry ${s.host} refused the credentials of REGISTRY_USERNAME=${s.username} (docker login)`, 'set REGISTRY_USERNAME and REGISTRY_PASSWORD in .env to an account that may push there');
        throw new PreconditionError(`docker login ${s.host} failed: ${why}`, 'check REGISTRY in .env and that the docker daemon reaches it');
      }
    }
    return login;
  }

  /**
   * Push the local image `imageId` as `ref`, returning the digest docker reports. The local tag is
   * removed afterwards (the image stays), so the shared daemon keeps no registry names of ours.
   */
  async push(imageId: string, ref: string, tag: string, onLine?: (line: string) => void): Promise<string> {
    await run(['docker', 'tag', imageId, ref]);
    try {
      const p = stream(['docker', '--config', this.dir, 'push', ref], { hint: `re-run make release (the registry keeps no tag of an interrupted push)` });
      const stop = onCleanup(`stop docker push ${ref}`, () => p.kill());
      let out = '';
      p.stdout.on('data', (d: Buffer) => {
        const s = d.toString();
        out += s;
        if (onLine) for (const l of s.split('\n')) if (l.trim()) onLine(l.trim());
      });
      try {
        await p.done;
      } finally {
        p.kill();
        await stop();
      }
      const digest = pushedDigest(out, tag);
      if (!digest) throw new MetalError('tool', `docker push ${ref} printed no digest`, 're-run make release');
      return digest;
    } finally {
      // untag only: were ours the image's last name, docker rmi would delete the image itself
      const tags = await run(['docker', 'image', 'inspect', '--format', '{{len .RepoTags}}', imageId], { nothrow: true });
      if (Number(tags.stdout.trim()) > 1) await run(['docker', 'rmi', '--no-prune', ref], { nothrow: true });
    }
  }

  async close(): Promise<void> {
    await this.drop();
  }
}
