// An image's artifact set, images/<os>/<version>/: img.tar.lz4, img.tar.lz4.md5, packages.txt, the
// SBOM img.tar.lz4.spdx.json and
// the build record build.json, plus the VM test's results. A new set is written into a hidden
// sibling directory and swapped in only when it is complete, so the previous complete set stays
// until then: an interrupted export never leaves a set that looks complete and is not, nor removes
// the one that was there.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { onCleanup } from './cleanup.ts';
import { config } from './config.ts';
import type { ImageDef } from './image-def.ts';
import { isAbandoned, self, type Owner } from './ownership.ts';

export const IMAGE_FILE = 'img.tar.lz4';
export const MD5_FILE = 'img.tar.lz4.md5';
export const PACKAGES_FILE = 'packages.txt';
/** The SPDX SBOM of the image's packages and files (scripts/export/sbom.ts). */
export const SBOM_FILE = 'img.tar.lz4.spdx.json';
/** The files of a complete set, the md5 last: only with it is the set complete. */
export const SET_FILES = [IMAGE_FILE, PACKAGES_FILE, SBOM_FILE, MD5_FILE] as const;

export function artifactDir(def: Pick<ImageDef, 'os' | 'version'>): string {
  return join(config().imagesDir, def.os, def.version);
}

const OWNER_FILE = '.owner';

/** Pure: is a directory name one of our hidden in-flight dirs for `version`? */
export function inFlightName(name: string, version: string): 'partial' | 'old' | null {
  if (name.startsWith(`.${version}.partial-`)) return 'partial';
  if (name.startsWith(`.${version}.old-`)) return 'old';
  return null;
}

export interface PendingSet {
  /** Where the new set is written. */
  dir: string;
  /** Swap it in for the current set (if any), which goes. */
  commit(): Promise<void>;
  discard(): Promise<void>;
}

/** Remove in-flight dirs of `version` whose writer is provably dead (killed with SIGKILL). */
export function sweepInFlight(finalDir: string): string[] {
  const parent = dirname(finalDir);
  if (!existsSync(parent)) return [];
  const removed: string[] = [];
  for (const name of readdirSync(parent)) {
    if (!inFlightName(name, basename(finalDir))) continue;
    const d = join(parent, name);
    let owner: Partial<Owner> | null = null;
    try {
      owner = JSON.parse(readFileSync(join(d, OWNER_FILE), 'utf8')) as Partial<Owner>;
    } catch {
      owner = null;
    }
    if (owner && isAbandoned(owner)) {
      rmSync(d, { recursive: true, force: true });
      removed.push(d);
    }
  }
  return removed;
}

/** Start a new set for `finalDir`. */
export function beginArtifactSet(finalDir: string): PendingSet {
  const parent = dirname(finalDir);
  const version = basename(finalDir);
  mkdirSync(parent, { recursive: true });
  const tag = `${process.pid}-${Date.now().toString(36)}`;
  const dir = join(parent, `.${version}.partial-${tag}`);
  mkdirSync(dir);
  writeFileSync(join(dir, OWNER_FILE), `${JSON.stringify(self())}\n`);
  const drop = onCleanup(`remove ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
  return {
    dir,
    async commit() {
      rmSync(join(dir, OWNER_FILE), { force: true });
      const old = join(parent, `.${version}.old-${tag}`);
      if (existsSync(finalDir)) renameSync(finalDir, old);
      renameSync(dir, finalDir);
      rmSync(old, { recursive: true, force: true });
      await drop(); // nothing left to remove: the dir is the set now
    },
    discard: drop,
  };
}
