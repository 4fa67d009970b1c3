// metal-stack's own data (../shared/reference, MIT): the consumers' fixtures and expected outputs.
// Tests read them in place and never copy them into the project. Where to find them, first hit wins:
//   METAL_REFERENCE_DIR, <repo>/../shared/reference, and for a clone (CI's fresh checkout) the same
//   path beside the repository the clone came from (git remote origin).
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';
import { ROOT } from '../../scripts/lib/config.ts';

export function referenceCandidates(): string[] {
  const out: string[] = [];
  if (process.env.METAL_REFERENCE_DIR) out.push(resolve(process.env.METAL_REFERENCE_DIR));
  out.push(join(dirname(ROOT), 'shared', 'reference'));
  try {
    const origin = execFileSync('git', ['-C', ROOT, 'config', '--get', 'remote.origin.url'], { encoding: 'utf8' }).trim();
    const path = origin.replace(/^file:\/\//, '');
    if (path && isAbsolute(path)) out.push(join(dirname(path.replace(/\/\.git\/?$/, '')), 'shared', 'reference'));
  } catch {
    // not a clone
  }
  return out;
}

let cached: string | undefined;
/** The reference dir; throws (naming every place looked at) when it is nowhere, so no test passes silently. */
export function referenceDir(): string {
  if (cached) return cached;
  const found = referenceCandidates().find((d) => existsSync(join(d, 'README.md')));
  if (!found) throw new Error(`metal-stack reference data not found (looked in: ${referenceCandidates().join(', ')}); set METAL_REFERENCE_DIR`);
  cached = found;
  return found;
}

export function referenceFile(...parts: string[]): string {
  return join(referenceDir(), ...parts);
}
