// The build command and the builder check of scripts/lib/docker.ts (pure parts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildArgv, parseBuilderInspect } from '../../scripts/lib/docker.ts';

test('buildArgv: docker buildx build, plain progress, loaded into the daemon, host network; --builder only when named', () => {
  const spec = { tag: 'metal-images/debian:12', dockerfile: '/r/layers/apt/Dockerfile', context: '/r/.state/context/debian', buildArgs: { A: '1' }, labels: { l: 'v' }, target: 'kernel' };
  assert.equal(buildArgv(spec), [
    'docker', 'buildx', 'build', '--progress', 'plain', '--load', '--network', 'host', '--file', '/r/layers/apt/Dockerfile', '--tag', 'metal-images/debian:12',
    '--build-arg', 'A=1', '--label', 'l=v', '--target', 'kernel', '/r/.state/context/debian',
  ]);
  assert.equal(buildArgv(spec, 'farm').slice(0, 5), ['docker', 'buildx', 'build', '--builder', 'farm']);
  assert.not.ok(buildArgv(spec).includes('DOCKER_BUILDKIT=0'));
});

test('parseBuilderInspect: the docker driver of dockerd 20.10, a remote builder, and one without BuildKit', () => {
  const docker = 'Name:   default\nDriver: docker\n\nNodes:\nName:             default\nEndpoint:         default\nStatus:           running\nBuildKit version: v0.8+unknown\nPlatforms:        linux/amd64, linux/386\n';
  assert.equal(parseBuilderInspect(docker), { name: 'default', driver: 'docker', buildkit: 'v0.8+unknown' });
  const remote = 'Name:          farm\nDriver:        remote\nLast Activity: 2026-12-02 05:00:00 +0000 UTC\n\nNodes:\nName:             farm0\nEndpoint:         tcp://10.0.0.5:1234\nStatus:           running\nBuildKit:         v0.23.2\n';
  assert.equal(parseBuilderInspect(remote), { name: 'farm', driver: 'remote', buildkit: 'v0.23.2' });
  assert.is(parseBuilderInspect('Name:   default\nDriver: docker\n\nNodes:\nName: default\nStatus: inactive\n'), null);
});

test.run();
