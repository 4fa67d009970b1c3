// Static checks of an OS folder: everything that can be verified without a base image, an archive
// or a docker daemon. Each check is a pure function from inputs to findings (tested against exact
// messages in tests/unit/static.test.ts); the wrappers at the bottom read the folder and run
// shellcheck.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, posix, relative } from 'node:path';
import { LineCounter, parseDocument, isMap } from 'yaml';
import { MetalError } from '../lib/errors.ts';
import { FINALIZE_DIR, loadImageDef, listOsFolders, type ImageDef } from '../lib/image-def.ts';
import { GO_TOOLS } from '../lib/tools.ts';
import { ALWAYS_STAGED_DIRS, bodyBuildArgs, PIPELINE_BUILD_ARGS, stagedFiles } from '../steps/build.ts';
import { run } from '../lib/shell.ts';
import {
  parseDockerfile, stages, varRefs, parseArg, parseEnv, copyOperands, mountOptions, EXPANDED, PREDEFINED_ARGS,
  type Dockerfile, type Instruction,
} from './dockerfile.ts';

export const CHECKS = ['image.yaml', 'Dockerfile', 'build args', 'COPY sources', 'layers', 'goss', 'shellcheck'] as const;
export type CheckId = (typeof CHECKS)[number];

export interface Finding {
  check: CheckId;
  /** Path relative to the repository root (or the fixture root). */
  file: string;
  line: number | null;
  message: string;
}

export function formatFinding(f: Finding): string {
  return `${f.file}${f.line !== null ? `:${f.line}` : ''}: ${f.message}`;
}

// ---- Dockerfile syntax -------------------------------------------------------------------------

/** Parse errors, plus the pipeline's own requirement: some stage builds FROM ${BASE_IMAGE}. */
export function dockerfileFindings(df: Dockerfile, file: string): Finding[] {
  const out: Finding[] = df.errors.map((e) => ({ check: 'Dockerfile' as const, file, line: e.line, message: e.message }));
  const { stages: st } = stages(df);
  if (st.length > 0 && !st.some((s) => /^\$\{?BASE_IMAGE\}?$/.test(s.image))) {
    out.push({ check: 'Dockerfile', file, line: st[0]!.from.line, message: 'no stage builds FROM ${BASE_IMAGE} (the pipeline passes the base image as that build arg)' });
  }
  const known = new Set<string>();
  st.forEach((s, i) => {
    for (const ins of s.body) {
      const from = ins.flags['from'];
      if ((ins.keyword === 'COPY' || ins.keyword === 'ADD') && from !== undefined && !known.has(from.toLowerCase()) && !(/^\d+$/.test(from) && Number(from) < i)) {
        out.push({ check: 'Dockerfile', file, line: ins.line, message: `${ins.keyword} --from=${from} names no earlier stage of this Dockerfile (images from a registry cannot be pulled here)` });
      }
      for (const m of ins.mounts) {
        const mf = mountOptions(m).from;
        if (mf !== undefined && !known.has(mf.toLowerCase())) {
          out.push({ check: 'Dockerfile', file, line: ins.line, message: `RUN --mount from=${mf} names no earlier stage of this Dockerfile (images from a registry cannot be pulled here)` });
        }
      }
    }
    if (s.name) known.add(s.name);
  });
  return out;
}

// ---- build args --------------------------------------------------------------------------------

/** One way the pipeline builds the folder: the default, or a variant (label = variant name). */
export interface BuildConfig {
  label: string;
  /** Every build arg the pipeline passes in this configuration, with its value. */
  args: Record<string, string>;
  /** Build args that come from image.yaml (build_args of the definition or the variant). */
  fromYaml: string[];
}

/** Pure: the configurations of a definition and its variants. */
export function buildConfigs(defs: ImageDef[]): BuildConfig[] {
  return defs.map((d) => ({ label: d.variant, args: bodyBuildArgs(d, d.base.from ? 'static-check-kernel' : null), fromYaml: Object.keys(d.build_args) }));
}

/**
 * Pure. Rules:
 * 1. FROM may use only ARGs declared before the first FROM.
 * 2. Instructions the builder expands (COPY, ENV, LABEL, WORKDIR, ...) may use only ARGs and ENVs
 *    declared in their stage (a global ARG must be re-declared after FROM to be visible).
 * 3. RUN may not use a build arg (a name declared by some ARG, or passed by the pipeline) that is not
 *    declared in its stage: docker would leave it empty. Other shell variables are the shell's.
 * 4. Every ARG without a default must be given by the pipeline or image.yaml in every configuration.
 * 5. Every image.yaml build arg must be declared by an ARG (docker ignores undeclared ones).
 */
export function buildArgFindings(df: Dockerfile, file: string, configs: BuildConfig[], yamlFile: string): Finding[] {
  const out: Finding[] = [];
  const add = (line: number | null, message: string, f = file): void => {
    out.push({ check: 'build args', file: f, line, message });
  };
  const { globalArgs, stages: st } = stages(df);
  const allArgInstrs = df.instructions.filter((i) => i.keyword === 'ARG');
  const declaredAnywhere = new Set(allArgInstrs.flatMap((i) => parseArg(i.rest).map((a) => a.name)));
  const passed = new Set(configs.flatMap((c) => Object.keys(c.args)));
  const buildArgNames = new Set([...declaredAnywhere, ...passed]);
  const predefined = new Set(PREDEFINED_ARGS);

  const global = new Set<string>();
  for (const ins of globalArgs) {
    for (const a of parseArg(ins.rest)) {
      if (a.value !== null) checkRefs(ins, a.value, global, 'global');
      global.add(a.name);
    }
  }
  const stageEnv = new Map<string, Set<string>>();
  for (const s of st) {
    for (const r of varRefs(s.from.rest, { escape: df.escape })) {
      if (!global.has(r.name) && !predefined.has(r.name)) {
        add(s.from.line, `FROM uses ${r.text}, which no ARG before the first FROM declares (add ARG ${r.name} at the top)`);
      }
    }
    const parent = stageEnv.get(s.image.toLowerCase());
    const env = new Set<string>(parent ?? []);
    const scope = new Set<string>(env);
    for (const ins of s.body) {
      if (ins.keyword === 'ARG') {
        for (const a of parseArg(ins.rest)) {
          if (a.value !== null) checkRefs(ins, a.value, scope, 'stage');
          scope.add(a.name);
        }
      } else if (ins.keyword === 'ENV') {
        for (const e of parseEnv(ins.rest)) {
          checkRefs(ins, e.value, scope, 'stage');
          scope.add(e.name);
          env.add(e.name);
        }
      } else if (ins.keyword === 'RUN') {
        if (ins.json) continue; // exec form: no shell, no expansion
        const seen = new Set<string>();
        for (const r of varRefs(ins.rest, { shell: true, escape: df.escape })) {
          if (seen.has(r.name) || scope.has(r.name) || predefined.has(r.name) || !buildArgNames.has(r.name)) continue;
          seen.add(r.name);
          add(ins.line, `RUN uses ${r.text}, a build arg that is not declared in this stage (add ARG ${r.name} after its FROM)`);
        }
      } else if ((EXPANDED as readonly string[]).includes(ins.keyword)) {
        checkRefs(ins, ins.args, scope, 'stage');
      }
    }
    if (s.name) stageEnv.set(s.name, env);
  }

  function checkRefs(ins: Instruction, text: string, scope: Set<string>, where: 'global' | 'stage'): void {
    const seen = new Set<string>();
    for (const r of varRefs(text, { escape: df.escape })) {
      if (seen.has(r.name) || scope.has(r.name) || predefined.has(r.name)) continue;
      seen.add(r.name);
      add(ins.line, where === 'global'
        ? `${ins.keyword} uses ${r.text}, which no earlier ARG declares`
        : `${ins.keyword} uses ${r.text}, which is not declared in this stage (add ARG ${r.name} after its FROM)`);
    }
  }

  // rule 4: every ARG without a default is given in every configuration
  const reported = new Set<string>();
  for (const ins of allArgInstrs) {
    for (const a of parseArg(ins.rest)) {
      if (a.value !== null || reported.has(a.name) || predefined.has(a.name)) continue;
      const missing = configs.filter((c) => !(a.name in c.args));
      if (missing.length === 0) continue;
      reported.add(a.name);
      const which = missing.length === configs.length ? '' : ` (${missing.map((c) => (c.label ? `variant ${c.label}` : 'default build')).join(', ')})`;
      add(ins.line, `ARG ${a.name} has no default and neither the pipeline nor image.yaml build_args give it${which}`);
    }
  }
  // rule 5: image.yaml build args are declared
  const yamlArgs = [...new Set(configs.flatMap((c) => c.fromYaml))];
  for (const name of yamlArgs) {
    if (!declaredAnywhere.has(name) && !(PIPELINE_BUILD_ARGS as readonly string[]).includes(name)) {
      add(null, `build_args.${name} is not declared by any ARG in ${file} (docker would ignore it)`, yamlFile);
    }
  }
  return out;
}

// ---- COPY sources ------------------------------------------------------------------------------

/** The staged build context, as scripts/steps/build.ts stageContext() lays it out. */
export interface ContextLayout {
  /** Does this context-relative path exist (file or directory)? */
  exists(rel: string): boolean;
  /** Entries of a context-relative directory, or null if it is none. */
  list(rel: string): string[] | null;
}

/** Pure: expand `$X`/`${X}` with known values; null if some name has no known value. */
export function expandVars(text: string, values: Record<string, string>): string | null {
  let unknown = false;
  const out = text.replace(/\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-+][^}]*)?\}|([A-Za-z_][A-Za-z0-9_]*))/g, (_m, a: string | undefined, b: string | undefined) => {
    const name = (a ?? b)!;
    if (!(name in values)) {
      unknown = true;
      return '';
    }
    return values[name]!;
  });
  return unknown ? null : out;
}

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (const c of glob) {
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Pure: does a context-relative COPY source (maybe with * and ? in its last part) exist? */
export function sourceExists(layout: ContextLayout, src: string): boolean {
  if (!/[*?]/.test(src)) return layout.exists(src);
  const dir = posix.dirname(src);
  const base = posix.basename(src);
  if (/[*?]/.test(dir)) return true; // globs in directories: not checked
  const entries = layout.list(dir === '.' ? '' : dir);
  return entries !== null && entries.some((e) => globToRegExp(base).test(e));
}

/** Pure: every COPY/ADD source (from the context, not --from a stage) exists in the layout. */
export function copySourceFindings(df: Dockerfile, file: string, layout: ContextLayout, values: Record<string, string>, contextName: string): Finding[] {
  const out: Finding[] = [];
  const { stages: st } = stages(df);
  for (const s of st) {
    const scope: Record<string, string> = {};
    for (const ins of s.body) {
      if (ins.keyword === 'ARG') for (const a of parseArg(ins.rest)) scope[a.name] = values[a.name] ?? a.value ?? '';
      if (ins.keyword === 'ENV') for (const e of parseEnv(ins.rest)) scope[e.name] = expandVars(e.value, scope) ?? '';
      if ((ins.keyword !== 'COPY' && ins.keyword !== 'ADD') || ins.flags['from'] !== undefined) continue;
      const { sources } = copyOperands(ins);
      if (sources.length === 0) {
        out.push({ check: 'COPY sources', file, line: ins.line, message: `${ins.keyword} needs a source and a destination` });
        continue;
      }
      for (const raw of sources) {
        if (ins.keyword === 'ADD' && /^(https?|git):\/\/|^git@/.test(raw)) continue;
        const expanded = expandVars(raw, scope);
        if (expanded === null) {
          out.push({ check: 'COPY sources', file, line: ins.line, message: `${ins.keyword} source "${raw}" uses a variable with no known value` });
          continue;
        }
        const norm = posix.normalize(expanded.replace(/^\/+/, '') || '.');
        if (norm === '..' || norm.startsWith('../')) {
          out.push({ check: 'COPY sources', file, line: ins.line, message: `${ins.keyword} source "${raw}" is outside the build context` });
          continue;
        }
        const rel = norm === '.' ? '' : norm.replace(/\/$/, '');
        if (!sourceExists(layout, rel)) {
          out.push({ check: 'COPY sources', file, line: ins.line, message: `${ins.keyword} source "${raw}" does not exist in the build context (${contextName})` });
        }
      }
    }
  }
  return out;
}

/**
 * The staged body context of a definition, as scripts/steps/build.ts stageBodyContext() lays it
 * out: the layers' context/ dirs, the OS folder's, a variant's, lib/, tools/<go tool>, and the dirs
 * every body context has.
 */
export function contextLayout(def: ImageDef): ContextLayout {
  const files = new Set(stagedFiles(def).keys());
  const dirs = new Set<string>(['', ...ALWAYS_STAGED_DIRS]);
  for (const f of files) {
    const parts = f.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  return {
    exists: (rel) => files.has(rel) || dirs.has(rel),
    list(rel) {
      if (!dirs.has(rel)) return null;
      const prefix = rel === '' ? '' : `${rel}/`;
      const out = new Set<string>();
      for (const p of [...files, ...dirs]) if (p !== rel && p.startsWith(prefix)) out.add(p.slice(prefix.length).split('/')[0]!);
      return [...out];
    },
  };
}

// ---- layers ------------------------------------------------------------------------------------

/**
 * Pure: files an OS folder (or a variant's context) stages that are byte-identical to what a lower
 * layer or the image it is built on already puts at the same path: they belong in that layer.
 * `staged` lists, lowest first, each source dir's files (context-relative path → bytes' hash).
 */
export function duplicateFindings(staged: { name: string; files: Map<string, string> }[], own: Set<string>): Finding[] {
  const out: Finding[] = [];
  for (let i = 0; i < staged.length; i++) {
    const upper = staged[i]!;
    if (!own.has(upper.name)) continue;
    for (const [rel, hash] of upper.files) {
      const lower = staged.slice(0, i).reverse().find((l) => l.files.get(rel) === hash);
      if (lower) out.push({ check: 'layers', file: `${upper.name}/${rel}`, line: null, message: `is identical to ${lower.name}/${rel}: drop it here (the lower layer already provides it)` });
    }
  }
  return out;
}

/** What only the finalize stage (layers/finalize) may do; a body Dockerfile doing it repeats it. */
const FINALIZE_MARKS: { re: RegExp; what: string }[] = [
  { re: /\binstaller\/?\s/, what: 'copies the installer' },
  { re: /--record-permissions/, what: 'records the permissions' },
  { re: /\/etc\/metal\/build\.yaml/, what: 'writes the build metadata' },
  { re: /^\s*ARG\s+BUILD_(DATE|COMMIT|VERSION)\b/m, what: 'takes the commit\'s build args' },
];

/** Pure: a body Dockerfile's instructions that repeat the finalize stage. */
export function finalizeRepeatFindings(df: Dockerfile, file: string): Finding[] {
  const out: Finding[] = [];
  for (const ins of df.instructions) {
    const text = `${ins.keyword} ${ins.rest}`;
    const mark = FINALIZE_MARKS.find((m) => m.re.test(text));
    if (mark) out.push({ check: 'layers', file, line: ins.line, message: `${ins.keyword} ${mark.what}: that is the finalize stage's (${FINALIZE_DIR}/Dockerfile), which every image passes through` });
  }
  return out;
}

function hashFiles(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string, base: string): void => {
    if (!existsSync(d)) return;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const rel = base ? `${base}/${e.name}` : e.name;
      if (e.isDirectory()) walk(join(d, e.name), rel);
      else out.set(rel, createHash('sha256').update(readFileSync(join(d, e.name))).digest('hex'));
    }
  };
  walk(dir, '');
  return out;
}

/** The staged dirs below and of a definition, lowest first: its base image's (recursively), its layers', its own. */
function stagedSources(def: ImageDef, root: string): { name: string; files: Map<string, string> }[] {
  const below = def.base.from ? stagedSources(loadImageDef(def.base.from, '', root), root) : [];
  return [...below, ...def.contextDirs.map((d) => ({ name: relative(root, d), files: hashFiles(d) }))];
}

export function layerFindings(def: ImageDef, root: string): Finding[] {
  const own = new Set([join(def.dir, 'context'), ...def.contextDirs.filter((d) => d.startsWith(`${def.dir}/`))].map((d) => relative(root, d)));
  return duplicateFindings(stagedSources(def, root), own);
}

// ---- goss --------------------------------------------------------------------------------------

/** Resource types goss v0.4.9 knows (the pinned version in scripts/tools/go.mod). */
export const GOSS_TYPES = ['file', 'package', 'addr', 'port', 'service', 'user', 'group', 'command', 'dns', 'process', 'kernel-param', 'mount', 'interface', 'http', 'matching', 'gossfile'];

/**
 * Pure. goss renders a gossfile as a Go template before reading it as YAML: lines that hold only
 * template actions are dropped and inline actions replaced by a placeholder, so templated specs
 * parse too (line numbers stay the same).
 */
export function gossFindings(text: string, file: string, gossfileExists: (path: string) => boolean): Finding[] {
  const out: Finding[] = [];
  const add = (line: number | null, message: string): void => {
    out.push({ check: 'goss', file, line, message });
  };
  const untemplated = text
    .split('\n')
    .map((l) => (/^\s*(\{\{-?[\s\S]*?-?\}\}\s*)+$/.test(l) ? '' : l.replace(/\{\{-?[\s\S]*?-?\}\}/g, 'TEMPLATE')))
    .join('\n');
  const lines = new LineCounter();
  const doc = parseDocument(untemplated, { prettyErrors: false, uniqueKeys: true, lineCounter: lines });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const pos = lines.linePos(e.pos[0]);
    add(pos.line, `YAML error: ${e.message.split('\n')[0]}`);
    return out;
  }
  const contents = doc.contents;
  if (contents === null) {
    add(null, 'the goss spec is empty');
    return out;
  }
  if (!isMap(contents)) {
    add(1, 'a goss spec must be a mapping of resource types (file:, service:, ...)');
    return out;
  }
  for (const item of contents.items) {
    const key = String((item.key as { value?: unknown })?.value ?? item.key);
    const line = item.key && typeof item.key === 'object' && 'range' in item.key && item.key.range ? lines.linePos(item.key.range[0]).line : null;
    if (!GOSS_TYPES.includes(key)) {
      add(line, `unknown goss resource type "${key}" (goss v0.4.9 knows: ${GOSS_TYPES.join(', ')})`);
      continue;
    }
    const v = item.value;
    if (v === null || v === undefined || (typeof v === 'object' && 'value' in v && v.value === null)) continue;
    if (!isMap(v)) {
      add(line, `"${key}" must be a mapping of resources to their attributes`);
      continue;
    }
    if (key === 'gossfile') {
      for (const g of v.items) {
        const path = String((g.key as { value?: unknown })?.value ?? g.key);
        if (path.includes('TEMPLATE')) continue;
        if (!gossfileExists(path)) {
          const gl = g.key && typeof g.key === 'object' && 'range' in g.key && g.key.range ? lines.linePos(g.key.range[0]).line : line;
          add(gl, `gossfile "${path}" does not exist`);
        }
      }
    }
  }
  return out;
}

// ---- shellcheck --------------------------------------------------------------------------------

/** Findings at or above this severity fail the check (info and style notes do not). */
export const SHELLCHECK_SEVERITY = 'warning';

/** Pure: `shellcheck --format=gcc` output to findings (paths as given to shellcheck). */
export function parseShellcheckGcc(output: string): Finding[] {
  const out: Finding[] = [];
  for (const l of output.split('\n')) {
    const m = /^(.+?):(\d+):(\d+): (error|warning|note|info|style): (.*)$/.exec(l);
    if (m) out.push({ check: 'shellcheck', file: m[1]!, line: Number(m[2]), message: `${m[4]}: ${m[5]}` });
  }
  return out;
}

const SHEBANG = /^#!\s*(?:\/usr)?\/bin\/(?:env\s+)?(?:sh|bash|dash)\b/;

/** Every *.sh and every file with a sh/bash shebang below the given directories, sorted. */
export function shellScripts(dirs: string[]): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && (e.name.endsWith('.sh') || SHEBANG.test(readHead(p)))) out.push(p);
    }
  };
  for (const d of dirs) if (existsSync(d)) walk(d);
  return out.sort();
}

function readHead(p: string): string {
  const buf = readFileSync(p);
  return buf.subarray(0, Math.min(buf.length, 128)).toString('latin1');
}

/** Run shellcheck over files; findings carry paths relative to root. */
export async function shellcheckFindings(files: string[], root: string): Promise<Finding[]> {
  if (files.length === 0) return [];
  const rel = files.map((f) => relative(root, f));
  const r = await run(['shellcheck', '--format=gcc', `--severity=${SHELLCHECK_SEVERITY}`, '--external-sources', ...rel], { cwd: root, nothrow: true });
  if (r.code !== 0 && r.code !== 1) {
    throw new MetalError('tool', `shellcheck exited ${r.code}: ${(r.stderr || r.stdout).trim().split('\n')[0]}`, 'run make setup (installs shellcheck)');
  }
  return parseShellcheckGcc(r.stdout);
}

// ---- image.yaml --------------------------------------------------------------------------------

/** Validate image.yaml, every variant, its go_tools and its base dependency. Returns the definitions. */
export function imageYamlFindings(os: string, root: string): { findings: Finding[]; defs: ImageDef[] } {
  const file = `${os}/image.yaml`;
  const findings: Finding[] = [];
  const add = (message: string): void => {
    findings.push({ check: 'image.yaml', file, line: lineOf(message), message: message.replace(/^[^:]*image\.yaml(:\d+:\d+)?: /, '') });
  };
  const defs: ImageDef[] = [];
  let def: ImageDef;
  try {
    def = loadImageDef(os, '', root);
  } catch (e) {
    if (e instanceof MetalError) add(e.message);
    else throw e;
    return { findings, defs };
  }
  defs.push(def);
  for (const v of Object.keys(def.variants)) {
    try {
      defs.push(loadImageDef(os, v, root));
    } catch (e) {
      if (e instanceof MetalError) add(e.message);
      else throw e;
    }
  }
  const toolNames = GO_TOOLS.map((t) => t.name);
  for (const t of def.go_tools) {
    if (!toolNames.includes(t)) add(`go_tools lists "${t}", which scripts/lib/tools.ts GO_TOOLS does not build (known: ${toolNames.join(', ')})`);
  }
  return { findings, defs };
}

function lineOf(message: string): number | null {
  const m = /image\.yaml:(\d+):\d+: /.exec(message);
  return m ? Number(m[1]) : null;
}

// ---- one folder --------------------------------------------------------------------------------

export interface FolderReport {
  os: string;
  findings: Finding[];
  /** Checks that could not run (e.g. no Dockerfile because image.yaml is broken), with why. */
  notRun: Partial<Record<CheckId, string>>;
}

/** Run every check over `<root>/<os>/`. */
export async function checkFolder(os: string, root: string): Promise<FolderReport> {
  const findings: Finding[] = [];
  const notRun: FolderReport['notRun'] = {};
  const y = imageYamlFindings(os, root);
  findings.push(...y.findings);

  const def = y.defs[0];
  const dockerfilePath = def?.dockerfile ?? join(root, os, 'Dockerfile');
  const dfFile = relative(root, dockerfilePath);
  if (!def) {
    for (const c of ['Dockerfile', 'build args', 'COPY sources', 'layers'] as const) notRun[c] = 'image.yaml is invalid';
  } else if (!existsSync(dockerfilePath)) {
    findings.push({ check: 'Dockerfile', file: dfFile, line: null, message: `does not exist (${os}/ has no Dockerfile and none of its layers has one)` });
  } else {
    const df = parseDockerfile(readFileSync(dockerfilePath, 'utf8'));
    findings.push(...dockerfileFindings(df, dfFile));
    findings.push(...finalizeRepeatFindings(df, dfFile));
    const configs = buildConfigs(y.defs);
    findings.push(...buildArgFindings(df, dfFile, configs, `${os}/image.yaml`));
    for (const d of y.defs) {
      const values = configs.find((c) => c.label === d.variant)!.args;
      const dirs = [...d.contextDirs.map((c) => relative(root, c)), 'lib/', 'tools/'].join(' + ');
      for (const f of copySourceFindings(df, dfFile, contextLayout(d), values, dirs)) {
        if (!findings.some((g) => g.line === f.line && g.message === f.message)) findings.push(f);
      }
      for (const f of layerFindings(d, root)) if (!findings.some((g) => g.file === f.file)) findings.push(f);
    }
  }

  const gossPath = join(root, os, 'goss.yaml');
  if (!existsSync(gossPath)) findings.push({ check: 'goss', file: `${os}/goss.yaml`, line: null, message: 'does not exist' });
  else {
    const dir = join(root, os);
    findings.push(...gossFindings(readFileSync(gossPath, 'utf8'), `${os}/goss.yaml`, (p) => existsSync(p.startsWith('/') ? p : join(dir, p))));
  }

  findings.push(...(await shellcheckFindings(shellScripts([join(root, os)]), root)));
  return { os, findings, notRun };
}

/** What every image shares, checked once: the installer's shell scripts and the goss specs in tests/goss. */
export async function checkShared(root: string): Promise<Finding[]> {
  const out: Finding[] = [];
  const gossDir = join(root, 'tests', 'goss');
  if (existsSync(gossDir)) {
    for (const name of readdirSync(gossDir).filter((n) => n.endsWith('.yaml')).sort()) {
      const dir = gossDir;
      out.push(...gossFindings(readFileSync(join(gossDir, name), 'utf8'), `tests/goss/${name}`, (p) => existsSync(p.startsWith('/') ? p : join(dir, p))));
    }
  }
  // the layers and the finalize stage (shared by the folders that list them), the build-time shell
  // library, the installer
  out.push(...(await shellcheckFindings(shellScripts([join(root, 'layers'), join(root, 'scripts', 'image-lib'), join(root, 'scripts', 'installer')]), root)));
  return out;
}

export async function checkAll(root: string, only: string[] = []): Promise<{ reports: FolderReport[]; shared: Finding[] }> {
  const folders = only.length > 0 ? only : listOsFolders(root);
  const reports: FolderReport[] = [];
  for (const os of folders) reports.push(await checkFolder(os, root));
  return { reports, shared: await checkShared(root) };
}
