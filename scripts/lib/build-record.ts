// The build record, images/<os>/<version>/build.json:
// written step by step by the pipeline (definition, build, export, lint, VM test, provisioning),
// read by `make lint`, `make vmtest` and `make release`. Paths, ids, hashes and verdicts come from
// here, not re-derived by each command, and release publishes only what the record says passed.
//
// Each verdict names the md5 of the img.tar.lz4 it checked; a new build or export drops the
// verdicts of the bytes it replaced. The file is replaced atomically (write + rename), so a reader
// never sees half a record.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const RECORD_FILE = 'build.json';
export const RECORD_SCHEMA = 1;

export interface DefinitionPart {
  os: string;
  version: string;
  variant: string;
  /** e.g. debian-12. */
  name: string;
  layers: string[];
  dockerfile: string;
}

export interface BuildPart {
  tag: string;
  body: string;
  docker_image_id: string;
  body_image_id: string;
  commit: string;
  date: string;
  version: string;
  seconds: number;
  /** Who built it: BuildKit through buildx (driver docker: the daemon's embedded BuildKit). */
  builder?: { name: string; driver: string; buildkit: string; buildx: string };
}

export interface ExportPart {
  md5: string;
  tar_bytes: number;
  lz4_bytes: number;
  packages: number;
  /** The docker image id the tar was taken from. */
  docker_image_id: string;
  level: number;
  compressor: string;
  source: string;
  seconds: number;
  /** The SPDX SBOM written beside the image (img.tar.lz4.spdx.json) and the sha256 of its bytes. */
  sbom?: { file: string; sha256: string; packages: number; files: number; tool: string };
}

/** Where `make release` pushed the docker image the tarball was exported from. */
export interface RegistryPart {
  /** e.g. 127.0.0.1:5000/metal/debian */
  repository: string;
  tags: string[];
  /** The manifest digest the registry stores under the tags (sha256:...). */
  digest: string;
  /** The docker image id pushed (that of the build part). */
  docker_image_id: string;
  /** The store prefix of the release run that pushed it. */
  prefix: string;
}

export type Verdict = 'pass' | 'fail' | 'skipped';

export interface LintPart {
  verdict: Verdict;
  md5: string;
  errors: number;
  warnings: number;
  entries: number;
}

export interface GossTotals {
  spec: string;
  passed: number;
  failed: number;
  skipped: number;
  total: number;
}

export interface VmTestPart {
  verdict: Verdict;
  /** Why it was skipped or failed. */
  reason?: string;
  md5: string;
  accel?: string;
  boot_seconds?: number;
  goss: GossTotals[];
}

export interface ProvisionPart {
  verdict: Verdict;
  reason?: string;
  md5: string;
  /** The rest of provision.json's summary (boots, leaves, goss), kept as written. */
  summary: Record<string, unknown>;
}

export interface BuildRecord {
  schema: number;
  definition: DefinitionPart;
  build?: BuildPart;
  export?: ExportPart;
  lint?: LintPart;
  vmtest?: VmTestPart;
  provision?: ProvisionPart;
  registry?: RegistryPart;
  /** When each part was written (ISO time), by part name. */
  written: Record<string, string>;
}

export type Part = 'definition' | 'build' | 'export' | 'lint' | 'vmtest' | 'provision' | 'registry';
/** What a part's new value makes stale: the parts written after it about older bytes. */
const DOWNSTREAM: Record<Part, Part[]> = {
  definition: ['build', 'export', 'lint', 'vmtest', 'provision', 'registry'],
  build: ['export', 'lint', 'vmtest', 'provision', 'registry'],
  export: ['lint', 'vmtest', 'provision'],
  lint: [],
  vmtest: [],
  provision: [],
  registry: [],
};

/**
 * Pure: what makes a part the same thing again: the same definition, the same docker image, the
 * same bytes. Rewriting a part with the same identity keeps what was found out about it later
 * (the export is reproducible: re-exporting an image gives the same md5, whose verdicts still hold).
 */
function identity(part: Part, value: unknown): string {
  const v = value as Record<string, unknown> | undefined;
  if (!v) return '';
  if (part === 'build') return String(v.docker_image_id);
  if (part === 'export') return String(v.md5);
  return JSON.stringify(v);
}

/** Pure: the record with one part (re)written and whatever it makes stale dropped. */
export function withPart<P extends Part>(rec: BuildRecord, part: P, value: NonNullable<BuildRecord[P]>, now = new Date()): BuildRecord {
  if (part === 'definition' && JSON.stringify(rec.definition) === JSON.stringify(value) && rec.written.definition) return rec;
  const out: BuildRecord = { ...rec, written: { ...rec.written } };
  const same = identity(part, rec[part]) === identity(part, value);
  if (!same) {
    for (const d of DOWNSTREAM[part]) {
      delete out[d];
      delete out.written[d];
    }
  }
  (out as unknown as Record<string, unknown>)[part] = value;
  out.written[part] = now.toISOString();
  return out;
}

export function emptyRecord(definition: DefinitionPart): BuildRecord {
  return { schema: RECORD_SCHEMA, definition, written: {} };
}

export function recordPath(dir: string): string {
  return join(dir, RECORD_FILE);
}

/** Pure: parse a build.json text; null when it is not a record of this schema. */
export function parseRecord(text: string): BuildRecord | null {
  try {
    const r = JSON.parse(text) as BuildRecord;
    return r && r.schema === RECORD_SCHEMA && typeof r.definition === 'object' ? r : null;
  } catch {
    return null;
  }
}

export function readRecord(dir: string): BuildRecord | null {
  const p = recordPath(dir);
  return existsSync(p) ? parseRecord(readFileSync(p, 'utf8')) : null;
}

export function writeRecord(dir: string, rec: BuildRecord): void {
  mkdirSync(dir, { recursive: true });
  const p = recordPath(dir);
  const tmp = `${p}.partial-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(rec, null, 2)}\n`);
  renameSync(tmp, p);
}

/**
 * Read the record in `dir`, rewrite one part, write it to `writeDir` (default: back). A record of
 * another image (or none) starts fresh from `definition`.
 */
export function updateRecord<P extends Part>(dir: string, definition: DefinitionPart, part: P, value: NonNullable<BuildRecord[P]>, writeDir = dir): BuildRecord {
  const old = readRecord(dir);
  const base = old && old.definition.os === definition.os && old.definition.version === definition.version ? old : emptyRecord(definition);
  const rec = withPart(part === 'definition' ? base : withPart(base, 'definition', definition), part, value);
  writeRecord(writeDir, rec);
  return rec;
}

export type ReleaseCheck = { ok: true; summary: string } | { ok: false; reason: string; fix: string };

/**
 * Pure: may the artifact with this md5 be published? Only when the record's export is of these
 * bytes and both the lint and the VM test passed on them.
 */
export function releaseCheck(rec: BuildRecord | null, md5: string, target: string): ReleaseCheck {
  const again = `run make ${target} (build, export, lint and VM test), or FORCE=1 to publish it untested`;
  if (!rec) return { ok: false, reason: 'it has no build record (build.json): nothing says it was linted and tested', fix: again };
  if (!rec.export) return { ok: false, reason: 'its build record has no export', fix: again };
  if (rec.export.md5 !== md5) return { ok: false, reason: `its img.tar.lz4 (md5 ${md5.slice(0, 8)}…) is not the one the build record exported (${rec.export.md5.slice(0, 8)}…)`, fix: again };
  const lint = rec.lint;
  if (!lint || lint.md5 !== md5) return { ok: false, reason: 'it was not linted', fix: `run make lint OS=${target}, then make vmtest OS=${target}` };
  if (lint.verdict !== 'pass') return { ok: false, reason: `its lint failed (${lint.errors} errors)`, fix: `run make lint OS=${target} to see them, fix the image, make ${target}` };
  const vm = rec.vmtest;
  if (!vm || vm.md5 !== md5) return { ok: false, reason: 'it has not passed a VM test', fix: `run make vmtest OS=${target}` };
  if (vm.verdict !== 'pass') return { ok: false, reason: `its VM test ${vm.verdict === 'skipped' ? `was skipped (${vm.reason ?? 'no reason given'})` : `failed${vm.reason ? ` (${vm.reason})` : ''}`}`, fix: `run make vmtest OS=${target}` };
  const goss = vm.goss.map((g) => `${g.passed}/${g.total}`).join(', ');
  return { ok: true, summary: `lint ${lint.errors} errors, ${lint.warnings} warnings; VM test ${goss} goss checks passed${vm.accel ? ` (${vm.accel})` : ''}` };
}

/** Set in a published record when `make release FORCE=1` published bytes without a passing lint and VM test. */
export interface ReleasedUntested {
  released_untested?: string;
}

/** Pure: the downloads table's "Tested" cell, from a published record, for the md5 beside it. */
export function testedSummary(rec: (BuildRecord & ReleasedUntested) | null, md5: string | null): string {
  if (!rec) return 'no build record';
  if (rec.released_untested) return `untested (${rec.released_untested})`;
  const c = releaseCheck(rec, md5 ?? '', rec.definition.os);
  if (!c.ok) return `untested (${c.reason})`;
  const goss = rec.vmtest!.goss.map((g) => `${g.passed}/${g.total}`).join(' + ');
  // the boots the rack checked: a machine's kexec and GRUB boots, a firewall's kexec boot with traffic through it
  const boots = ((rec.provision?.summary['boots'] as { kind?: string }[] | undefined) ?? [{ kind: 'kexec' }, { kind: 'grub' }]).map((b) => (b.kind === 'grub' ? 'GRUB' : b.kind ?? '?'));
  const traffic = rec.provision?.summary['firewall'] ? ', traffic through it' : '';
  return `lint ok, VM ${goss} goss${rec.provision?.verdict === 'pass' ? `, provisioned (${boots.join(' + ')}${traffic})` : ''}`;
}
