// Thin wrappers around the docker CLI. Builds go through BuildKit with the Dockerfile frontend:
// `docker buildx build`, the buildx CLI plugin built by `make setup` from the Go module proxy
// (Debian's docker.io ships none) and linked into the project's own DOCKER_CONFIG, with buildx's
// `docker` driver: the daemon's embedded BuildKit (dockerd 20.10: BuildKit 0.8, whose built-in
// Dockerfile frontend has RUN --mount), so the image lands in the daemon's image store, where the
// export reads it. Host networking is the only network the build machines have.
import { existsSync, readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { config } from './config.ts';
import { PreconditionError } from './errors.ts';
import { processAlive, run, read, stream, spawnDetached, which, type Streaming } from './shell.ts';
import { provablyAbandoned, self, type Owner } from './ownership.ts';

/**
 * Labels on every container this project creates: who created it (scripts/lib/ownership.ts). A
 * sweep removes only containers that are provably its own and whose creator is dead.
 */
export const OWNER_LABELS = {
  pid: 'io.metal-images.owner-pid',
  host: 'io.metal-images.owner-host',
  pidns: 'io.metal-images.owner-pidns',
  checkout: 'io.metal-images.owner-checkout',
} as const;
export const OWNER_LABEL = OWNER_LABELS.pid;

/**
 * The docker CLI config dir of the project's builds (.state/docker): cli-plugins/docker-buildx and
 * buildx's builder list (buildx/). Only `docker buildx` commands use it; pulls, pushes and every
 * other docker command keep the user's own config and its registry credentials.
 */
export function dockerConfigDir(): string {
  return join(config().stateDir, 'docker');
}

/** Where `make setup` links the buildx binary as a docker CLI plugin. */
export function buildxPluginPath(): string {
  return join(dockerConfigDir(), 'cli-plugins', 'docker-buildx');
}

const BUILDX_FIX = 'run `make setup` (builds buildx from scripts/tools/buildx/go.mod and links it into .state/docker/cli-plugins)';

let daemonHost: Promise<string | null> | undefined;
/**
 * The daemon the user's docker CLI talks to: DOCKER_HOST, else the endpoint of the current docker
 * context in the user's own config (the project's DOCKER_CONFIG has no contexts, so without this a
 * build could go to another daemon than the export's `docker` commands).
 */
async function userDockerHost(): Promise<string | null> {
  if (process.env.DOCKER_HOST) return process.env.DOCKER_HOST;
  daemonHost ??= run(['docker', 'context', 'inspect', '--format', '{{.Endpoints.docker.Host}}'], { nothrow: true, timeoutMs: 10_000 })
    .then((r) => (r.code === 0 && r.stdout.trim() ? r.stdout.trim() : null));
  return daemonHost;
}

/**
 * The environment of every `docker buildx` command: the project's DOCKER_CONFIG (the plugin), the
 * user's daemon, no hints, no default attestations (the docker driver without the containerd image
 * store cannot keep them, and the image is exported as a tar, not pushed).
 */
export async function buildEnv(): Promise<Record<string, string>> {
  const host = await userDockerHost();
  return {
    DOCKER_CONFIG: dockerConfigDir(),
    DOCKER_CLI_HINTS: 'false',
    BUILDX_NO_DEFAULT_ATTESTATIONS: '1',
    ...(host ? { DOCKER_HOST: host } : {}),
  };
}

/** The builder of `make <os>`: BUILDX_BUILDER (a builder made with `docker buildx create`), else buildx's default (the docker driver). */
export function builderName(): string | undefined {
  return config().env.BUILDX_BUILDER;
}

export interface BuilderInfo {
  name: string;
  driver: string;
  /** BuildKit's version as the builder reports it (dockerd 20.10: v0.8+unknown). */
  buildkit: string;
  buildx: string;
}

/** Pure: the builder from `docker buildx inspect` output; null when it names no driver or no BuildKit. */
export function parseBuilderInspect(text: string): Omit<BuilderInfo, 'buildx'> | null {
  const field = (k: string): string | undefined => new RegExp(`^${k}:[ \\t]*(\\S.*?)\\s*$`, 'm').exec(text)?.[1];
  const name = field('Name');
  const driver = field('Driver');
  const buildkit = field('BuildKit version') ?? field('BuildKit');
  if (!name || !driver || !buildkit) return null;
  return { name, driver, buildkit };
}

let builderInfo: Promise<BuilderInfo> | undefined;
/**
 * The buildx plugin is there and the builder answers with BuildKit; else a one-line cause and the
 * command that fixes it. Cached for the process.
 */
export async function requireBuildKit(): Promise<BuilderInfo> {
  builderInfo ??= (async () => {
    if (!existsSync(buildxPluginPath())) throw new PreconditionError(`the buildx plugin is missing (${buildxPluginPath()})`, BUILDX_FIX);
    const env = await buildEnv();
    const v = await run(['docker', 'buildx', 'version'], { nothrow: true, env, timeoutMs: 20_000 });
    if (v.code !== 0) throw new PreconditionError(`the buildx plugin does not run: ${lastLine(v.stderr || v.stdout)}`, BUILDX_FIX);
    const name = builderName();
    const r = await run(['docker', 'buildx', 'inspect', '--bootstrap', ...(name ? [name] : [])], { nothrow: true, env, timeoutMs: 60_000 });
    const info = r.code === 0 ? parseBuilderInspect(r.stdout) : null;
    if (!info) {
      const cause = r.code === 0 ? 'it reports no BuildKit version' : lastLine(r.stderr || r.stdout);
      const fix = name
        ? `check the builder: DOCKER_CONFIG=${dockerConfigDir()} docker buildx inspect ${name} (or unset BUILDX_BUILDER to build on the local daemon)`
        : 'use a docker daemon with BuildKit (dockerd >= 18.09; `make setup` starts Debian\'s dockerd 20.10)';
      throw new PreconditionError(`no BuildKit builder${name ? ` "${name}"` : ''} answers: ${cause}`, fix);
    }
    return { ...info, buildx: v.stdout.trim().split(/\s+/)[1] ?? v.stdout.trim() };
  })();
  builderInfo.catch(() => { builderInfo = undefined; });
  return builderInfo;
}

function lastLine(s: string): string {
  return s.trim().split('\n').pop() ?? '';
}

const DAEMON_HINT = 'run `make setup` (it starts Debian\'s dockerd) or start dockerd yourself';

/** Server version if the daemon answers within a few seconds, else null. */
export async function daemonVersion(): Promise<string | null> {
  if (!(await which('docker'))) return null;
  const r = await run(['docker', 'version', '--format', '{{.Server.Version}}'], { nothrow: true, timeoutMs: 10_000 });
  return r.code === 0 ? r.stdout.trim() : null;
}

export async function requireDaemon(): Promise<void> {
  if (!(await which('docker'))) throw new PreconditionError('the docker CLI is not installed', 'run `make setup` (installs docker.io)');
  if (!(await daemonVersion())) throw new PreconditionError('docker daemon not reachable', DAEMON_HINT);
}

/**
 * Start Debian's dockerd when no daemon answers. Pid and log live in the project's state dir.
 * Returns a sentence of what was done, or null if a daemon was already running.
 */
export async function ensureDaemon(stateDir: string): Promise<string | null> {
  if (await daemonVersion()) return null;
  // A daemon named by DOCKER_HOST is the user's: starting Debian's dockerd on the default socket
  // would not make that one answer.
  const host = process.env.DOCKER_HOST;
  if (host && host !== 'unix:///var/run/docker.sock' && host !== 'unix:///run/docker.sock') {
    throw new PreconditionError(`docker daemon at DOCKER_HOST=${host} not reachable`, 'start that daemon, or unset DOCKER_HOST and run `make setup` (it starts Debian\'s dockerd)');
  }
  const dockerd = await which('dockerd');
  if (!dockerd) throw new PreconditionError('docker daemon not reachable and dockerd is not installed', 'run `make setup` as root (installs docker.io)');
  if (process.getuid?.() !== 0) throw new PreconditionError('docker daemon not reachable, and starting dockerd needs root', 'run `sudo make setup` or start dockerd yourself');
  mkdirSync(stateDir, { recursive: true });
  const pidFile = join(stateDir, 'dockerd.pid');
  const log = join(stateDir, 'dockerd.log');
  if (existsSync(pidFile)) {
    // A stale pid file from a dockerd that died would make the new one refuse to start.
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    if (!(pid > 0 && processAlive(pid))) await run(['rm', '-f', pidFile]);
  }
  // Builds and test containers use host networking only, so no bridge and no iptables rules.
  await spawnDetached([dockerd, '--bridge=none', '--iptables=false', '--ip6tables=false', '--pidfile', pidFile], log);
  for (let i = 0; i < 60; i++) {
    await new Promise((r) => setTimeout(r, 500));
    const v = await daemonVersion();
    if (v) return `started dockerd ${v} (log: ${log}, pid file: ${pidFile})`;
  }
  const tail = existsSync(log) ? readFileSync(log, 'utf8').trimEnd().split('\n').slice(-5).join('\n') : '';
  throw new PreconditionError(`dockerd did not answer within 30s; last log lines:\n${tail}`, `read ${log}`);
}

export async function imageExists(ref: string): Promise<boolean> {
  const r = await run(['docker', 'image', 'inspect', '--format', '{{.Id}}', ref], { nothrow: true });
  return r.code === 0;
}

export async function imageLabels(ref: string): Promise<Record<string, string>> {
  const out = await read(['docker', 'image', 'inspect', '--format', '{{json .Config.Labels}}', ref]);
  return (JSON.parse(out) as Record<string, string> | null) ?? {};
}

/** Docker's id of an image (sha256:...). Not the metal-api image id (see scripts/release/plan.ts). */
export async function dockerImageId(ref: string): Promise<string> {
  return read(['docker', 'image', 'inspect', '--format', '{{.Id}}', ref]);
}

/** Try to pull; returns the error text on failure (no registry here, so failures are normal). */
export async function tryPull(ref: string): Promise<string | null> {
  const r = await run(['docker', 'pull', '--quiet', ref], { nothrow: true, timeoutMs: 120_000 });
  return r.code === 0 ? null : (r.stderr || r.stdout).trim().split('\n').pop() ?? 'pull failed';
}

export interface BuildSpec {
  tag: string;
  dockerfile: string;
  context: string;
  buildArgs: Record<string, string>;
  labels: Record<string, string>;
  /** Build only up to this stage of a multi-stage Dockerfile. */
  target?: string;
}

/**
 * Pure: the build command. --load puts the image into the local daemon's store, where the export
 * reads it (the docker driver's default; needed with any other driver, e.g. a remote builder).
 * --progress plain: the step log (CACHED, DONE <s>) in the build output.
 */
export function buildArgv(spec: BuildSpec, builder?: string): string[] {
  const argv = ['docker', 'buildx', 'build', ...(builder ? ['--builder', builder] : []), '--progress', 'plain', '--load', '--network', 'host', '--file', spec.dockerfile, '--tag', spec.tag];
  for (const [k, v] of Object.entries(spec.buildArgs)) argv.push('--build-arg', `${k}=${v}`);
  for (const [k, v] of Object.entries(spec.labels)) argv.push('--label', `${k}=${v}`);
  if (spec.target) argv.push('--target', spec.target);
  argv.push(spec.context);
  return argv;
}

export async function build(spec: BuildSpec): Promise<void> {
  await requireBuildKit();
  await run(buildArgv(spec, builderName()), { inherit: true, write: true, env: await buildEnv(), hint: `fix ${spec.dockerfile} (the build output above names the failing step)` });
}

/** Pure: the --label arguments naming the owner. */
export function ownerLabelArgs(o: Owner): string[] {
  return [
    '--label', `${OWNER_LABELS.pid}=${o.pid}`,
    '--label', `${OWNER_LABELS.host}=${o.host}`,
    '--label', `${OWNER_LABELS.pidns}=${o.pidns}`,
    '--label', `${OWNER_LABELS.checkout}=${o.checkout}`,
  ];
}

/** docker create; returns the container id. The caller owns removal (see onCleanup). */
export async function createContainer(ref: string): Promise<string> {
  // The labels let anyone find what a given run created (and prove it removed it).
  return read(['docker', 'create', '--network', 'host', ...ownerLabelArgs(self()), ref, '/bin/true']);
}

export async function containerExists(id: string): Promise<boolean> {
  return (await run(['docker', 'container', 'inspect', '--format', '{{.Id}}', id], { nothrow: true })).code === 0;
}

/** The `docker ps --format` that orphanContainers reads: id, then the owner labels, tab-separated. */
export const OWNER_PS_FORMAT = ['{{.ID}}', ...Object.values(OWNER_LABELS).map((l) => `{{.Label "${l}"}}`)].join('\t');

/**
 * Pure: from `docker ps -a --format OWNER_PS_FORMAT` lines, the containers that are provably this
 * checkout's and whose creator is dead. A container of another checkout, another host or another
 * PID namespace (whose pid this process cannot judge) is never among them.
 */
export function orphanContainers(psOutput: string, me: Owner, alive: (pid: number) => boolean): string[] {
  return psOutput
    .split('\n')
    .map((l) => l.split('\t'))
    .filter(([id, pid, host, pidns, checkout]) => id?.trim() && provablyAbandoned({ pid: Number(pid), host, pidns, checkout }, me, alive))
    .map(([id]) => id!.trim());
}

/** Remove containers this checkout created in a run that was killed (SIGKILL skips the cleanup). */
export async function removeOrphanContainers(): Promise<void> {
  const out = await read(['docker', 'ps', '--all', '--filter', `label=${OWNER_LABEL}`, '--format', OWNER_PS_FORMAT]);
  for (const id of orphanContainers(out, self(), processAlive)) await removeContainer(id);
}

export async function removeContainer(id: string): Promise<void> {
  await run(['docker', 'rm', '--force', '--volumes', id], { nothrow: true });
}

export function exportContainer(id: string): Streaming {
  return stream(['docker', 'export', id], { hint: 'check `docker ps -a` and the daemon log' });
}

/** Run a command in a throw-away container of `ref` and return stdout. */
export async function runInImage(ref: string, argv: readonly string[]): Promise<string> {
  return (await run(['docker', 'run', '--rm', '--network', 'host', '--entrypoint', argv[0]!, ref, ...argv.slice(1)])).stdout;
}

export function importArgv(ref: string, changes: string[]): string[] {
  return ['docker', 'import', ...changes.flatMap((c) => ['--change', c]), '-', ref];
}
