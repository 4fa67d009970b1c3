// The SBOM of an artifact set: img.tar.lz4.spdx.json, an SPDX 2.3 JSON document of the image's
// packages and the files they own, written by syft (pinned in scripts/tools/sbom/go.mod, built on
// first use) over the exported tree:
//
//   mount source   syft dir: over the container's layers mounted read-only, the very tree GNU tar
//                  reads, while the tar is written (the leftovers the tar leaves out are excluded)
//   docker source  syft over the written img.tar.lz4 itself (syft unpacks the archive)
//
// syft writes <file>.partial in the set's in-flight directory; the document is checked (SPDX
// fields, every package of packages.txt in it by name and version) before it is renamed to its
// name, and the set's md5 comes after it: a set without its SBOM never looks complete.
import { createHash } from 'node:crypto';
import { readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { MetalError } from '../lib/errors.ts';
import { stream } from '../lib/shell.ts';
import { onCleanup } from '../lib/cleanup.ts';
import { goToolVersion, GO_TOOLS } from '../lib/tools.ts';
import { ensureGoTool } from '../lib/setup.ts';

import { SBOM_FILE } from '../lib/artifacts.ts';

export { SBOM_FILE };

export type SbomSource = { kind: 'dir'; dir: string; exclude: readonly string[] } | { kind: 'file'; path: string };

export interface SbomSummary {
  file: string;
  sha256: string;
  spdx_version: string;
  packages: number;
  files: number;
  /** e.g. "syft v1.57.2". */
  tool: string;
  /** What syft read: "the mounted layers" or "img.tar.lz4". */
  source: string;
}

/** Environment for syft: no update check (no traffic leaves the host). */
export const SYFT_ENV: Readonly<Record<string, string>> = {
  SYFT_CHECK_FOR_APP_UPDATE: 'false',
};

/** Pure: the syft command line writing SPDX JSON of `source` to `out`. */
export function sbomArgv(syft: string, source: SbomSource, out: string, name: string, version: string): string[] {
  const from = source.kind === 'dir' ? `dir:${source.dir}` : `file:${source.path}`;
  const exclude = source.kind === 'dir' ? source.exclude.flatMap((e) => ['--exclude', `./${e}`]) : [];
  return [syft, 'scan', from, '--output', `spdx-json=${out}`, '--source-name', name, '--source-version', version, '--quiet', ...exclude];
}

export interface SpdxPackage {
  name: string;
  versionInfo?: string;
}

export interface SpdxDocument {
  spdxVersion: string;
  documentNamespace: string;
  packages: SpdxPackage[];
  files: unknown[];
}

/** Pure: the document, or an error naming the first SPDX field that is missing or wrong. */
export function parseSpdx(text: string): SpdxDocument {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`not JSON: ${(e as Error).message}`);
  }
  if (typeof doc.spdxVersion !== 'string' || !/^SPDX-2\.\d$/.test(doc.spdxVersion)) throw new Error(`spdxVersion is ${JSON.stringify(doc.spdxVersion)}, not SPDX-2.x`);
  if (doc.dataLicense !== 'CC0-1.0') throw new Error('dataLicense is not CC0-1.0');
  if (typeof doc.SPDXID !== 'string' || doc.SPDXID !== 'SPDXRef-DOCUMENT') throw new Error('SPDXID is not SPDXRef-DOCUMENT');
  if (typeof doc.documentNamespace !== 'string' || !/^[a-z]+:\/\//.test(doc.documentNamespace)) throw new Error('documentNamespace is not a URI');
  if (!Array.isArray(doc.packages) || doc.packages.length === 0) throw new Error('packages is missing or empty');
  if (!Array.isArray(doc.files)) throw new Error('files is missing');
  for (const p of doc.packages as Record<string, unknown>[]) {
    if (typeof p.name !== 'string' || typeof p.SPDXID !== 'string') throw new Error('a package has no name or SPDXID');
  }
  return doc as unknown as SpdxDocument;
}

export interface ListedPackage {
  name: string;
  version: string;
  /** The line of packages.txt. */
  line: string;
}

/**
 * Pure: the packages of packages.txt: `dpkg -l` lines "ii  name[:arch]  version  arch  ..."
 * (installed ones only), or `rpm -qa` lines "name-version-release.arch" (name and version then
 * stay joined in `line`; `name` is empty).
 */
export function listedPackages(text: string): ListedPackage[] {
  const lines = text.split('\n').map((l) => l.trimEnd()).filter((l) => l.trim() !== '');
  const dpkg = lines.filter((l) => /^ii\s/.test(l));
  if (dpkg.length > 0) {
    return dpkg.map((line) => {
      const [, name, version] = line.split(/\s+/);
      return { name: name!.replace(/:[a-z0-9]+$/, ''), version: version!, line };
    });
  }
  return lines.filter((l) => !/\s/.test(l.trim())).map((line) => ({ name: '', version: '', line: line.trim() }));
}

/** Pure: the packages of packages.txt that the SBOM does not name with their version. */
export function missingFromSbom(listed: readonly ListedPackage[], doc: SpdxDocument): ListedPackage[] {
  const have = new Set(doc.packages.map((p) => `${p.name}\u0000${p.versionInfo ?? ''}`));
  // rpm -qa prints name-version-release.arch without the epoch; syft's version carries "epoch:"
  const rpm = new Set(doc.packages.map((p) => `${p.name}-${(p.versionInfo ?? '').replace(/^\d+:/, '')}`));
  return listed.filter((p) => {
    if (p.name) return !have.has(`${p.name}\u0000${p.version}`);
    const nvr = p.line.replace(/\.[a-z0-9_]+$/, '');
    return !rpm.has(nvr);
  });
}

export function syftVersion(): string {
  return goToolVersion(GO_TOOLS.find((t) => t.name === 'syft')!);
}

/**
 * Write the SBOM of `source` into the in-flight set `dir`: syft to <file>.partial, checked against
 * packages.txt's text, renamed. Throws (and leaves no file of that name) when syft fails or the
 * document falls short.
 */
export async function writeSbom(dir: string, source: SbomSource, packagesText: string, name: string, version: string): Promise<SbomSummary> {
  const syft = await ensureGoTool('syft');
  const final = join(dir, SBOM_FILE);
  const partial = `${final}.partial`;
  try {
    const p = stream(sbomArgv(syft, source, partial, name, version), {
      env: { ...SYFT_ENV, TMPDIR: dir },
      cwd: dir, // syft reads a .syft.yaml in its working directory: there is none in the new set
      stdout: 'ignore',
      hint: 'the SBOM could not be written; re-run with METAL_DEBUG=1 to see syft\'s command line',
    });
    const stop = onCleanup('stop syft', () => p.kill()); // Ctrl-C and failed exports stop it too
    try {
      await p.done;
    } finally {
      await stop();
    }
    const text = readFileSync(partial, 'utf8');
    let doc: SpdxDocument;
    try {
      doc = parseSpdx(text);
    } catch (e) {
      throw new MetalError('tool', `syft wrote no valid SPDX document: ${(e as Error).message}`, 'report it with the syft version of scripts/tools/sbom/go.mod');
    }
    const listed = listedPackages(packagesText);
    const missing = missingFromSbom(listed, doc);
    if (missing.length > 0) {
      throw new MetalError(
        'tool',
        `the SBOM lacks ${missing.length} of the ${listed.length} packages of packages.txt (first: ${missing[0]!.line.replace(/\s+/g, ' ').slice(0, 100)})`,
        'the image\'s package database and its package list disagree; rebuild it with make <os>',
      );
    }
    renameSync(partial, final);
    return {
      file: SBOM_FILE,
      sha256: createHash('sha256').update(text).digest('hex'),
      spdx_version: doc.spdxVersion,
      packages: doc.packages.length,
      files: doc.files.length,
      tool: `syft ${syftVersion()}`,
      source: source.kind === 'dir' ? 'the mounted layers' : 'img.tar.lz4',
    };
  } finally {
    rmSync(partial, { force: true });
  }
}
