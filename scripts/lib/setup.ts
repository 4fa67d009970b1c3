// make setup: everything the pipeline needs on the host, installed on first use, idempotent, and
// silent when nothing was missing. Debian packages with apt-get, pinned Go tools from
// scripts/tools/go.mod into .state/bin, and a running docker daemon.
import { existsSync, mkdirSync, readFileSync, readlinkSync, rmSync, writeFileSync, renameSync, symlinkSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { PreconditionError } from './errors.ts';
import { run, which } from './shell.ts';
import { config } from './config.ts';
import { info } from './log.ts';
import { APT_TOOLS, APT_FILES, APT_NO_START, GO_TOOLS, goModuleDir, goToolVersion, toolInstalled, type GoTool } from './tools.ts';
import { buildRackHammer } from '../rack/build.ts';
import { buildxPluginPath, ensureDaemon } from './docker.ts';
import { ensureLz4Mt, findLz4Mt } from '../export/lz4-mt.ts';

export interface SetupReport {
  did: string[];
}

async function missingAptPackages(): Promise<string[]> {
  const missing = new Set<string>();
  for (const t of APT_TOOLS) if (!(await toolInstalled(t.bin))) missing.add(t.pkg);
  for (const f of APT_FILES) if (!existsSync(f.path)) missing.add(f.pkg);
  return [...missing].sort();
}

async function installApt(pkgs: string[]): Promise<string> {
  if (process.getuid?.() !== 0) {
    throw new PreconditionError(`missing Debian packages: ${pkgs.join(' ')}`, `sudo apt-get install --no-install-recommends ${pkgs.join(' ')}`);
  }
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  const hint = `check the apt sources, then run: apt-get update && apt-get install ${pkgs.join(' ')}`;
  await run(['apt-get', 'update', '-qq'], { write: true, env, hint });
  // frr and lldpd must not start in the host namespace (lldpd would send LLDP on the host's
  // NICs): without a policy-rc.d that forbids it, one is in place for the install
  const policy = '/usr/sbin/policy-rc.d';
  const guard = pkgs.some((p) => APT_NO_START.includes(p)) && !existsSync(policy);
  if (guard) writeFileSync(policy, '#!/bin/sh\n# metal-images setup: no daemon starts while packages install\nexit 101\n', { mode: 0o755 });
  try {
    await run(['apt-get', 'install', '-y', '-qq', '--no-install-recommends', ...pkgs], { write: true, env, hint });
  } finally {
    if (guard) rmSync(policy, { force: true });
  }
  return `installed Debian packages: ${pkgs.join(' ')}`;
}

/** The stamp records what a binary was built from, so a go.mod bump rebuilds it. */
function stampOf(tool: GoTool): string {
  return `${tool.module}@${goToolVersion(tool)}`;
}

export function goToolPath(name: string): string {
  return join(config().binDir, name);
}

async function buildGoTool(tool: GoTool): Promise<string | null> {
  const bin = goToolPath(tool.name);
  const stampFile = `${bin}.stamp`;
  const stamp = stampOf(tool);
  if (existsSync(bin) && existsSync(stampFile) && readFileSync(stampFile, 'utf8').trim() === stamp) return null;
  if (!(await which('go'))) throw new PreconditionError('the Go toolchain is not installed (needed to build pinned tools)', 'install Go >= 1.26 (see scripts/tools/go.mod) and re-run make setup');
  mkdirSync(config().binDir, { recursive: true });
  const version = goToolVersion(tool);
  const ldflags = ['-s', '-w', tool.ldflags.replaceAll('{version}', version)].filter(Boolean).join(' ');
  const tmp = `${bin}.tmp-${process.pid}`; // two runs building the same tool do not share a file
  const t0 = performance.now();
  await run(['go', 'build', '-trimpath', '-ldflags', ldflags, '-o', tmp, tool.pkg], {
    cwd: goModuleDir(tool),
    env: { CGO_ENABLED: tool.cgo ? '1' : '0', GOFLAGS: '-mod=readonly' },
    write: true,
    hint: `check the Go module proxy is reachable, then: cd ${join('scripts/tools', tool.dir ?? '')} && go build ${tool.pkg}`,
  });
  renameSync(tmp, bin);
  writeFileSync(`${stampFile}.tmp-${process.pid}`, `${stamp}\n`);
  renameSync(`${stampFile}.tmp-${process.pid}`, stampFile);
  return `built ${tool.name} ${version} (${((performance.now() - t0) / 1000).toFixed(0)}s) -> ${bin}`;
}

/**
 * buildx as a docker CLI plugin of the project's DOCKER_CONFIG (.state/docker/cli-plugins), a
 * relative link to .state/bin/docker-buildx. The user's ~/.docker is not touched.
 */
function linkBuildxPlugin(): string | null {
  const link = buildxPluginPath();
  const target = relative(dirname(link), goToolPath('docker-buildx'));
  let current: string | null = null;
  try {
    current = readlinkSync(link);
  } catch {
    // absent (or not a link: replaced below)
  }
  if (current === target) return null;
  mkdirSync(dirname(link), { recursive: true });
  rmSync(link, { force: true });
  symlinkSync(target, link);
  return `linked the buildx plugin: ${link}`;
}

/** lz4 >= 1.10 with threads, the export's compressor (the host's lz4 1.9.4 has none). */
async function buildLz4Threads(): Promise<string | null> {
  if (await findLz4Mt()) return null;
  const t0 = performance.now();
  const mt = await ensureLz4Mt();
  return `built lz4 ${mt.version} (Debian ${mt.debianVersion}, ${((performance.now() - t0) / 1000).toFixed(0)}s) -> ${mt.path}`;
}

/**
 * A pinned Go tool, built now if it is missing or its pin moved (the lazy ones are built this way,
 * on first use). Returns its path. The build's one line is printed unless quiet.
 */
export async function ensureGoTool(name: string, opts: { quiet?: boolean } = {}): Promise<string> {
  const tool = GO_TOOLS.find((t) => t.name === name);
  if (!tool) throw new Error(`no Go tool ${name} in scripts/lib/tools.ts`);
  const bin = goToolPath(name);
  if (!existsSync(bin) || !existsSync(`${bin}.stamp`) || readFileSync(`${bin}.stamp`, 'utf8').trim() !== stampOf(tool)) {
    if (!opts.quiet) info(`setup: building ${name} ${goToolVersion(tool)} (first use; pinned in ${join('scripts/tools', tool.dir ?? '', 'go.mod')})`);
    const did = await buildGoTool(tool);
    if (did && !opts.quiet) info(`setup: ${did}`);
  }
  return bin;
}

export async function ensureSetup(opts: { quiet?: boolean; tools?: readonly string[] } = {}): Promise<SetupReport> {
  const did: string[] = [];
  const say = (s: string | null): void => {
    if (!s) return;
    did.push(s);
    info(`setup: ${s}`);
  };
  const pkgs = await missingAptPackages();
  if (pkgs.length > 0) say(await installApt(pkgs));
  mkdirSync(config().stateDir, { recursive: true });
  say(await ensureDaemon(config().stateDir));
  for (const tool of GO_TOOLS) {
    if (opts.tools ? !opts.tools.includes(tool.name) : tool.lazy) continue;
    say(await buildGoTool(tool));
  }
  if (!opts.tools || opts.tools.includes('docker-buildx')) say(linkBuildxPlugin());
  if (!opts.tools) say(await buildLz4Threads());
  if (!opts.tools) say(await buildRackHammer());
  if (did.length === 0 && !opts.quiet) info('setup: everything is present (Debian packages, Go tools, the buildx plugin, lz4 1.10, docker daemon)');
  return { did };
}
