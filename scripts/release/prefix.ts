// Where a CI run publishes (docs/contract.md §1). Pure: the environment and the clock go in, a store
// prefix comes out. Every prefix this module returns is one of exactly three shapes, built from
// [0-9a-z-] only, so no tag or branch name can place a key outside metal-os/:
//   metal-os/<YYYYMMDD>                 release (a tag)
//   metal-os/stable                     the default branch
//   metal-os/pull_requests/<slug>       any other branch, merge request or pull request
import type { Env } from '../lib/config.ts';
import { UsageError } from '../lib/errors.ts';

export const STORE_ROOT = 'metal-os';

export type Channel = 'release' | 'stable' | 'pull_request';

export interface PublishTarget {
  channel: Channel;
  /** e.g. metal-os/20230710, no trailing slash. */
  prefix: string;
  /** YYYYMMDD for releases (the patch version of the image ids), null otherwise. */
  date: string | null;
  /** Why this target was chosen, for the log, e.g. "GitLab tag 20230710". */
  reason: string;
}

const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * GitLab's CI_COMMIT_REF_SLUG rule (Gitlab::Utils.slugify): lower-case, every character outside
 * 0-9a-z becomes "-", the first 63 characters, leading and trailing "-" removed.
 */
export function gitlabSlug(ref: string): string {
  return Array.from(ref.toLowerCase(), (c) => (/[a-z0-9]/.test(c) ? c : '-'))
    .slice(0, 63)
    .join('')
    .replace(/^-+|-+$/g, '');
}

/** A calendar date written YYYYMMDD, e.g. 20230710 (20230231 is not one). */
export function isDate(s: string): boolean {
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec(s);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const t = new Date(Date.UTC(y, mo - 1, d));
  return t.getUTCFullYear() === y && t.getUTCMonth() === mo - 1 && t.getUTCDate() === d;
}

/** The UTC date of `now` as YYYYMMDD. */
export function utcDate(now: Date): string {
  return now.toISOString().slice(0, 10).replace(/-/g, '');
}

function release(date: string, reason: string): PublishTarget {
  return { channel: 'release', prefix: `${STORE_ROOT}/${date}`, date, reason };
}
function stable(reason: string): PublishTarget {
  return { channel: 'stable', prefix: `${STORE_ROOT}/stable`, date: null, reason };
}
function pullRequest(slug: string, reason: string): PublishTarget {
  if (!SLUG.test(slug)) throw new UsageError(`"${slug}" is not a ref slug (1-63 of [0-9a-z-], no leading or trailing -)`, 'set PUBLISH_PREFIX=metal-os/pull_requests/<slug> in .env');
  return { channel: 'pull_request', prefix: `${STORE_ROOT}/pull_requests/${slug}`, date: null, reason };
}

/**
 * A tag releases under the date it names, and must name one: a calendar date YYYYMMDD. Release
 * prefixes are immutable, so a tag like v1.2.3 or 20230231 is an error, not a release under some
 * other date.
 */
function releaseFromTag(provider: string, tag: string, variable: string): PublishTarget {
  if (isDate(tag)) return release(tag, `${provider} tag ${tag}`);
  const what = tag === '' ? `${variable} names an empty tag` : /^\d{8}$/.test(tag) ? `tag "${tag}" is not a calendar date` : `tag "${tag}" is not a release date YYYYMMDD`;
  throw new UsageError(`${provider} ${what}: releases are published as ${STORE_ROOT}/<YYYYMMDD>/`, 'tag the release with its date (e.g. git tag 20230710), or set PUBLISH_PREFIX to publish elsewhere');
}

function branchSlug(what: string, branch: string, given?: string): PublishTarget {
  if (given) return pullRequest(given, `${what} ${branch} (slug ${given} from CI_COMMIT_REF_SLUG)`);
  const slug = gitlabSlug(branch);
  if (!slug) throw new UsageError(`branch "${branch}" has no letters or digits to make a slug from`, 'set PUBLISH_PREFIX=metal-os/pull_requests/<slug> in .env');
  return pullRequest(slug, `${what} ${branch} (slug ${slug})`);
}

/** Without an explicit default branch, master and main count as the default branch. */
function isDefaultBranch(branch: string, defaultBranch: string | undefined): boolean {
  return defaultBranch ? branch === defaultBranch : branch === 'master' || branch === 'main';
}

/**
 * Parse an explicit prefix: "stable", "YYYYMMDD" or "pull_requests/<slug>", each optionally written
 * under "metal-os/". Used for PUBLISH_PREFIX and `make downloads PREFIX=...`.
 */
export function parsePrefix(text: string, source = 'PUBLISH_PREFIX'): PublishTarget {
  const rest = text.replace(/\/$/, '').replace(new RegExp(`^${STORE_ROOT}/`), '');
  const reason = `${source}=${text}`;
  if (rest === 'stable') return stable(reason);
  if (isDate(rest)) return release(rest, reason);
  const pr = /^pull_requests\/(.+)$/.exec(rest);
  if (pr && SLUG.test(pr[1]!)) return pullRequest(pr[1]!, reason);
  const suggestion = pr ? gitlabSlug(pr[1]!) : '';
  throw new UsageError(
    `${source}="${text}" is not ${STORE_ROOT}/stable, ${STORE_ROOT}/<YYYYMMDD> or ${STORE_ROOT}/pull_requests/<slug>`,
    suggestion ? `set ${source}=${STORE_ROOT}/pull_requests/${suggestion}` : `e.g. ${source}=${STORE_ROOT}/pull_requests/my-branch`,
  );
}

/**
 * Where this run publishes: PUBLISH_PREFIX if set (local use), else what the CI provider says
 * (GitLab CI_* variables, GitHub GITHUB_* variables). Neither → UsageError.
 *
 * GitLab: CI_COMMIT_TAG → release (the tag must be a date YYYYMMDD); CI_COMMIT_REF_NAME equal to CI_DEFAULT_BRANCH → stable; any
 * other ref or a merge request → pull_requests/<CI_COMMIT_REF_SLUG, or the slug computed from
 * CI_MERGE_REQUEST_SOURCE_BRANCH_NAME / CI_COMMIT_REF_NAME>.
 * GitHub: GITHUB_REF=refs/tags/<tag> → release; a pull_request(_target) event → pull_requests/
 * <slug of GITHUB_HEAD_REF>; refs/heads/<branch> → stable when it is GITHUB_DEFAULT_BRANCH (set it
 * from github.event.repository.default_branch), or master/main when that is not set; else
 * pull_requests/<slug of branch>.
 */
export function resolvePublishTarget(env: Env): PublishTarget {
  if (env.PUBLISH_PREFIX) return parsePrefix(env.PUBLISH_PREFIX);

  if (env.CI_COMMIT_TAG) return releaseFromTag('GitLab', env.CI_COMMIT_TAG, 'CI_COMMIT_TAG');
  const mrBranch = env.CI_MERGE_REQUEST_SOURCE_BRANCH_NAME;
  if (mrBranch) return branchSlug('GitLab merge request from', mrBranch, env.CI_COMMIT_REF_SLUG);
  if (env.CI_COMMIT_REF_NAME) {
    const branch = env.CI_COMMIT_REF_NAME;
    if (isDefaultBranch(branch, env.CI_DEFAULT_BRANCH)) return stable(`GitLab default branch ${branch}`);
    return branchSlug('GitLab branch', branch, env.CI_COMMIT_REF_SLUG);
  }

  if (env.GITHUB_ACTIONS === 'true' || env.GITHUB_REF) {
    const ref = env.GITHUB_REF ?? '';
    if (ref.startsWith('refs/tags/')) return releaseFromTag('GitHub', ref.slice('refs/tags/'.length), `GITHUB_REF=${ref}`);
    const event = env.GITHUB_EVENT_NAME ?? '';
    if (event === 'pull_request' || event === 'pull_request_target' || ref.startsWith('refs/pull/')) {
      if (!env.GITHUB_HEAD_REF) throw new UsageError(`GitHub ${event || ref} without GITHUB_HEAD_REF: cannot name the pull request`, 'set PUBLISH_PREFIX=metal-os/pull_requests/<slug>');
      return branchSlug('GitHub pull request from', env.GITHUB_HEAD_REF);
    }
    if (ref.startsWith('refs/heads/')) {
      const branch = ref.slice('refs/heads/'.length);
      if (isDefaultBranch(branch, env.GITHUB_DEFAULT_BRANCH)) return stable(`GitHub default branch ${branch}`);
      return branchSlug('GitHub branch', branch);
    }
    throw new UsageError(`GITHUB_REF="${ref}" is neither a tag nor a branch`, 'set PUBLISH_PREFIX=metal-os/pull_requests/<slug>');
  }

  throw new UsageError(
    'cannot tell where to publish: no CI tag or branch in the environment and PUBLISH_PREFIX is not set',
    'set PUBLISH_PREFIX=metal-os/pull_requests/<name> (or metal-os/stable, metal-os/<YYYYMMDD>) in .env',
  );
}
