// The pure parts of the SBOM, the registry push and the CI checks.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { UsageError } from '../../scripts/lib/errors.ts';
import { listedPackages, missingFromSbom, parseSpdx, sbomArgv, type SpdxDocument } from '../../scripts/export/sbom.ts';
import { isLoopback, parseChallenge, pushedDigest, registrySettings, registryTags, repositoryOf } from '../../scripts/release/registry.ts';
import { parsePrefix } from '../../scripts/release/prefix.ts';
import { withRegistry } from '../../scripts/release/publish.ts';
import { emptyRecord } from '../../scripts/lib/build-record.ts';
import { gitlabFindings, makeTargets, parseActionlint, parseMakeCall } from '../../scripts/static/ci.ts';

const doc = (pkgs: { name: string; versionInfo?: string }[]): SpdxDocument => ({ spdxVersion: 'SPDX-2.3', documentNamespace: 'https://x/y', packages: pkgs, files: [] });

test('packages.txt: dpkg -l installed lines (arch suffix dropped), rpm -qa lines', () => {
  const dpkg = 'Desired=Unknown/Install\n||/ Name  Version  Architecture Description\n+++-====\nii  libc6:amd64  2.36-9+deb12u4  amd64  GNU C Library\nrc  gone  1.0  amd64  removed\nii  vim  2:9.0.1378-2  amd64  editor\n';
  assert.equal(listedPackages(dpkg).map((p) => [p.name, p.version]), [['libc6', '2.36-9+deb12u4'], ['vim', '2:9.0.1378-2']]);
  const d = doc([{ name: 'libc6', versionInfo: '2.36-9+deb12u4' }, { name: 'vim', versionInfo: '2:9.0.1378-1' }]);
  assert.equal(missingFromSbom(listedPackages(dpkg), d).map((p) => p.name), ['vim'], 'a version that differs is missing');
  const rpm = 'bash-5.1.8-9.el9.x86_64\nkernel-core-5.14.0-427.el9.x86_64\n';
  const r = doc([{ name: 'bash', versionInfo: '5.1.8-9.el9' }, { name: 'kernel-core', versionInfo: '0:5.14.0-427.el9' }]);
  assert.equal(missingFromSbom(listedPackages(rpm), r), []);
  assert.equal(missingFromSbom(listedPackages(rpm), doc([{ name: 'bash', versionInfo: '5.1.8-9.el9' }])).map((p) => p.line), ['kernel-core-5.14.0-427.el9.x86_64']);
});

test('SPDX: the fields a consumer needs are checked, the first one missing is named', () => {
  const ok = { spdxVersion: 'SPDX-2.3', dataLicense: 'CC0-1.0', SPDXID: 'SPDXRef-DOCUMENT', documentNamespace: 'https://anchore.com/syft/dir/x', packages: [{ name: 'a', SPDXID: 'SPDXRef-a' }], files: [] };
  assert.is(parseSpdx(JSON.stringify(ok)).packages.length, 1);
  assert.throws(() => parseSpdx(JSON.stringify({ ...ok, spdxVersion: 'SPDX-3.0' })), /spdxVersion is "SPDX-3.0"/);
  assert.throws(() => parseSpdx(JSON.stringify({ ...ok, documentNamespace: 'x' })), /documentNamespace is not a URI/);
  assert.throws(() => parseSpdx(JSON.stringify({ ...ok, packages: [] })), /packages is missing or empty/);
  assert.throws(() => parseSpdx('{"spdxVersion":'), /not JSON/);
});

test('syft\'s command line: dir: with the tar\'s leftovers excluded, or file: over the archive', () => {
  assert.equal(sbomArgv('/b/syft', { kind: 'dir', dir: '/m', exclude: ['.dockerenv', 'dev/null'] }, '/o.partial', 'debian', '12'), ['/b/syft', 'scan', 'dir:/m', '--output', 'spdx-json=/o.partial', '--source-name', 'debian', '--source-version', '12', '--quiet', '--exclude', './.dockerenv', '--exclude', './dev/null']);
  assert.equal(sbomArgv('syft', { kind: 'file', path: '/s/img.tar.lz4' }, '/o', 'debian', '12').slice(1, 3), ['scan', 'file:/s/img.tar.lz4']);
});

test('REGISTRY: host[:port]/namespace, loopback over http, credentials both or neither', () => {
  assert.is(registrySettings({}), null);
  assert.equal(registrySettings({ REGISTRY: '127.0.0.1:5000/metal', REGISTRY_USERNAME: 'u', REGISTRY_PASSWORD: 'p' }), { host: '127.0.0.1:5000', namespace: 'metal', username: 'u', password: 'p', scheme: 'http' });
  assert.is(registrySettings({ REGISTRY: 'ghcr.io/metal-stack' })!.scheme, 'https');
  assert.is(repositoryOf(registrySettings({ REGISTRY: 'ghcr.io/metal-stack' })!, 'debian-nvidia'), 'ghcr.io/metal-stack/debian-nvidia');
  assert.throws(() => registrySettings({ REGISTRY: 'https://ghcr.io/x' }), (e: Error) => e instanceof UsageError && /has a scheme/.test(e.message));
  assert.throws(() => registrySettings({ REGISTRY: 'GHCR.io/X' }), /is not host\[:port\]\/namespace/);
  assert.throws(() => registrySettings({ REGISTRY: 'ghcr.io/x', REGISTRY_USERNAME: 'u' }), /REGISTRY_PASSWORD is not set, but REGISTRY_USERNAME is/);
  assert.throws(() => registrySettings({ REGISTRY_PASSWORD: 'p' }), /REGISTRY is not/);
  assert.ok(isLoopback('localhost:5000') && isLoopback('127.1.2.3') && isLoopback('[::1]:5000') && !isLoopback('10.0.0.1:5000'));
});

test('tags like upstream: <version>-stable, <major.minor>.<date> for a release, <version>-<slug> for a PR', () => {
  assert.equal(registryTags(parsePrefix('metal-os/stable'), '12'), ['12-stable']);
  assert.equal(registryTags(parsePrefix('metal-os/20260102'), '12'), ['12.0.20260102']);
  assert.equal(registryTags(parsePrefix('metal-os/20260102'), '3.0-ubuntu'), ['3.0-ubuntu.20260102']);
  assert.equal(registryTags(parsePrefix('metal-os/pull_requests/feature-x'), '22.04'), ['22.04-feature-x']);
  assert.throws(() => registryTags(parsePrefix('metal-os/pull_requests/stable'), '12'), /would push over the stable tag/);
});

test('docker push output and 401 challenges', () => {
  const d = `sha256:${'a'.repeat(64)}`;
  assert.is(pushedDigest(`The push refers to repository [127.0.0.1:5000/metal/debian]\n5f70bf18a086: Pushed\n12-stable: digest: ${d} size: 529\n`, '12-stable'), d);
  assert.is(pushedDigest(`12-stable: digest: ${d} size: 529\n`, '12'), null);
  assert.equal(parseChallenge('Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:x:pull"'), { scheme: 'bearer', params: { realm: 'https://ghcr.io/token', service: 'ghcr.io', scope: 'repository:x:pull' } });
  assert.equal(parseChallenge('Basic realm="metal"'), { scheme: 'basic', params: { realm: 'metal' } });
  assert.is(parseChallenge(null), null);
});

test('the registry part: the same part keeps the record as it is (a re-run publishes the same build.json)', () => {
  const rec = emptyRecord({ os: 'debian', version: '12', variant: '', name: 'debian-12', layers: [], dockerfile: 'x' });
  const part = { repository: 'r/debian', tags: ['12-stable'], digest: 'sha256:1', docker_image_id: 'sha256:2', prefix: 'metal-os/stable' };
  const a = withRegistry(rec, part, new Date(0));
  assert.equal(a.registry, part);
  assert.is(withRegistry(a, { ...part }, new Date(1000)), a);
  assert.is.not(withRegistry(a, { ...part, digest: 'sha256:3' }, new Date(1000)), a);
});

test('CI: make calls, the Makefile\'s targets, actionlint\'s lines', () => {
  assert.equal(parseMakeCall('make debian VARIANT=13'), { targets: ['debian'], vars: { VARIANT: '13' } });
  assert.equal(parseMakeCall('make -s ci-matrix'), { targets: ['ci-matrix'], vars: {} });
  assert.is(parseMakeCall('./build.sh debian'), null);
  const t = makeTargets('.PHONY: help test $(OSES)\nhelp:\n\t@echo\nci-matrix: $(NODE_STAMP)\n%:\n\t@exit 2\nX := 1\n', ['debian']);
  assert.equal([...t].sort(), ['ci-matrix', 'debian', 'help', 'test']);
  assert.equal(parseActionlint('.github/workflows/a.yaml:3:5: bad thing [syntax-check]\n', '/r'), [{ file: '.github/workflows/a.yaml', line: 3, message: 'bad thing [syntax-check]' }]);
  const images = [{ os: 'debian', variant: '', version: '12', name: 'debian-12' }];
  assert.equal(gitlabFindings('stages: [images]\n.t:\n  stage: images\ndebian:\n  extends: .t\n  script: [make debian]\n', 'g.yml', new Set(['debian']), images), []);
  assert.equal(gitlabFindings('stages: [images]\ndebian:\n  stage: images\n  script: [make debian]\n', 'g.yml', new Set(['debian']), [...images, { os: 'debian', variant: '13', version: '13', name: 'debian-13' }]).map((f) => f.message), ['no job builds debian-13: add one that runs make debian VARIANT=13']);
  assert.equal(gitlabFindings('debian:\n  script: [make debian]\n', 'g.yml', new Set(['debian']), images).map((f) => f.message), ['no stages: are declared', 'job debian has no stage:']);
});

test.run();
