// The contract lint over a real artifact: one pass over img.tar.lz4 that hashes the compressed
// bytes and feeds them to `lz4 -dc`, whose output goes through TarReader into the ContractChecker.
// Nothing is unpacked to disk and no file body is kept except the few the rules read.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { IMAGE_FILE } from '../lib/artifacts.ts';
import { PreconditionError, ToolError } from '../lib/errors.ts';
import { imageName, type ImageDef } from '../lib/image-def.ts';
import { formatBytes } from '../lib/log.ts';
import { stream, which } from '../lib/shell.ts';
import { checkMd5File, ContractChecker, RULES, type DirSize, type Finding } from './rules.ts';
import { TarFormatError, TarReader } from './tar-stream.ts';


export interface LintReport {
  /** Image id, e.g. debian-12. */
  image: string;
  /** The artifact linted. */
  file: string;
  findings: Finding[];
  errors: number;
  warnings: number;
  tarBytes: number;
  compressedBytes: number;
  entries: number;
  seconds: number;
  /** Largest directories, printed when the image is over its size budget. */
  topDirs: DirSize[];
  /** md5 of the compressed bytes linted (hashed in the same read). */
  md5: string;
}

/** Lint `<dir>/img.tar.lz4` (and its .md5) against the definition's contract. */
export async function lintArtifact(def: ImageDef, dir: string): Promise<LintReport> {
  const t0 = performance.now();
  const file = join(dir, IMAGE_FILE);
  const shown = relative(process.cwd(), file) || file;
  const rerun = `make export OS=${def.os}${def.variant ? ` VARIANT=${def.variant}` : ''}`;
  if (!existsSync(file)) throw new PreconditionError(`no artifact to lint: ${shown} does not exist`, `run ${rerun} (or make ${def.os})`);
  if (!(await which('lz4'))) throw new PreconditionError('lz4 is not installed (the lint decompresses with it)', 'run make setup');

  const checker = new ContractChecker(def.contract);
  const reader = new TarReader({ onEntry: (e) => checker.add(e), capture: checker.capture });
  const hash = createHash('md5');
  let tarBytes = 0;
  let broken: Finding | null = null;

  const lz4 = stream(['lz4', '-dc'], { stdin: 'pipe', hint: `the artifact is corrupt; rebuild it with ${rerun}` });
  const stop = (f: Finding): void => {
    broken ??= f;
    lz4.stdout.removeAllListeners('data');
    lz4.stdout.resume();
    lz4.kill(); // the rest cannot be read as a tar anyway
  };
  lz4.stdout.on('data', (chunk: Buffer) => {
    tarBytes += chunk.length;
    try {
      reader.push(chunk);
    } catch (e) {
      if (!(e instanceof TarFormatError)) throw e;
      stop({ severity: 'error', rule: 'tar', path: IMAGE_FILE, message: `not a tar the metal-hammer can read: ${e.message}` });
    }
  });
  // Tee: every compressed byte goes to the hash and to lz4, in the same single read of the file.
  const tee = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
  });
  const feeding = pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), tee, lz4.stdin!).catch((e: NodeJS.ErrnoException) => {
    // lz4 stopping early (a corrupt frame) closes its stdin; the exit status below tells why.
    if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_PREMATURE_CLOSE') throw e;
  });
  const finished = new Promise<void>((resolve) => lz4.stdout.once('end', resolve));
  try {
    await lz4.done;
  } catch (e) {
    if (!(e instanceof ToolError)) throw e;
    stop({ severity: 'error', rule: 'tar', path: IMAGE_FILE, message: `not a valid LZ4 frame: lz4 -dc ${e.message.replace(/^.*? (exited|was killed)/, '$1')}${e.stderrTail ? ` (${e.stderrTail.split('\n').pop()})` : ''}` });
  }
  await feeding;
  await finished;
  if (!broken) {
    try {
      reader.end();
    } catch (e) {
      if (!(e instanceof TarFormatError)) throw e;
      stop({ severity: 'error', rule: 'tar', path: IMAGE_FILE, message: `not a tar the metal-hammer can read: ${e.message}` });
    }
  }

  const md5Path = `${file}.md5`;
  const md5Text = existsSync(md5Path) ? readFileSync(md5Path, 'utf8') : null;
  const entryFindings = checker.finish(tarBytes, broken === null);
  const md5 = hash.digest('hex');
  const findings = [...(broken ? [broken] : []), ...checkMd5File(md5Text, md5, IMAGE_FILE), ...entryFindings];
  return {
    image: imageName(def),
    file: shown,
    findings,
    errors: findings.filter((f) => f.severity === 'error').length,
    warnings: findings.filter((f) => f.severity === 'warning').length,
    tarBytes,
    compressedBytes: statSync(file).size,
    entries: checker.entries,
    seconds: (performance.now() - t0) / 1000,
    topDirs: checker.topDirs,
    md5,
  };
}

/**
 * Pure: the report for people. A one-line verdict, then errors and warnings grouped by rule; a rule
 * with more than `perRule` findings shows that many and a count of the rest (unless `all`).
 */
export function formatReport(r: LintReport, opts: { perRule?: number; all?: boolean } = {}): string {
  const perRule = opts.all ? Infinity : opts.perRule ?? 5;
  const n = (k: number, word: string): string => `${k} ${word}${k === 1 ? '' : 's'}`;
  const lines = [
    `lint ${r.image}: ${r.errors > 0 ? 'FAIL' : 'PASS'} — ${n(r.errors, 'error')}, ${n(r.warnings, 'warning')} ` +
      `(${formatBytes(r.tarBytes)} tar, ${formatBytes(r.compressedBytes)} lz4, ${r.entries} entries, ${r.seconds.toFixed(1)}s)`,
  ];
  for (const severity of ['error', 'warning'] as const) {
    const mine = r.findings.filter((f) => f.severity === severity);
    if (mine.length === 0) continue;
    lines.push(`${severity}s:`);
    const rules = [...new Set(mine.map((f) => f.rule))];
    for (const rule of rules) {
      const group = mine.filter((f) => f.rule === rule);
      const indent = group.length > 1 ? '    ' : '  ';
      if (group.length > 1) lines.push(`  ${rule} (${group.length}): ${RULES[rule]}`);
      for (const f of group.slice(0, perRule)) lines.push(`${indent}${f.path}: ${f.message}`);
      if (group.length > perRule) lines.push(`${indent}... and ${group.length - perRule} more (--all lists them)`);
      if (rule === 'size' && severity === 'error' && r.topDirs.length > 0) {
        lines.push(`${indent}largest directories (files summed 3 levels deep):`);
        for (const d of r.topDirs) lines.push(`${indent}  ${formatBytes(d.bytes).padStart(10)}  ${d.dir}`);
      }
    }
  }
  return lines.join('\n');
}
