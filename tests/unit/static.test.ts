// The static checks (make check): the Dockerfile parser against exact data, every check over the
// five OS folders of the repository, and one crafted bad input per check (tests/fixtures/static/)
// asserting the exact finding. shellcheck is the one real tool here (installed by make setup).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { ROOT } from '../../scripts/lib/config.ts';
import { listOsFolders } from '../../scripts/lib/image-def.ts';
import { parseDockerfile, varRefs, parseArg, parseEnv, copyOperands, mountOptions, stages } from '../../scripts/static/dockerfile.ts';
import {
  checkAll, checkFolder, formatFinding, gossFindings, buildArgFindings, dockerfileFindings, copySourceFindings, expandVars,
  parseShellcheckGcc, sourceExists, type BuildConfig, type ContextLayout,
} from '../../scripts/static/checks.ts';

const FIXTURES = join(ROOT, 'tests', 'fixtures', 'static');

// ---- the parser ------------------------------------------------------------------------------

const parser = suite('Dockerfile parser');

parser('continuations are joined, comment and blank lines inside them dropped, lines kept', () => {
  const df = parseDockerfile('ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n\nRUN a \\\n # note\n\n && b \\  \n && c\nCOPY x /y\n');
  assert.equal(df.errors, []);
  assert.equal(df.instructions.map((i) => [i.keyword, i.line, i.args]), [
    ['ARG', 1, 'BASE_IMAGE'],
    ['FROM', 2, '${BASE_IMAGE}'],
    ['RUN', 4, 'a  && b  && c'],
    ['COPY', 9, 'x /y'],
  ]);
});

parser('the escape directive switches the continuation character', () => {
  const df = parseDockerfile('# escape=`\nFROM scratch\nRUN echo C:\\dir `\n  done\n');
  assert.is(df.escape, '`');
  assert.equal(df.errors, []);
  assert.is(df.instructions[1]!.args, 'echo C:\\dir   done');
});

parser('flags, exec form and stage names', () => {
  const df = parseDockerfile('FROM --platform=linux/amd64 debian:12 AS Build\nCOPY --from=build --chmod=0755 /a /b\nCMD ["bash", "-c", "true"]\nFROM debian:12\n');
  const copy = df.instructions[1]!;
  assert.equal(copy.flags, { from: 'build', chmod: '0755' });
  assert.is(copy.rest, '/a /b');
  assert.equal(df.instructions[2]!.json, ['bash', '-c', 'true']);
  assert.equal(df.instructions[0]!.flags, { platform: 'linux/amd64' });
  const st = stages(df);
  assert.equal(st.stages.map((s) => [s.name, s.image, s.body.length]), [['build', 'debian:12', 2], ['', 'debian:12', 0]]);
});

parser('syntax errors: unknown instruction, dangling continuation, instruction before FROM, heredoc, SHELL form', () => {
  assert.equal(parseDockerfile('RUN true\nFROM x\n').errors, [{ line: 1, message: 'RUN before the first FROM (only ARG may come before it)' }]);
  assert.equal(parseDockerfile('FROM x\nRUNN true\n').errors, [{ line: 2, message: 'unknown instruction "RUNN"' }]);
  assert.equal(parseDockerfile('FROM x\nRUN a \\\n').errors, [{ line: 2, message: 'the last instruction ends with a line continuation and no next line' }]);
  assert.equal(parseDockerfile('FROM x\nRUN <<EOF\nEOF\n').errors, [
    { line: 2, message: 'RUN uses a heredoc (<<WORD): Dockerfile 1.4 syntax, which the frontend built into dockerd 20.10 does not have' },
    { line: 3, message: 'unknown instruction "EOF"' },
  ]);
  assert.equal(parseDockerfile('FROM x\nSHELL /bin/bash -c\n').errors, [{ line: 2, message: 'SHELL needs the JSON form, e.g. SHELL ["/bin/bash", "-c"]' }]);
  assert.equal(parseDockerfile('# only a comment\n').errors, [{ line: 1, message: 'no FROM instruction' }]);
});

parser('BuildKit 1.2 rules: RUN --mount kept in order, unknown RUN flags and mount types, a syntax line pulls', () => {
  const df = parseDockerfile('FROM x AS a\nRUN --mount=type=cache,target=/var/cache/apt,sharing=locked \\\n    --mount=type=cache,target=/var/lib/apt/lists,sharing=locked apt-get update\n');
  assert.equal(df.errors, []);
  assert.equal(df.instructions[1]!.mounts, ['type=cache,target=/var/cache/apt,sharing=locked', 'type=cache,target=/var/lib/apt/lists,sharing=locked']);
  assert.is(df.instructions[1]!.rest, 'apt-get update');
  assert.equal(mountOptions('type=cache,target=/x,sharing=locked'), { type: 'cache', target: '/x', sharing: 'locked' });
  assert.equal(parseDockerfile('FROM x\nRUN --link --mount=type=volume,target=/v --mount=type=cache true\n').errors, [
    { line: 2, message: 'RUN --link is not a flag of the Dockerfile frontend built into dockerd 20.10 (RUN takes --mount, --network, --security)' },
    { line: 2, message: 'RUN --mount type "volume" is not one of bind, cache, tmpfs, secret, ssh' },
    { line: 2, message: 'RUN --mount=type=cache has no target' },
  ]);
  assert.equal(parseDockerfile('# syntax=docker/dockerfile:1\nFROM x\n').errors, [
    { line: 1, message: 'syntax directive "docker/dockerfile:1": BuildKit would pull that frontend image from a registry; the Dockerfile frontend built into dockerd 20.10 needs none' },
  ]);
});

parser('variable references: braces, defaults, bare names, escapes; the shell skips single quotes', () => {
  assert.equal(varRefs('${A} $B ${C:-x} \\$D $1 $$ ${E%% *}').map((r) => [r.name, r.text]), [['A', '${A}'], ['B', '$B'], ['C', '${C:-x}'], ['E', '${E%% *}']]);
  assert.equal(varRefs(`echo '$A' "$B" '\${C}'`, { shell: true }).map((r) => r.name), ['B']);
  assert.equal(varRefs(`echo '$A'`).map((r) => r.name), ['A']);
});

parser('ARG, ENV and COPY operands', () => {
  assert.equal(parseArg('A B=1 C="two words"'), [{ name: 'A', value: null }, { name: 'B', value: '1' }, { name: 'C', value: 'two words' }]);
  assert.equal(parseEnv('K=V L="x y"'), [{ name: 'K', value: 'V' }, { name: 'L', value: 'x y' }]);
  assert.equal(parseEnv('LEGACY some value'), [{ name: 'LEGACY', value: 'some value' }]);
  const df = parseDockerfile('FROM x\nCOPY a "b c" /dst/\nCOPY ["d", "e f", "/g"]\n');
  assert.equal(copyOperands(df.instructions[1]!), { sources: ['a', 'b c'], dest: '/dst/' });
  assert.equal(copyOperands(df.instructions[2]!), { sources: ['d', 'e f'], dest: '/g' });
  assert.is(expandVars('${A}/x/$B', { A: 'a', B: 'b' }), 'a/x/b');
  assert.is(expandVars('${A}/$C', { A: 'a' }), null);
});

parser.run();

// ---- the checks, pure ------------------------------------------------------------------------

const pure = suite('static checks (pure)');

const cfg = (args: Record<string, string>, fromYaml: string[] = [], label = ''): BuildConfig => ({ label, args: { BASE_IMAGE: 'b', IMAGE_OS: 'o', IMAGE_VERSION: '1', BUILD_DATE: 'd', BUILD_COMMIT: 'c', BUILD_VERSION: 'v', ...args }, fromYaml });

pure('build args: each rule, exact messages', () => {
  const df = parseDockerfile([
    'ARG BASE_IMAGE', // 1
    'FROM ${BASE_IMAGE} AS one', // 2
    'COPY ${DEST} /x', // 3: expanded instruction, not declared
    'ARG MIRROR', // 4: no default, given only by the default build
    'RUN echo "$MIRROR $BASE_IMAGE $HOME"', // 5: BASE_IMAGE is global only
    'FROM ${OTHER}', // 6: FROM with an undeclared global
  ].join('\n'));
  const f = buildArgFindings(df, 'x/Dockerfile', [cfg({ MIRROR: 'm' }, ['MIRROR', 'UNUSED']), cfg({}, [], 'alt')], 'x/image.yaml');
  assert.equal(f.map(formatFinding), [
    'x/Dockerfile:3: COPY uses ${DEST}, which is not declared in this stage (add ARG DEST after its FROM)',
    'x/Dockerfile:5: RUN uses $BASE_IMAGE, a build arg that is not declared in this stage (add ARG BASE_IMAGE after its FROM)',
    'x/Dockerfile:6: FROM uses ${OTHER}, which no ARG before the first FROM declares (add ARG OTHER at the top)',
    'x/Dockerfile:4: ARG MIRROR has no default and neither the pipeline nor image.yaml build_args give it (variant alt)',
    'x/image.yaml: build_args.UNUSED is not declared by any ARG in x/Dockerfile (docker would ignore it)',
  ]);
});

pure('build args: ENV of a parent stage is inherited, ARG is not', () => {
  const df = parseDockerfile('ARG BASE_IMAGE\nFROM ${BASE_IMAGE} AS a\nENV DIR=/opt\nARG K=1\nFROM a\nWORKDIR ${DIR}\nRUN echo ${K}\n');
  assert.equal(buildArgFindings(df, 'D', [cfg({})], 'Y').map(formatFinding), ['D:7: RUN uses ${K}, a build arg that is not declared in this stage (add ARG K after its FROM)']);
});

pure('Dockerfile: FROM ${BASE_IMAGE} is required, COPY --from must name an earlier stage', () => {
  assert.equal(dockerfileFindings(parseDockerfile('FROM debian:12\nCOPY --from=builder /a /b\n'), 'D').map(formatFinding), [
    'D:1: no stage builds FROM ${BASE_IMAGE} (the pipeline passes the base image as that build arg)',
    'D:2: COPY --from=builder names no earlier stage of this Dockerfile (images from a registry cannot be pulled here)',
  ]);
  assert.equal(dockerfileFindings(parseDockerfile('ARG BASE_IMAGE\nFROM ${BASE_IMAGE} AS m\nFROM $BASE_IMAGE\nCOPY --from=m /a /b\nCOPY --from=0 /a /b\n'), 'D'), []);
});

pure('COPY sources: staged layout, globs, variables, outside the context', () => {
  const files = new Set(['rootfs', 'rootfs/etc', 'rootfs/etc/motd', 'tools', 'tools/ignition']);
  const layout: ContextLayout = {
    exists: (p) => p === '' || files.has(p),
    list: (p) => (p === 'rootfs/etc' ? ['motd'] : null),
  };
  assert.ok(sourceExists(layout, 'rootfs/etc/m*'));
  assert.not.ok(sourceExists(layout, 'rootfs/etc/x*'));
  const df = parseDockerfile('FROM x\nARG SUB=etc\nCOPY rootfs/${SUB}/motd tools/ignition /\nCOPY ../secret /\nCOPY ${NOPE}/a /\nCOPY tools/crictl /\nCOPY --from=0 /nowhere /\n');
  assert.equal(copySourceFindings(df, 'D', layout, {}, 'ctx').map(formatFinding), [
    'D:4: COPY source "../secret" is outside the build context',
    'D:5: COPY source "${NOPE}/a" uses a variable with no known value',
    'D:6: COPY source "tools/crictl" does not exist in the build context (ctx)',
  ]);
});

pure('goss: parse errors, unknown types, non-mapping resources, missing gossfiles, templates', () => {
  assert.equal(gossFindings('file:\n  /x: {exists: true}\n', 'g', () => true), []);
  assert.equal(gossFindings('', 'g', () => true).map(formatFinding), ['g: the goss spec is empty']);
  assert.equal(gossFindings('- file\n', 'g', () => true).map(formatFinding), ['g:1: a goss spec must be a mapping of resource types (file:, service:, ...)']);
  assert.equal(gossFindings('file: [a]\nkernel_param: {}\n', 'g', () => true).map(formatFinding), [
    'g:1: "file" must be a mapping of resources to their attributes',
    'g:2: unknown goss resource type "kernel_param" (goss v0.4.9 knows: file, package, addr, port, service, user, group, command, dns, process, kernel-param, mount, interface, http, matching, gossfile)',
  ]);
  assert.equal(gossFindings('gossfile:\n  ../common.yaml: {}\n  missing.yaml: {}\n', 'g', (p) => p === '../common.yaml').map(formatFinding), ['g:3: gossfile "missing.yaml" does not exist']);
  const templated = '{{if eq .Vars.os "debian"}}\npackage:\n  {{.Vars.pkg}}: {installed: true}\n{{end}}\n';
  assert.equal(gossFindings(templated, 'g', () => true), []);
  assert.equal(gossFindings('file:\n  a: 1\n b: 2\n', 'g', () => true).map(formatFinding), ['g:3: YAML error: All mapping items must start at the same column']);
});

pure('shellcheck gcc output becomes findings', () => {
  assert.equal(parseShellcheckGcc('a/b.sh:3:7: warning: foo is unused [SC2034]\nnoise\nc.sh:1:1: error: bad [SC1000]\n').map(formatFinding), [
    'a/b.sh:3: warning: foo is unused [SC2034]',
    'c.sh:1: error: bad [SC1000]',
  ]);
});

pure.run();

// ---- the checks over real folders ------------------------------------------------------------

const real = suite('static checks over the OS folders and the crafted bad inputs');

real('the repository has the five image folders, and every check passes for each', async () => {
  assert.equal(listOsFolders(ROOT), ['almalinux', 'debian', 'firewall', 'nvidia', 'ubuntu']);
  const { reports, shared } = await checkAll(ROOT);
  for (const r of reports) {
    assert.equal(r.findings.map(formatFinding), [], `${r.os}/ has findings`);
    assert.equal(r.notRun, {}, `${r.os}/ checks not run`);
  }
  assert.equal(shared.map(formatFinding), [], 'scripts/installer has shellcheck findings');
});

const BAD: [string, string, string][] = [
  ['good', '', 'every check passes'],
  ['undeclared-arg', 'build args', 'undeclared-arg/Dockerfile:4: RUN uses ${KERNEL_PACKAGE}, a build arg that is not declared in this stage (add ARG KERNEL_PACKAGE after its FROM)'],
  ['ungiven-arg', 'build args', 'ungiven-arg/Dockerfile:4: ARG APT_MIRROR has no default and neither the pipeline nor image.yaml build_args give it'],
  ['missing-copy', 'COPY sources', 'missing-copy/Dockerfile:5: COPY source "scripts/configure.sh" does not exist in the build context (missing-copy/context + lib/ + tools/)'],
  ['dup-layer-file', 'layers', 'dup-layer-file/context/rootfs/etc/motd: is identical to layers/base/context/rootfs/etc/motd: drop it here (the lower layer already provides it)'],
  ['finalize-repeat', 'layers', 'finalize-repeat/Dockerfile:4: RUN records the permissions: that is the finalize stage\'s (layers/finalize/Dockerfile), which every image passes through'],
  ['goss-yaml-error', 'goss', 'goss-yaml-error/goss.yaml:4: YAML error: All mapping items must start at the same column'],
  ['goss-unknown-type', 'goss', 'goss-unknown-type/goss.yaml:4: unknown goss resource type "services" (goss v0.4.9 knows: file, package, addr, port, service, user, group, command, dns, process, kernel-param, mount, interface, http, matching, gossfile)'],
  ['shellcheck-fail', 'shellcheck', 'shellcheck-fail/context/scripts/clean.sh:2: error: Iterating over ls output is fragile. Use globs. [SC2045]'],
];

for (const [os, check, message] of BAD) {
  real(`fixture ${os}: ${check ? `the ${check} check fails with the exact message, the others pass` : message}`, async () => {
    const r = await checkFolder(os, FIXTURES);
    assert.equal(r.findings.map((f) => `${f.check}: ${formatFinding(f)}`), check ? [`${check}: ${message}`] : []);
  });
}

real.run();
