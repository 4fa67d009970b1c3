// make setup: the rack's hammer (scripts/rack/hammer, its own go.mod pinning the metal-hammer's
// image libraries) built statically into .state/bin/rack-hammer; rebuilt when its sources change.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { config, ROOT } from '../lib/config.ts';
import { PreconditionError } from '../lib/errors.ts';
import { run, which } from '../lib/shell.ts';

export const HAMMER_SRC = join(ROOT, 'scripts', 'rack', 'hammer');

/** Pure-ish: a hash of the hammer's sources (go.mod, go.sum, *.go). */
export function hammerSourceHash(dir = HAMMER_SRC): string {
  const h = createHash('sha256');
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.go') || n === 'go.mod' || n === 'go.sum').sort()) {
    h.update(f).update('\0').update(readFileSync(join(dir, f))).update('\0');
  }
  return h.digest('hex').slice(0, 16);
}

export async function buildRackHammer(): Promise<string | null> {
  const bin = join(config().binDir, 'rack-hammer');
  const stampFile = `${bin}.stamp`;
  const stamp = hammerSourceHash();
  if (existsSync(bin) && existsSync(stampFile) && readFileSync(stampFile, 'utf8').trim() === stamp) return null;
  if (!(await which('go'))) throw new PreconditionError('the Go toolchain is not installed (needed to build the rack\'s hammer)', 'install Go >= 1.26 and re-run make setup');
  mkdirSync(config().binDir, { recursive: true });
  const t0 = performance.now();
  await run(['go', 'build', '-trimpath', '-ldflags', '-s -w', '-o', `${bin}.tmp`, '.'], {
    cwd: HAMMER_SRC,
    env: { CGO_ENABLED: '0', GOFLAGS: '-mod=readonly' },
    write: true,
    hint: 'check the Go module proxy is reachable, then: cd scripts/rack/hammer && go build .',
  });
  renameSync(`${bin}.tmp`, bin);
  writeFileSync(stampFile, `${stamp}\n`);
  return `built rack-hammer (${((performance.now() - t0) / 1000).toFixed(0)}s) -> ${bin}`;
}
