// Thin wrappers around the docker CLI. Builds use the classic builder with host networking: Debian's
// docker.io ships no buildx, and host networking is the only network the build machines have.
import { existsSync, readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
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

export const DOCKER_ENV = { DOCKER_BUILDKIT: '0', DOCKER_CLI_HINTS: 'false' };

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

export function buildArgv(spec: BuildSpec): string[] {
  const argv = ['docker', 'build', '--network', 'host', '--file', spec.dockerfile, '--tag', spec.tag];
  for (const [k, v] of Object.entries(spec.buildArgs)) argv.push('--build-arg', `${k}=${v}`);
  for (const [k, v] of Object.entries(spec.labels)) argv.push('--label', `${k}=${v}`);
  if (spec.target) argv.push('--target', spec.target);
  argv.push(spec.context);
  return argv;
}

export async function build(spec: BuildSpec): Promise<void> {
  await run(buildArgv(spec), { inherit: true, write: true, env: DOCKER_ENV, hint: `fix ${spec.dockerfile} (the build output above names the failing step)` });
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
