// Reads the environment once into one frozen, typed config, restricted to an
// allow-list of documented keys (see .env.example). One precedence rule for every key:
//
//   make's command line  >  the process environment  >  .env  >  the key's default
//
// and an empty value counts as not set wherever it comes from (so a wrapper that exports KEY=
// for a key nobody set, as CI templates and make's `export` do, never hides the .env value).
// make's command line reaches the CLI as data: the Makefile hands each variable given there over
// unexpanded as METAL_MAKE_<name> (see the Makefile), and this module checks the names.
import { readFileSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { UsageError } from './errors.ts';

export const ROOT = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');

/** Every key the project reads. Anything else in the environment is ignored; in .env it is an error. */
export const KEYS = [
  // pipeline
  'DRY_RUN', 'METAL_DEBUG', 'SKIP_VM_TEST', 'METAL_ACCEL', 'LZ4_LEVEL', 'EXPORT_WORKERS', 'EXPORT_SOURCE',
  'DEBIAN_MIRROR', 'METAL_STATE_DIR', 'METAL_IMAGES_DIR', 'VARIANT', 'METAL_OVMF_DIR', 'BUILDX_BUILDER',
  // make bench
  'BENCH_RUNS', 'BENCH_CANDIDATES',
  // store
  'S3_ENDPOINT', 'S3_REGION', 'S3_BUCKET', 'S3_ACCESS_KEY_ID', 'S3_SECRET_ACCESS_KEY',
  'S3_FORCE_PATH_STYLE', 'S3_STALL_TIMEOUT', 'PUBLISH_PREFIX', 'PUBLIC_BASE_URL', 'METAL_FORCE', 'DATE',
  // OCI registry (make release pushes the docker images there)
  'REGISTRY', 'REGISTRY_USERNAME', 'REGISTRY_PASSWORD',
  // CI providers, read by the publish-prefix logic only
  'CI', 'CI_COMMIT_TAG', 'CI_COMMIT_REF_NAME', 'CI_COMMIT_REF_SLUG', 'CI_DEFAULT_BRANCH',
  'CI_MERGE_REQUEST_SOURCE_BRANCH_NAME',
  'GITHUB_ACTIONS', 'GITHUB_REF', 'GITHUB_REF_NAME', 'GITHUB_HEAD_REF', 'GITHUB_EVENT_NAME',
  'GITHUB_DEFAULT_BRANCH',
] as const;
export type Key = (typeof KEYS)[number];
export type Env = Readonly<Partial<Record<Key, string>>>;

/** Which dotenv file to read (default: .env in the checkout). Environment only, never from the file itself. */
export const ENV_FILE_KEY = 'METAL_ENV_FILE';
/** How the Makefile names a variable given on make's command line in the CLI's environment. */
export const MAKE_PREFIX = 'METAL_MAKE_';
/**
 * make variables that set a key of another name. FORCE is too generic a name to read from any
 * environment (any CI job may carry it), so only `make ... FORCE=1` means METAL_FORCE=1.
 */
export const MAKE_ALIASES: Readonly<Record<string, Key>> = { FORCE: 'METAL_FORCE' };
/** make variables that are a command's arguments rather than configuration. */
export const MAKE_ARGS = ['OS', 'PREFIX'] as const;
export type MakeArgs = Readonly<Partial<Record<(typeof MAKE_ARGS)[number], string>>>;
/** Keys that were renamed: a .env that still sets the old name is told the new one. */
const RENAMED: Readonly<Record<string, Key>> = { FORCE: 'METAL_FORCE', BASE: 'VARIANT' };

/**
 * Pure: a dotenv text as KEY -> value, strictly. One `KEY=value` per line (`export KEY=value`
 * too), `#` comment lines, blank lines. Values are taken as written, or quoted: '...' literally,
 * "..." with \\ \" \n \t escapes. Every key must be one of KEYS. Errors name `file:line` and never
 * show the value (it may be a secret):
 * - an unquoted value holding `#` (dotenv readers cut it there, silently truncating a secret);
 * - an unknown key (a typo would otherwise be ignored: DRY_RUM=1 would publish for real);
 * - a key set twice, an unterminated quote, a line that is not KEY=value.
 */
export function parseDotenv(text: string, file = '.env'): Record<string, string> {
  const out: Record<string, string> = {};
  const seen = new Map<string, number>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    const line = lines[i]!.replace(/\r$/, '');
    if (/^\s*(#.*)?$/.test(line)) continue;
    const at = `${file}:${n}`;
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$/.exec(line);
    if (!m) throw new UsageError(`${at}: not a KEY=value line`, `edit ${file}: one KEY=value per line, # starts a comment line`);
    const key = m[1]!;
    const raw = m[2]!.trim();
    if (key === ENV_FILE_KEY) throw new UsageError(`${at}: ${ENV_FILE_KEY} names the file to read and cannot be set inside it`, `remove line ${n} from ${file}; set ${ENV_FILE_KEY} in the environment`);
    if (!(KEYS as readonly string[]).includes(key)) {
      const renamed = RENAMED[key];
      const near = renamed ?? closestKey(key);
      throw new UsageError(
        `${at}: unknown key ${key}${renamed ? ` (it is called ${renamed} now)` : ''}`,
        near ? `rename it to ${near}, or remove line ${n} (every key is listed in .env.example)` : `remove line ${n} (every key is listed in .env.example)`,
      );
    }
    const first = seen.get(key);
    if (first !== undefined) throw new UsageError(`${at}: ${key} is set twice (also on line ${first})`, `keep one of the two lines in ${file}`);
    seen.set(key, n);
    out[key] = dotenvValue(raw, key, at, file);
  }
  return out;
}

function dotenvValue(raw: string, key: string, at: string, file: string): string {
  const q = raw[0];
  if (q === "'" || q === '"') {
    let value = '';
    let i = 1;
    for (; i < raw.length && raw[i] !== q; i++) {
      if (q === '"' && raw[i] === '\\' && i + 1 < raw.length) {
        const e = raw[++i]!;
        value += e === 'n' ? '\n' : e === 't' ? '\t' : e;
      } else value += raw[i];
    }
    if (i >= raw.length) throw new UsageError(`${at}: the value of ${key} opens a ${q} quote that the line does not close`, `close the quote in ${file} (values span one line)`);
    const rest = raw.slice(i + 1);
    if (!/^\s*(#.*)?$/.test(rest)) throw new UsageError(`${at}: text after the quoted value of ${key}`, `put the whole value inside the quotes in ${file}`);
    return value;
  }
  if (raw.includes('#')) {
    throw new UsageError(`${at}: the value of ${key} contains "#", which .env readers take for the start of a comment`, `quote the value in ${file}: ${key}='...' (or move the comment to a line of its own)`);
  }
  return raw;
}

/** The key a typo most likely meant (edit distance 1 or 2), if any. */
function closestKey(key: string): string | undefined {
  let best: { k: string; d: number } | undefined;
  for (const k of KEYS) {
    const d = editDistance(key.toUpperCase(), k);
    if (d <= 2 && (!best || d < best.d)) best = { k, d };
  }
  return best?.k;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/** Pure: the variables given on make's command line, by their make name (METAL_MAKE_<name>). */
function makeVariables(env: NodeJS.ProcessEnv): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, v] of Object.entries(env)) {
    if (!name.startsWith(MAKE_PREFIX) || v === undefined) continue;
    const makeName = name.slice(MAKE_PREFIX.length);
    const known = (KEYS as readonly string[]).includes(makeName) || makeName in MAKE_ALIASES || (MAKE_ARGS as readonly string[]).includes(makeName);
    if (!known) {
      throw new UsageError(
        `make variable ${makeName} is not known`,
        `drop ${makeName}=... from the make command line (known: ${[...MAKE_ARGS, ...Object.keys(MAKE_ALIASES)].join(', ')} and the keys in .env.example)`,
      );
    }
    out.set(makeName, v);
  }
  return out;
}

/**
 * Pure: the configuration from an environment and a dotenv text, by the one precedence rule:
 * make's command line (METAL_MAKE_<key>, or an alias: METAL_MAKE_FORCE sets METAL_FORCE), then the
 * environment, then the file; the first non-empty value wins.
 */
export function resolveEnv(env: NodeJS.ProcessEnv, dotenvText = '', file = '.env'): Env {
  const fromFile = dotenvText ? parseDotenv(dotenvText, file) : {};
  const fromMake = makeVariables(env);
  const aliased = new Map<Key, string>();
  for (const [alias, key] of Object.entries(MAKE_ALIASES)) {
    const v = fromMake.get(alias);
    if (v) aliased.set(key, v);
  }
  const out: Partial<Record<Key, string>> = {};
  for (const k of KEYS) {
    const v = [fromMake.get(k), aliased.get(k), env[k], fromFile[k]].find((x) => x !== undefined && x !== '');
    if (v !== undefined) out[k] = v;
  }
  return Object.freeze(out);
}

/** Pure: what make's command line gives as arguments (OS=..., PREFIX=...); empty ones are left out. */
export function makeArgs(env: NodeJS.ProcessEnv): MakeArgs {
  const vars = makeVariables(env);
  const out: Partial<Record<(typeof MAKE_ARGS)[number], string>> = {};
  for (const a of MAKE_ARGS) {
    const v = vars.get(a);
    if (v) out[a] = v;
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
  /** Arguments given as make variables: OS, PREFIX. */
  readonly makeArgs: MakeArgs;
  readonly root: string;
  /** The dotenv file read, or null. */
  readonly envFile: string | null;
  readonly stateDir: string;
  readonly imagesDir: string;
  readonly binDir: string;
  readonly dryRun: boolean;
  readonly debug: boolean;
}

let cached: Config | undefined;
export function config(): Config {
  if (cached) return cached;
  const given = process.env[ENV_FILE_KEY];
  const envFile = given ? given : join(ROOT, '.env');
  const present = existsSync(envFile);
  if (given && !present) throw new UsageError(`${ENV_FILE_KEY}=${given} does not exist`, `point ${ENV_FILE_KEY} at a dotenv file (or unset it to read .env)`);
  const shown = relative(process.cwd(), envFile) || envFile;
  const env = resolveEnv(process.env, present ? readFileSync(envFile, 'utf8') : '', shown.startsWith('..') ? envFile : shown);
  const stateDir = env.METAL_STATE_DIR ?? join(ROOT, '.state');
  cached = Object.freeze({
    env,
    makeArgs: makeArgs(process.env),
    root: ROOT,
    envFile: present ? envFile : null,
    stateDir,
    imagesDir: env.METAL_IMAGES_DIR ?? join(ROOT, 'images'),
    binDir: join(stateDir, 'bin'),
    dryRun: flag(env, 'DRY_RUN'),
    debug: flag(env, 'METAL_DEBUG'),
  });
  return cached;
}
