import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { throwsUsage as usage } from '../helpers/assert.ts';
import { gitlabSlug, isDate, parsePrefix, resolvePublishTarget, utcDate } from '../../scripts/release/prefix.ts';
import { UsageError } from '../../scripts/lib/errors.ts';
import type { Env } from '../../scripts/lib/config.ts';

const where = (env: Env): string => resolvePublishTarget(env).prefix;


test('GitLab slug rule', () => {
  assert.is(gitlabSlug('master'), 'master');
  assert.is(gitlabSlug('Feature/Foo_Bar'), 'feature-foo-bar');
  assert.is(gitlabSlug('--x--'), 'x');
  assert.is(gitlabSlug('a..b'), 'a--b');
  assert.is(gitlabSlug('../../etc'), 'etc');
  assert.is(gitlabSlug('Ünïcode'), 'n-code');
  assert.is(gitlabSlug('日本'), '');
  // cut at 63 characters, then trailing dashes go
  assert.is(gitlabSlug('a'.repeat(62) + '/b'), 'a'.repeat(62));
  assert.is(gitlabSlug('a'.repeat(70)), 'a'.repeat(63));
  // one dash per character, not per byte (ü is 2 bytes in UTF-8)
  assert.is(gitlabSlug('xüy'), 'x-y');
});

test('dates', () => {
  assert.ok(isDate('20230710'));
  assert.ok(isDate('20240229'));
  assert.not.ok(isDate('20230229'));
  assert.not.ok(isDate('20231301'));
  assert.not.ok(isDate('2023071'));
  assert.not.ok(isDate('v20230710'));
  assert.is(utcDate(new Date('2023-07-10T23:30:00-02:00')), '20230711');
});

test('GitLab: tag, default branch, branch, merge request', () => {
  assert.is(where({ CI_COMMIT_TAG: '20230710', CI_COMMIT_REF_NAME: '20230710' }), 'metal-os/20230710');
  assert.equal(resolvePublishTarget({ CI_COMMIT_TAG: '20230710' }), { channel: 'release', prefix: 'metal-os/20230710', date: '20230710', reason: 'GitLab tag 20230710' });
  assert.equal(resolvePublishTarget({ CI_COMMIT_REF_NAME: 'main', CI_DEFAULT_BRANCH: 'main', CI_COMMIT_REF_SLUG: 'main' }), {
    channel: 'stable',
    prefix: 'metal-os/stable',
    date: null,
    reason: 'GitLab default branch main',
  });
  // master is not the default branch when GitLab says another one is
  assert.is(where({ CI_COMMIT_REF_NAME: 'master', CI_DEFAULT_BRANCH: 'main' }), 'metal-os/pull_requests/master');
  assert.is(where({ CI_COMMIT_REF_NAME: 'Feature/Foo_Bar', CI_DEFAULT_BRANCH: 'main' }), 'metal-os/pull_requests/feature-foo-bar');
  // GitLab's own slug wins when it is there
  assert.is(where({ CI_COMMIT_REF_NAME: 'Feature/Foo_Bar', CI_DEFAULT_BRANCH: 'main', CI_COMMIT_REF_SLUG: 'given-slug' }), 'metal-os/pull_requests/given-slug');
  assert.is(where({ CI_MERGE_REQUEST_SOURCE_BRANCH_NAME: 'fix/Thing', CI_COMMIT_REF_NAME: 'fix/Thing', CI_DEFAULT_BRANCH: 'main' }), 'metal-os/pull_requests/fix-thing');
  // without CI_DEFAULT_BRANCH, master and main count as default
  assert.is(where({ CI_COMMIT_REF_NAME: 'master' }), 'metal-os/stable');
});

test('GitHub: tag, default branch, branch, pull request', () => {
  const gh = { GITHUB_ACTIONS: 'true' };
  assert.is(where({ ...gh, GITHUB_REF: 'refs/tags/20230710', GITHUB_EVENT_NAME: 'push' }), 'metal-os/20230710');
  assert.is(where({ ...gh, GITHUB_REF: 'refs/heads/master', GITHUB_EVENT_NAME: 'push' }), 'metal-os/stable');
  assert.is(where({ ...gh, GITHUB_REF: 'refs/heads/main', GITHUB_EVENT_NAME: 'push' }), 'metal-os/stable');
  assert.is(where({ ...gh, GITHUB_REF: 'refs/heads/main', GITHUB_DEFAULT_BRANCH: 'develop' }), 'metal-os/pull_requests/main');
  assert.is(where({ ...gh, GITHUB_REF: 'refs/heads/develop', GITHUB_DEFAULT_BRANCH: 'develop' }), 'metal-os/stable');
  assert.is(where({ ...gh, GITHUB_REF: 'refs/heads/renovate/Node-20.x', GITHUB_EVENT_NAME: 'push' }), 'metal-os/pull_requests/renovate-node-20-x');
  assert.equal(resolvePublishTarget({ ...gh, GITHUB_REF: 'refs/pull/42/merge', GITHUB_EVENT_NAME: 'pull_request', GITHUB_HEAD_REF: 'Fix/ISSUE-7' }), {
    channel: 'pull_request',
    prefix: 'metal-os/pull_requests/fix-issue-7',
    date: null,
    reason: 'GitHub pull request from Fix/ISSUE-7 (slug fix-issue-7)',
  });
  usage(() => where({ ...gh, GITHUB_REF: 'refs/pull/42/merge', GITHUB_EVENT_NAME: 'pull_request' }), 'GitHub pull_request without GITHUB_HEAD_REF: cannot name the pull request');
});

test('a tag that is not a calendar date YYYYMMDD is an error, not a release under today\'s date', () => {
  const fix = 'tag the release with its date (e.g. git tag 20230710), or set PUBLISH_PREFIX to publish elsewhere';
  usage(() => where({ CI_COMMIT_TAG: 'v1.2.3' }), 'GitLab tag "v1.2.3" is not a release date YYYYMMDD: releases are published as metal-os/<YYYYMMDD>/', fix);
  usage(() => where({ CI_COMMIT_TAG: '20230231' }), 'GitLab tag "20230231" is not a calendar date: releases are published as metal-os/<YYYYMMDD>/', fix);
  usage(() => where({ CI_COMMIT_TAG: '2023-07-10' }), 'GitLab tag "2023-07-10" is not a release date YYYYMMDD: releases are published as metal-os/<YYYYMMDD>/', fix);
  const gh = { GITHUB_ACTIONS: 'true', GITHUB_EVENT_NAME: 'push' };
  usage(() => where({ ...gh, GITHUB_REF: 'refs/tags/v0.1' }), 'GitHub tag "v0.1" is not a release date YYYYMMDD: releases are published as metal-os/<YYYYMMDD>/', fix);
  usage(() => where({ ...gh, GITHUB_REF: 'refs/tags/' }), 'GitHub GITHUB_REF=refs/tags/ names an empty tag: releases are published as metal-os/<YYYYMMDD>/', fix);
  usage(() => where({ ...gh, GITHUB_REF: 'refs/tags/20240230' }), 'GitHub tag "20240230" is not a calendar date: releases are published as metal-os/<YYYYMMDD>/', fix);
  // leap years are calendar-checked too
  assert.is(where({ ...gh, GITHUB_REF: 'refs/tags/20240229' }), 'metal-os/20240229');
  usage(() => where({ ...gh, GITHUB_REF: 'refs/tags/20230229' }), 'GitHub tag "20230229" is not a calendar date: releases are published as metal-os/<YYYYMMDD>/', fix);
});

test('override wins over CI and is validated', () => {
  assert.is(where({ PUBLISH_PREFIX: 'metal-os/pull_requests/local', CI_COMMIT_TAG: '20230710' }), 'metal-os/pull_requests/local');
  assert.is(where({ PUBLISH_PREFIX: 'stable' }), 'metal-os/stable');
  assert.is(where({ PUBLISH_PREFIX: 'metal-os/20230710/' }), 'metal-os/20230710');
  assert.equal(parsePrefix('pull_requests/x-1'), { channel: 'pull_request', prefix: 'metal-os/pull_requests/x-1', date: null, reason: 'PUBLISH_PREFIX=pull_requests/x-1' });
  usage(
    () => parsePrefix('metal-os/pull_requests/My_Branch'),
    'PUBLISH_PREFIX="metal-os/pull_requests/My_Branch" is not metal-os/stable, metal-os/<YYYYMMDD> or metal-os/pull_requests/<slug>',
    'set PUBLISH_PREFIX=metal-os/pull_requests/my-branch',
  );
  usage(() => parsePrefix('other/stable'), 'PUBLISH_PREFIX="other/stable" is not metal-os/stable, metal-os/<YYYYMMDD> or metal-os/pull_requests/<slug>');
  usage(() => parsePrefix('metal-os/20231301'), 'PUBLISH_PREFIX="metal-os/20231301" is not metal-os/stable, metal-os/<YYYYMMDD> or metal-os/pull_requests/<slug>');
});

test('no CI environment and no override is a clear error', () => {
  usage(
    () => where({}),
    'cannot tell where to publish: no CI tag or branch in the environment and PUBLISH_PREFIX is not set',
    'set PUBLISH_PREFIX=metal-os/pull_requests/<name> (or metal-os/stable, metal-os/<YYYYMMDD>) in .env',
  );
});

test('no tag or branch name escapes its prefix', () => {
  const hostile = ['../../x', '..', '/', 'a/../../b', '%2e%2e', 'x\ny', ' ', '-', 'stable/../../../etc', '.'.repeat(80), 'A'.repeat(200)];
  const allowed = /^metal-os\/(stable|\d{8}|pull_requests\/[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)$/;
  for (const name of hostile) {
    for (const env of [
      { CI_COMMIT_TAG: name },
      { CI_COMMIT_REF_NAME: name, CI_DEFAULT_BRANCH: 'main' },
      { GITHUB_ACTIONS: 'true', GITHUB_REF: `refs/tags/${name}` },
      { GITHUB_ACTIONS: 'true', GITHUB_REF: `refs/heads/${name}` },
      { GITHUB_ACTIONS: 'true', GITHUB_REF: 'refs/pull/1/merge', GITHUB_EVENT_NAME: 'pull_request', GITHUB_HEAD_REF: name },
      { CI_COMMIT_REF_NAME: 'x', CI_DEFAULT_BRANCH: 'main', CI_COMMIT_REF_SLUG: name },
      { PUBLISH_PREFIX: name },
    ] as Env[]) {
      let prefix: string;
      try {
        prefix = where(env);
      } catch (e) {
        assert.instance(e, UsageError, `${JSON.stringify(env)} threw ${String(e)}`);
        continue;
      }
      assert.match(prefix, allowed, `${JSON.stringify(env)} gave ${prefix}`);
    }
  }
});

test.run();
