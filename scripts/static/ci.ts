// The CI definitions, checked by `make check`:
//
//   .github/workflows/*.y(a)ml   actionlint (pinned in scripts/tools/actionlint/go.mod, built on first
//                                use), which also runs shellcheck over every run: script
//   .gitlab-ci.yml               this project's own structural checks (gitlabFindings): the YAML
//                                parses; stages are declared and every job's stage is one of them;
//                                every script line is a call of a make target the Makefile has; the
//                                image jobs (make <os> [VARIANT=...]) cover every OS folder and
//                                variant; a job per image
//
// The matrix both fan out over is `make ci-matrix` (ciMatrix): one entry per image, variants included.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { isMap, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import { definedImages } from '../release/local.ts';
import { ensureGoTool } from '../lib/setup.ts';
import { run } from '../lib/shell.ts';

export interface CiFinding {
  file: string;
  line: number | null;
  message: string;
}

export interface MatrixEntry {
  /** The OS folder (the make target). */
  os: string;
  /** '' for the folder's default. */
  variant: string;
  version: string;
  /** What the job is called: debian-12, debian-13, firewall-3.0-debian. */
  name: string;
}

/** The images CI fans out over: every OS folder and variant the checkout defines. */
export function ciMatrix(root: string): { include: MatrixEntry[] } {
  return { include: definedImages(root).map((p) => ({ os: p.os, variant: p.variant ?? '', version: p.version, name: `${p.os}-${p.version}` })) };
}

/** Pure: the make targets a Makefile text defines: .PHONY names, rule names, the OS folders' (OSES). */
export function makeTargets(makefile: string, osFolders: readonly string[]): Set<string> {
  const out = new Set<string>(osFolders);
  for (const m of makefile.matchAll(/^\.PHONY:(.*)$/gm)) for (const t of m[1]!.trim().split(/\s+/)) if (!t.startsWith('$')) out.add(t);
  for (const m of makefile.matchAll(/^([A-Za-z0-9][A-Za-z0-9_. -]*?):(?!=)/gm)) for (const t of m[1]!.trim().split(/\s+/)) if (!/[%$]/.test(t)) out.add(t);
  return out;
}

/** Pure: a shell line as a make call: its targets and VAR=value assignments; null if it is not one. */
export function parseMakeCall(line: string): { targets: string[]; vars: Record<string, string> } | null {
  const words = line.trim().split(/\s+/);
  if (words[0] !== 'make') return null;
  const targets: string[] = [];
  const vars: Record<string, string> = {};
  for (const w of words.slice(1)) {
    if (/^-/.test(w)) continue; // make's own options (-s, -k)
    const a = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(w);
    if (a) vars[a[1]!] = a[2]!.replace(/^["']|["']$/g, '');
    else targets.push(w);
  }
  return { targets, vars };
}

const NOT_JOBS = new Set(['stages', 'variables', 'default', 'workflow', 'include', 'image', 'services', 'before_script', 'after_script', 'cache', 'pages']);

type Job = Record<string, unknown>;

/**
 * Pure: the structural findings of a .gitlab-ci.yml text. `targets`: the Makefile's targets;
 * `images`: the matrix (every OS folder and variant must have a job that runs make <os> [VARIANT=]).
 */
export function gitlabFindings(text: string, file: string, targets: ReadonlySet<string>, images: readonly MatrixEntry[]): CiFinding[] {
  const out: CiFinding[] = [];
  const lc = new LineCounter();
  const doc: Document = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    return [{ file, line: e.linePos?.[0]?.line ?? null, message: `YAML does not parse: ${e.message.split('\n')[0]}` }];
  }
  const top = doc.contents;
  if (!isMap(top)) return [{ file, line: null, message: 'the top level is not a mapping of jobs' }];
  const lineOf = (key: string): number | null => {
    const pair = top.items.find((p) => (p.key as { value?: unknown })?.value === key);
    const r = (pair?.key as { range?: [number, number, number] })?.range;
    return r ? lc.linePos(r[0]).line : null;
  };
  const data = doc.toJS() as Record<string, unknown>;
  const stages = data.stages;
  if (!Array.isArray(stages) || stages.length === 0) out.push({ file, line: lineOf('stages'), message: 'no stages: are declared' });
  const declared = new Set(Array.isArray(stages) ? stages.map(String) : []);
  const jobs = Object.entries(data).filter(([k]) => !NOT_JOBS.has(k));
  const templates = new Map(jobs.filter(([k]) => k.startsWith('.')) as [string, Job][]);
  const resolved = (job: Job, seen = new Set<string>()): Job => {
    const ext = job.extends;
    const parents = (Array.isArray(ext) ? ext : ext ? [ext] : []).map(String);
    let merged: Job = {};
    for (const p of parents) {
      const t = templates.get(p);
      if (t && !seen.has(p)) merged = { ...merged, ...resolved(t, new Set([...seen, p])) };
    }
    return { ...merged, ...job };
  };
  const covered = new Set<string>();
  for (const [name, raw] of jobs) {
    if (name.startsWith('.')) continue;
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
      out.push({ file, line: lineOf(name), message: `job ${name} is not a mapping` });
      continue;
    }
    const job = resolved(raw as Job);
    const ext = (raw as Job).extends;
    for (const p of (Array.isArray(ext) ? ext : ext ? [ext] : []).map(String)) if (!templates.has(p)) out.push({ file, line: lineOf(name), message: `job ${name} extends ${p}, which is not defined` });
    const needs = job.needs;
    for (const n of (Array.isArray(needs) ? needs : []).map((x) => (typeof x === 'object' && x ? String((x as { job?: unknown }).job) : String(x)))) {
      if (!jobs.some(([k]) => k === n && !k.startsWith('.'))) out.push({ file, line: lineOf(name), message: `job ${name} needs ${n}, which is not a job` });
    }
    const stage = typeof job.stage === 'string' ? job.stage : undefined;
    if (!stage) out.push({ file, line: lineOf(name), message: `job ${name} has no stage:` });
    else if (!declared.has(stage)) out.push({ file, line: lineOf(name), message: `job ${name} is in stage ${stage}, which stages: does not declare (${[...declared].join(', ')})` });
    const script = job.script;
    if (!Array.isArray(script) || script.length === 0) {
      out.push({ file, line: lineOf(name), message: `job ${name} has no script:` });
      continue;
    }
    for (const key of ['before_script', 'script', 'after_script'] as const) {
      const lines = job[key];
      if (lines === undefined) continue;
      for (const l of (Array.isArray(lines) ? lines : [lines]).flat().map(String)) {
        const call = parseMakeCall(l);
        if (!call) {
          out.push({ file, line: lineOf(name), message: `job ${name} runs "${l.slice(0, 60)}": CI calls the Makefile's targets only` });
          continue;
        }
        for (const t of call.targets) {
          if (!targets.has(t)) out.push({ file, line: lineOf(name), message: `job ${name} calls make ${t}, which the Makefile does not have` });
        }
        for (const t of call.targets) if (images.some((i) => i.os === t)) covered.add(`${t}\u0000${call.vars.VARIANT ?? ''}`);
      }
    }
  }
  for (const i of images) {
    if (!covered.has(`${i.os}\u0000${i.variant}`)) out.push({ file, line: null, message: `no job builds ${i.name}: add one that runs make ${i.os}${i.variant ? ` VARIANT=${i.variant}` : ''}` });
  }
  return out;
}

/** Pure: actionlint's -oneline output as findings (file:line:col: message [rule]). */
export function parseActionlint(output: string, root: string): CiFinding[] {
  const out: CiFinding[] = [];
  for (const l of output.split('\n')) {
    const m = /^(.+?):(\d+):(\d+): (.*)$/.exec(l.trim());
    if (m) out.push({ file: relative(root, join(root, m[1]!)) || m[1]!, line: Number(m[2]), message: m[4]! });
  }
  return out;
}

/** The workflow files of a directory (.yml and .yaml). */
export function workflowFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((n) => /\.ya?ml$/.test(n)).sort().map((n) => join(dir, n));
}

/** actionlint over workflow files; its findings (none when they pass). */
export async function actionlintFindings(files: readonly string[], root: string): Promise<CiFinding[]> {
  if (files.length === 0) return [];
  const bin = await ensureGoTool('actionlint');
  const r = await run([bin, '-oneline', '-no-color', ...files.map((f) => relative(root, f))], { cwd: root, nothrow: true });
  if (r.code === 0) return [];
  const found = parseActionlint(r.stdout, root);
  // exit 1: problems found; anything else is actionlint failing to run
  if (r.code !== 1 || found.length === 0) return [{ file: files.map((f) => relative(root, f)).join(' '), line: null, message: `actionlint exited ${r.code}: ${(r.stderr || r.stdout).trim().split('\n')[0]}` }];
  return found;
}

/** Both CI definitions of a checkout (or of fixture paths, for the tests). */
export async function checkCi(root: string, o: { workflowsDir?: string; gitlabFile?: string } = {}): Promise<{ github: CiFinding[]; gitlab: CiFinding[]; workflows: number }> {
  const workflows = workflowFiles(o.workflowsDir ?? join(root, '.github', 'workflows'));
  const github = workflows.length > 0 ? await actionlintFindings(workflows, root) : [{ file: '.github/workflows', line: null, message: 'no workflow files' }];
  const gitlabFile = o.gitlabFile ?? join(root, '.gitlab-ci.yml');
  const rel = relative(root, gitlabFile) || gitlabFile;
  const gitlab = existsSync(gitlabFile)
    ? gitlabFindings(readFileSync(gitlabFile, 'utf8'), rel, makeTargets(readFileSync(join(root, 'Makefile'), 'utf8'), ciMatrix(root).include.map((i) => i.os)), ciMatrix(root).include)
    : [{ file: rel, line: null, message: 'missing' }];
  return { github, gitlab, workflows: workflows.length };
}
