// Build an OS folder's Dockerfile. The build context is staged in .state/context/<name>: the
// folder's context/ plus the host-built Go tools it lists (tools/<name>) and the shared in-image
// installer (installer/), so the Dockerfile can COPY all of them.
import { cpSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { PreconditionError } from '../lib/errors.ts';
import { config, ROOT } from '../lib/config.ts';
import { build as dockerBuild, type BuildSpec } from '../lib/docker.ts';
import { read } from '../lib/shell.ts';
import { imageTag, type ImageDef } from '../lib/image-def.ts';

export const INSTALLER_DIR = join(ROOT, 'scripts', 'installer');

export interface BuildMeta {
  /** The commit's date (UTC); the clock only outside a git checkout. */
  date: string;
  commit: string;
  version: string;
}

export async function buildMeta(): Promise<BuildMeta> {
  const git = async (argv: string[]): Promise<string> => read(['git', '-C', ROOT, ...argv], { nothrow: true });
  const commit = (await git(['rev-parse', '--short=12', 'HEAD'])) || 'unknown';
  const dirty = (await git(['status', '--porcelain', '--untracked-files=no'])) !== '';
  const described = (await git(['describe', '--tags', '--always'])) || commit;
  // The commit's date, not the clock (the SOURCE_DATE_EPOCH convention): an unchanged tree then
  // rebuilds to the same image ID, so images built FROM it (nvidia, firewall) keep their cache.
  const epoch = Number(await git(['log', '-1', '--format=%ct']));
  const date = (epoch > 0 ? new Date(epoch * 1000) : new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z');
  return { date, commit: dirty ? `${commit}-dirty` : commit, version: dirty ? `${described}-dirty` : described };
}

/** Pure: every build arg the pipeline passes, image data last so it may not override ours. */
export function buildArgsFor(def: ImageDef, meta: BuildMeta): Record<string, string> {
  return {
    BASE_IMAGE: def.base.image,
    IMAGE_OS: def.os,
    IMAGE_VERSION: def.version,
    ...def.build_args,
    BUILD_DATE: meta.date,
    BUILD_COMMIT: meta.commit,
    BUILD_VERSION: meta.version,
  };
}

/** Names the pipeline itself always passes as build args (the static checks accept them). */
export const PIPELINE_BUILD_ARGS = ['BASE_IMAGE', 'IMAGE_OS', 'IMAGE_VERSION', 'BUILD_DATE', 'BUILD_COMMIT', 'BUILD_VERSION'] as const;

/** Stage the build context; returns its directory. */
export function stageContext(def: ImageDef): string {
  const name = def.variant ? `${def.os}-${def.variant}` : def.os;
  const dir = join(config().stateDir, 'context', name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const src = join(def.dir, 'context');
  if (existsSync(src)) cpSync(src, dir, { recursive: true, verbatimSymlinks: true });
  if (def.go_tools.length > 0) {
    mkdirSync(join(dir, 'tools'), { recursive: true });
    for (const t of def.go_tools) {
      const bin = join(config().binDir, t);
      if (!existsSync(bin)) throw new PreconditionError(`Go tool ${t} (listed in ${def.os}/image.yaml go_tools) is not built`, 'run make setup');
      cpSync(bin, join(dir, 'tools', t));
    }
  }
  if (existsSync(INSTALLER_DIR)) {
    cpSync(INSTALLER_DIR, join(dir, 'installer'), { recursive: true, filter: (src) => !src.includes('__pycache__') });
    // Per-OS installer data comes from image.yaml, not from copies of the installer.
    writeFileSync(join(dir, 'installer', 'os.yaml'), stringify({ os: def.os, version: def.version, machine_type: def.machine_type, ...def.contract }));
  }
  return dir;
}

export function buildSpec(def: ImageDef, context: string, meta: BuildMeta): BuildSpec {
  return {
    tag: imageTag(def),
    dockerfile: join(def.dir, 'Dockerfile'),
    context,
    buildArgs: buildArgsFor(def, meta),
    labels: {
      'org.opencontainers.image.title': `metal-images ${def.os} ${def.version}`,
      'org.opencontainers.image.revision': meta.commit,
      'org.opencontainers.image.version': meta.version,
    },
  };
}

export async function buildImage(def: ImageDef, meta: BuildMeta): Promise<string> {
  const context = stageContext(def);
  const spec = buildSpec(def, context, meta);
  await dockerBuild(spec);
  return spec.tag;
}
