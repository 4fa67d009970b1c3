// Step "build": the image's body, then the finalize stage every image passes through.
//
//   body      <dockerfile> (the OS folder's own, or its last layer's) over the staged context:
//             the layers' context/ dirs, then the OS folder's context/ (later wins), then a
//             variant's, plus tools/<go tool> and lib/ (scripts/image-lib). No commit goes in, so
//             images built on this body keep their docker cache across commits. A body whose
//             Dockerfile has a stage "kernel" gets that stage tagged too (<tag>-kernel).
//   finalize  layers/finalize/Dockerfile FROM the body: image.yaml's units as a preset, the
//             installer's contract checks, the clean-up, the installer with its permission
//             record, and build.yaml, whose commit values are the last layer.
import { copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { PreconditionError } from '../lib/errors.ts';
import { config, ROOT } from '../lib/config.ts';
import { build as dockerBuild, dockerImageId, requireBuildKit, type BuildSpec } from '../lib/docker.ts';
import { isDryRun, read } from '../lib/shell.ts';
import { record, type BuildContext, type BuildMeta } from '../lib/build-context.ts';
import { bodyTag, imageTag, kernelTag, FINALIZE_DIR, loadImageDef, type ImageDef } from '../lib/image-def.ts';

export const INSTALLER_DIR = join(ROOT, 'scripts', 'installer');
export const IMAGE_LIB_DIR = join(ROOT, 'scripts', 'image-lib');
/** Dirs every body context has, even when no layer or folder fills them (the Dockerfiles COPY them). */
export const ALWAYS_STAGED_DIRS = ['tools', 'configure.d'];

export async function buildMeta(): Promise<BuildMeta> {
  const git = async (argv: string[]): Promise<string> => read(['git', '-C', ROOT, ...argv], { nothrow: true });
  const commit = (await git(['rev-parse', '--short=12', 'HEAD'])) || 'unknown';
  const dirty = (await git(['status', '--porcelain', '--untracked-files=no'])) !== '';
  const described = (await git(['describe', '--tags', '--always'])) || commit;
  // The commit's date, not the clock (the SOURCE_DATE_EPOCH convention): an unchanged tree then
  // rebuilds to the same image ID.
  const epoch = Number(await git(['log', '-1', '--format=%ct']));
  const date = (epoch > 0 ? new Date(epoch * 1000) : new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z');
  return { date, commit: dirty ? `${commit}-dirty` : commit, version: dirty ? `${described}-dirty` : described };
}

// ---- the body -----------------------------------------------------------------------------------

/** Does a Dockerfile text have a stage named `kernel`? */
export function hasKernelStage(dockerfileText: string): boolean {
  return /^\s*FROM\s+\S+\s+AS\s+kernel\s*$/im.test(dockerfileText);
}

/** Pure: the body's build args. image data first, the pipeline's own last so they cannot be overridden. */
export function bodyBuildArgs(def: ImageDef, baseKernelImage: string | null): Record<string, string> {
  return {
    ...def.build_args,
    BASE_IMAGE: def.base.image,
    ...(baseKernelImage ? { BASE_KERNEL_IMAGE: baseKernelImage } : {}),
    SUDO_GROUP: def.contract.sudo_group,
  };
}

/** Build args the pipeline itself passes to bodies and to the finalize stage (the static checks accept them). */
export const PIPELINE_BUILD_ARGS = ['BASE_IMAGE', 'BASE_KERNEL_IMAGE', 'SUDO_GROUP', 'BODY_IMAGE', 'BUILD_DATE', 'BUILD_COMMIT', 'BUILD_VERSION'] as const;

/**
 * The staged body context as a map from context-relative path to the file it is copied from, in
 * staging order (a later dir replaces an earlier one's file of the same path). Also lists which
 * layer or folder each file came from, for the duplicate check.
 */
export function stagedFiles(def: ImageDef): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string, base: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const abs = join(dir, name);
      const rel = base ? `${base}/${name}` : name;
      if (lstatSync(abs).isDirectory()) walk(abs, rel);
      else out.set(rel, abs);
    }
  };
  for (const d of def.contextDirs) if (existsSync(d)) walk(d, '');
  walk(IMAGE_LIB_DIR, 'lib');
  for (const t of def.go_tools) out.set(`tools/${t}`, join(config().binDir, t));
  return out;
}

function contextName(def: ImageDef): string {
  return def.variant ? `${def.os}-${def.variant}` : def.os;
}

/** Stage the body's build context; returns its directory. */
export function stageBodyContext(def: ImageDef): string {
  const dir = join(config().stateDir, 'context', contextName(def));
  rmSync(dir, { recursive: true, force: true });
  for (const d of ALWAYS_STAGED_DIRS) mkdirSync(join(dir, d), { recursive: true });
  for (const [rel, src] of stagedFiles(def)) {
    if (rel.startsWith('tools/') && !existsSync(src)) {
      throw new PreconditionError(`Go tool ${rel.slice(6)} (listed in ${def.os}/image.yaml go_tools) is not built`, 'run make setup');
    }
    mkdirSync(join(dir, rel, '..'), { recursive: true });
    copyFileSync(src, join(dir, rel));
  }
  return dir;
}

export interface BuiltImage {
  /** The finished image, e.g. metal-images/debian:12. */
  tag: string;
  body: string;
  /** Docker's image id (sha256:...) of the finished image. */
  dockerImageId: string;
  bodyImageId: string;
}

/** Build the body (and its kernel stage, if it has one); returns the body's tag. */
export async function buildBody(def: ImageDef): Promise<string> {
  const context = stageBodyContext(def);
  const text = readFileSync(def.dockerfile, 'utf8');
  const dep = def.base.from ? loadImageDef(def.base.from) : null;
  const baseKernel = dep && hasKernelStage(readFileSync(dep.dockerfile, 'utf8')) ? kernelTag(dep) : null;
  const args = bodyBuildArgs(def, baseKernel);
  const title = { 'org.opencontainers.image.title': `metal-images ${def.os} ${def.version} (body)` };
  if (hasKernelStage(text)) {
    await dockerBuild({ tag: kernelTag(def), dockerfile: def.dockerfile, context, buildArgs: args, labels: title, target: 'kernel' });
  }
  await dockerBuild({ tag: bodyTag(def), dockerfile: def.dockerfile, context, buildArgs: args, labels: title });
  return bodyTag(def);
}

// ---- the finalize stage -------------------------------------------------------------------------

/** Pure: a unit as a systemd preset line; instances of templates as "<template> <instance>". */
export function presetLine(state: 'enable' | 'disable', unit: string): string {
  const m = /^([^@]+)@([^.]+)\.([a-z]+)$/.exec(unit);
  return m ? `${state} ${m[1]}@.${m[3]} ${m[2]}` : `${state} ${unit}`;
}

/** Pure: the preset file the finalize stage installs as /etc/systemd/system-preset/10-metal.preset. */
export function renderPreset(def: Pick<ImageDef, 'os' | 'version' | 'units'>): string {
  const lines = [
    `# metal-stack ${def.os} ${def.version}: unit enablement, generated from image.yaml "units" (and its`,
    '# layers\' and base image\'s) by the build. The image is built in this state, and the installer\'s',
    '# "systemctl preset-all" keeps it. Units not listed fall back to the distribution\'s presets.',
  ];
  for (const u of def.units.order) lines.push(presetLine(def.units.state[u] === 'enable' ? 'enable' : 'disable', u));
  return `${lines.join('\n')}\n`;
}

/** Pure: the files of the finalize context's meta/ dir. */
export function finalizeMeta(def: ImageDef): Record<string, string> {
  const by = (s: string): string => def.units.order.filter((u) => def.units.state[u] === s).map((u) => `${u}\n`).join('');
  const q = (v: string): string => JSON.stringify(v);
  const buildYaml = [
    '# metal-stack image build metadata',
    `os: ${q(def.os)}`,
    `version: ${q(def.version)}`,
    'build_date: "@BUILD_DATE@"',
    'build_commit: "@BUILD_COMMIT@"',
    'build_version: "@BUILD_VERSION@"',
    `base_image: ${q(def.base.image)}`,
    'kernel_version: "@KERNEL_VERSION@"',
    '',
  ].join('\n');
  if (!def.units.default_target) throw new PreconditionError(`${def.os}: no units.default_target in image.yaml or its layers`, `set units.default_target (e.g. multi-user.target) in ${def.os}/image.yaml`);
  return {
    '10-metal.preset': renderPreset(def),
    'units-enabled': by('enable'),
    'units-disabled': by('disable'),
    'units-masked': by('mask'),
    'default-target': `${def.units.default_target}\n`,
    'build.yaml.in': buildYaml,
    'build-meta.tsv': Object.entries(def.build_meta).map(([k, cmd]) => `${k}\t${cmd.replaceAll('{k}', '@KERNEL_VERSION@')}\n`).join(''),
  };
}

/** Pure: installer/os.yaml, the OS's data for the in-image installer. */
export function osYaml(def: ImageDef): string {
  return stringify({ os: def.os, version: def.version, machine_type: def.machine_type, ...def.contract });
}

/** Stage the finalize context: lib/, meta/, finalize.sh, installer/ with os.yaml. */
export function stageFinalizeContext(def: ImageDef): string {
  const dir = join(config().stateDir, 'context', `${contextName(def)}-finalize`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'meta'), { recursive: true });
  mkdirSync(join(dir, 'lib'));
  for (const f of readdirSync(IMAGE_LIB_DIR)) copyFileSync(join(IMAGE_LIB_DIR, f), join(dir, 'lib', f));
  for (const [name, text] of Object.entries(finalizeMeta(def))) writeFileSync(join(dir, 'meta', name), text);
  copyFileSync(join(ROOT, FINALIZE_DIR, 'finalize.sh'), join(dir, 'finalize.sh'));
  const installer = join(dir, 'installer');
  mkdirSync(installer);
  const copy = (src: string, dest: string): void => {
    for (const name of readdirSync(src)) {
      if (name === '__pycache__') continue;
      const s = join(src, name);
      if (lstatSync(s).isDirectory()) {
        mkdirSync(join(dest, name));
        copy(s, join(dest, name));
      } else copyFileSync(s, join(dest, name));
    }
  };
  copy(INSTALLER_DIR, installer);
  // Per-OS installer data comes from image.yaml, not from copies of the installer.
  writeFileSync(join(installer, 'os.yaml'), osYaml(def));
  return dir;
}

export function finalizeSpec(def: ImageDef, context: string, meta: BuildMeta): BuildSpec {
  return {
    tag: imageTag(def),
    dockerfile: join(ROOT, FINALIZE_DIR, 'Dockerfile'),
    context,
    buildArgs: {
      BODY_IMAGE: bodyTag(def),
      SUDO_GROUP: def.contract.sudo_group,
      BUILD_DATE: meta.date,
      BUILD_COMMIT: meta.commit,
      BUILD_VERSION: meta.version,
    },
    labels: {
      'org.opencontainers.image.title': `metal-images ${def.os} ${def.version}`,
      'org.opencontainers.image.revision': meta.commit,
      'org.opencontainers.image.version': meta.version,
      'org.opencontainers.image.created': meta.date,
    },
  };
}

/** The whole build step: body, then finalize. */
export async function buildImage(def: ImageDef, meta: BuildMeta, o: { dryRun?: boolean } = {}): Promise<BuiltImage> {
  const body = await buildBody(def);
  const spec = finalizeSpec(def, stageFinalizeContext(def), meta);
  await dockerBuild(spec);
  if (o.dryRun) return { tag: spec.tag, body, dockerImageId: '', bodyImageId: '' };
  return { tag: spec.tag, body, dockerImageId: await dockerImageId(spec.tag), bodyImageId: await dockerImageId(body) };
}

/** The step: build body and finalize, record it. Returns its note. */
export async function build(ctx: BuildContext): Promise<string> {
  const t0 = performance.now();
  ctx.meta ??= await buildMeta();
  if (isDryRun()) {
    await buildImage(ctx.def, ctx.meta, { dryRun: true });
    return 'DRY_RUN=1: the docker builds above were printed, not run';
  }
  const builder = await requireBuildKit();
  const b = await buildImage(ctx.def, ctx.meta);
  ctx.tag = b.tag;
  record(ctx, 'build', {
    tag: b.tag, body: b.body, docker_image_id: b.dockerImageId, body_image_id: b.bodyImageId,
    commit: ctx.meta.commit, date: ctx.meta.date, version: ctx.meta.version, seconds: (performance.now() - t0) / 1000,
    builder,
  });
  return `${b.tag} ${b.dockerImageId.slice(7, 19)} on ${b.body}, BuildKit ${builder.buildkit} (buildx ${builder.buildx}, driver ${builder.driver})`;
}
