// Step "base image": the image the body builds FROM. For an image built on another OS folder
// (base.from), that folder's body (and its kernel stage), built here. Otherwise ensure it exists
// locally. Order: already local → pull →
// bootstrap from the distribution archive with mmdebstrap and `docker import` → fail with a
// message that says what is missing and what would fix it.
import { readFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PreconditionError } from '../lib/errors.ts';
import { isDryRun, run, stream, formatCommand } from '../lib/shell.ts';
import { imageExists, imageLabels, tryPull, importArgv } from '../lib/docker.ts';
import { onCleanup } from '../lib/cleanup.ts';
import { loadImageDef, type Bootstrap, type ImageDef } from '../lib/image-def.ts';
import type { BuildContext } from '../lib/build-context.ts';
import { config } from '../lib/config.ts';
import { buildBody } from './build.ts';
import { info } from '../lib/log.ts';

export const LABEL_PREFIX = 'io.metal-images.bootstrap';
/**
 * Version of the bootstrap recipe, recorded as a label. A base bootstrapped by an older recipe is
 * bootstrapped again: recipe 1 left the build host's /etc/hostname, /etc/hosts and
 * /etc/resolv.conf in the base layer, where only docker's init layer hid them.
 */
export const BOOTSTRAP_RECIPE = '2';

/** The files mmdebstrap copies from the build host for the chroot's own use; emptied in the base. */
export const HOST_FILES = ['etc/hostname', 'etc/hosts', 'etc/resolv.conf'];

/** Pure: the mirror to bootstrap from. Image data wins, then DEBIAN_MIRROR, then the host's apt sources. */
export function chooseMirror(b: Bootstrap, envMirror: string | undefined, aptSources: string): string {
  if (b.mirror) return b.mirror.replace(/\/$/, '');
  if (envMirror) return envMirror.replace(/\/$/, '');
  // deb822 "URIs:" lines or one-line "deb URL suite ..." entries, first Debian main archive wins
  for (const m of aptSources.matchAll(/^(?:URIs:\s*(\S+)|deb\s+(?:\[[^\]]*\]\s+)?(\S+))/gm)) {
    const uri = (m[1] ?? m[2])!;
    if (!/security/.test(uri)) return uri.replace(/\/$/, '');
  }
  return 'http://deb.debian.org/debian';
}

export function hostAptSources(): string {
  const files = ['/etc/apt/sources.list'];
  if (existsSync('/etc/apt/sources.list.d')) {
    for (const f of readdirSync('/etc/apt/sources.list.d').sort()) if (/\.(list|sources)$/.test(f)) files.push(join('/etc/apt/sources.list.d', f));
  }
  return files.filter((f) => existsSync(f)).map((f) => readFileSync(f, 'utf8')).join('\n');
}

/** Pure: the sources.list lines the bootstrapped system will use. */
export function bootstrapSources(b: Bootstrap, mirror: string): string[] {
  const comps = b.components.join(' ');
  const lines = [b.suite, ...b.extra_suites].map((s) => `deb ${mirror} ${s} ${comps}`);
  if (b.security) {
    const [url, suite] = b.security.split(/\s+/);
    lines.push(`deb ${url} ${suite ?? `${b.suite}-security`} ${comps}`);
  }
  return lines;
}

/** Pure: the mmdebstrap command writing a root filesystem tar to stdout. */
export function bootstrapArgv(b: Bootstrap, mirror: string): string[] {
  const argv = ['mmdebstrap', '--quiet', `--variant=${b.variant}`, '--format=tar'];
  if (b.include.length) argv.push(`--include=${b.include.join(',')}`);
  if (b.keyring) argv.push(`--keyring=${b.keyring}`);
  // Same clean-ups docker's official images do: no apt caches or lists in the base.
  argv.push('--aptopt=Acquire::Languages "none"', '--dpkgopt=path-exclude=/usr/share/doc/*', '--dpkgopt=path-include=/usr/share/doc/*/copyright');
  argv.push('--customize-hook=rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin');
  // the build host's identity and resolver must not become a layer of every image
  argv.push(`--customize-hook=for f in ${HOST_FILES.join(' ')}; do rm -f "$1/$f"; : > "$1/$f"; done`);
  argv.push(b.suite, '-', ...bootstrapSources(b, mirror));
  return argv;
}

/** Is `<mirror>/dists/<suite>/Release` reachable? Returns null if so, else the reason. */
export async function probeArchive(mirror: string, suite: string, timeoutMs = 8000): Promise<string | null> {
  const url = `${mirror}/dists/${suite}/Release`;
  try {
    const res = await fetch(url, { method: 'HEAD', signal: AbortSignal.timeout(timeoutMs) });
    return res.ok ? null : `${url} answered HTTP ${res.status}`;
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    return `${url} is unreachable (${cause?.code ?? cause?.message ?? (e as Error).message})`;
  }
}

export interface BaseResult {
  ref: string;
  how: 'local' | 'pulled' | 'bootstrapped' | 'built';
  note: string;
}

/** What ensureBase would do, decided before any bootstrap (`make all` asks this for every image). */
export type BasePlan =
  | { kind: 'local' | 'pulled'; ref: string; note: string }
  | { kind: 'bootstrap'; ref: string; bootstrap: Bootstrap; mirror: string }
  | { kind: 'unavailable'; ref: string; message: string; hint: string };

/** Local → pull → bootstrappable (keyring present, archive answering) → unavailable, with why. */
export async function planBase(def: ImageDef, envMirror?: string): Promise<BasePlan> {
  const ref = def.base.image;
  let stale = false;
  if (await imageExists(ref)) {
    const labels = await imageLabels(ref);
    const suite = labels[`${LABEL_PREFIX}.suite`];
    stale = Boolean(suite) && labels[`${LABEL_PREFIX}.recipe`] !== BOOTSTRAP_RECIPE && def.base.bootstrap !== null;
    if (!stale) {
      const note = suite ? `bootstrapped ${labels[`${LABEL_PREFIX}.date`]} from ${suite} (${labels[`${LABEL_PREFIX}.mirror`]})` : 'present locally';
      return { kind: 'local', ref, note };
    }
    info(`base ${ref} was bootstrapped by an older recipe (it holds the build host's ${HOST_FILES.map((f) => `/${f}`).join(', ')}): bootstrapping it again`);
  }
  const pullError = stale ? 'replaced by a new bootstrap' : await tryPull(ref);
  if (pullError === null) return { kind: 'pulled', ref, note: 'pulled from a registry' };
  const b = def.base.bootstrap;
  if (!b) {
    return {
      kind: 'unavailable',
      ref,
      message: `base image ${ref} is not present locally and cannot be pulled (${pullError}); ${def.os}/image.yaml has no bootstrap recipe for it`,
      hint: `load it with \`docker load -i <file>\` or \`docker tag <image> ${ref}\`, or build where a registry is reachable`,
    };
  }
  const mirror = chooseMirror(b, envMirror, hostAptSources());
  if (b.keyring && !existsSync(b.keyring)) {
    return {
      kind: 'unavailable',
      ref,
      message: `base image ${ref} is not present locally, cannot be pulled, and cannot be bootstrapped: the ${b.suite} archive ${mirror} needs the keyring ${b.keyring}, which is not installed`,
      hint: `install the package that ships ${b.keyring} where ${mirror} is reachable, or \`docker load\` a ${ref} image here`,
    };
  }
  const unreachable = await probeArchive(mirror, b.suite);
  if (unreachable) {
    return {
      kind: 'unavailable',
      ref,
      message: `base image ${ref} is not present locally, cannot be pulled, and cannot be bootstrapped: the ${b.suite} archive ${unreachable}`,
      hint: `build ${def.os} where ${mirror} or a registry is reachable, or \`docker load\` a ${ref} image here`,
    };
  }
  return { kind: 'bootstrap', ref, bootstrap: b, mirror };
}

/** The step: the base of `ctx`'s body, ready. Returns its note. */
export async function baseImage(ctx: BuildContext): Promise<string> {
  return (await ensureBaseOf(ctx.def)).note;
}

async function ensureBaseOf(def: ImageDef): Promise<BaseResult> {
  if (def.base.from) {
    const dep = loadImageDef(def.base.from);
    await ensureBaseOf(dep);
    const tag = await buildBody(dep);
    return { ref: tag, how: 'built', note: `built ${tag} from ${dep.os}/` };
  }
  return ensureBase(def, config().env.DEBIAN_MIRROR);
}

export async function ensureBase(def: ImageDef, envMirror?: string): Promise<BaseResult> {
  const plan = await planBase(def, envMirror);
  switch (plan.kind) {
    case 'local':
      info(`base ${plan.ref}: ${plan.note}`);
      return { ref: plan.ref, how: 'local', note: plan.note };
    case 'pulled':
      return { ref: plan.ref, how: 'pulled', note: plan.note };
    case 'unavailable':
      throw new PreconditionError(plan.message, plan.hint);
    case 'bootstrap':
      if (isDryRun()) return { ref: plan.ref, how: 'bootstrapped', note: `DRY_RUN=1: would bootstrap ${plan.ref} from ${plan.bootstrap.suite} (${plan.mirror})` };
      await bootstrap(plan.ref, plan.bootstrap, plan.mirror);
      return { ref: plan.ref, how: 'bootstrapped', note: `bootstrapped from ${plan.bootstrap.suite} (${plan.mirror})` };
  }
}

/** mmdebstrap | docker import, into a temporary tag that is renamed only when both succeeded. */
async function bootstrap(ref: string, b: Bootstrap, mirror: string): Promise<void> {
  const date = new Date().toISOString().slice(0, 10);
  const tmpRef = `${ref.split(':')[0]}:bootstrap-partial-${process.pid}`;
  const changes = [
    'CMD ["bash"]',
    `LABEL ${LABEL_PREFIX}.tool=mmdebstrap`,
    `LABEL ${LABEL_PREFIX}.suite=${b.suite}`,
    `LABEL ${LABEL_PREFIX}.date=${date}`,
    `LABEL ${LABEL_PREFIX}.mirror=${mirror}`,
    `LABEL ${LABEL_PREFIX}.variant=${b.variant}`,
    `LABEL ${LABEL_PREFIX}.recipe=${BOOTSTRAP_RECIPE}`,
  ];
  const mm = bootstrapArgv(b, mirror);
  info(`bootstrapping ${ref}: ${formatCommand(mm)} | docker import`);
  const producer = stream(mm, { hint: `check that ${mirror} serves ${b.suite}; run the mmdebstrap command above by hand to see why` });
  const importer = stream(importArgv(tmpRef, changes), { stdin: 'pipe' });
  const drop = onCleanup(`remove ${tmpRef}`, async () => {
    producer.kill();
    importer.kill();
    await run(['docker', 'image', 'rm', '--force', tmpRef], { nothrow: true });
  });
  producer.stdout.pipe(importer.stdin!);
  try {
    await Promise.all([producer.done, importer.done]);
  } catch (e) {
    await drop();
    throw e;
  }
  await run(['docker', 'tag', tmpRef, ref], { write: true });
  await run(['docker', 'image', 'rm', tmpRef], { write: true, nothrow: true });
  // tag is the only reference now; the cleanup would remove the temporary tag only
  await drop();
}
