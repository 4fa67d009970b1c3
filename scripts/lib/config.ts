// Reads the environment once (STYLE.md §8): `.env` (if present) overlaid by process.env, restricted
// to an allow-list of documented keys (see .env.example), frozen and typed.
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { UsageError } from './errors.ts';

export const ROOT = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');

/** Every key the project reads. Anything else in the environment is ignored. */
export const KEYS = [
  // pipeline
  'DRY_RUN', 'METAL_DEBUG', 'SKIP_VM_TEST', 'METAL_ACCEL', 'LZ4_LEVEL', 'EXPORT_WORKERS', 'EXPORT_COMPRESSOR', 'EXPORT_SOURCE',
  'DEBIAN_MIRROR', 'METAL_STATE_DIR', 'METAL_IMAGES_DIR', 'BASE', 'METAL_OVMF_DIR',
  // make bench
  'BENCH_RUNS', 'BENCH_CANDIDATES',
  // store
  'S3_ENDPOINT', 'S3_REGION', 'S3_BUCKET', 'S3_ACCESS_KEY_ID', 'S3_SECRET_ACCESS_KEY',
  'S3_FORCE_PATH_STYLE', 'PUBLISH_PREFIX', 'PUBLIC_BASE_URL', 'FORCE', 'DATE',
  // CI providers, read by the publish-prefix logic only
  'CI', 'CI_COMMIT_TAG', 'CI_COMMIT_REF_NAME', 'CI_COMMIT_REF_SLUG', 'CI_DEFAULT_BRANCH',
  'CI_MERGE_REQUEST_SOURCE_BRANCH_NAME',
  'GITHUB_ACTIONS', 'GITHUB_REF', 'GITHUB_REF_NAME', 'GITHUB_HEAD_REF', 'GITHUB_EVENT_NAME',
  'GITHUB_DEFAULT_BRANCH',
] as const;
export type Key = (typeof KEYS)[number];
export type Env = Readonly<Partial<Record<Key, string>>>;

/** Pure: merge a dotenv text and an environment into the allowed keys (environment wins). */
export function resolveEnv(env: NodeJS.ProcessEnv, dotenvText = ''): Env {
  const fromFile = dotenvText ? parseDotenv(dotenvText) : {};
  const out: Partial<Record<Key, string>> = {};
  for (const k of KEYS) {
    const v = env[k] ?? fromFile[k];
    if (v !== undefined && v !== '') out[k] = v;
  }
  return Object.freeze(out);
}

export function flag(env: Env, key: Key): boolean {
  const v = env[key];
  if (v === undefined) return false;
  if (/^(1|true|yes|on)$/i.test(v)) return true;
  if (/^(0|false|no|off)$/i.test(v)) return false;
  throw new UsageError(`${key}=${v} is not a boolean`, `set ${key}=1 or ${key}=0`);
}

export interface Config {
  readonly env: Env;
  readonly root: string;
  readonly stateDir: string;
  readonly imagesDir: string;
  readonly binDir: string;
  readonly dryRun: boolean;
}

let cached: Config | undefined;
export function config(): Config {
  if (cached) return cached;
  const envFile = join(ROOT, '.env');
  const env = resolveEnv(process.env, existsSync(envFile) ? readFileSync(envFile, 'utf8') : '');
  const stateDir = env.METAL_STATE_DIR ?? join(ROOT, '.state');
  cached = Object.freeze({
    env,
    root: ROOT,
    stateDir,
    imagesDir: env.METAL_IMAGES_DIR ?? join(ROOT, 'images'),
    binDir: join(stateDir, 'bin'),
    dryRun: flag(env, 'DRY_RUN'),
  });
  return cached;
}
