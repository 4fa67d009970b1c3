// Layers, units and the finalize stage's data: the pure pieces of scripts/lib/image-def.ts and
// scripts/steps/build.ts, against exact values; and the repository's own definitions.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../scripts/lib/config.ts';
import { bodyTag, kernelTag, listOsFolders, loadImageDef, mergePackages, mergeUnits } from '../../scripts/lib/image-def.ts';
import { finalizeMeta, hasKernelStage, presetLine, renderPreset, stagedFiles } from '../../scripts/steps/build.ts';
import { duplicateFindings } from '../../scripts/static/checks.ts';

const none = { order: [], state: {}, default_target: '' };

test('units: a later word about a unit wins, its first position is kept', () => {
  const u = mergeUnits(
    none,
    { enable: ['a.service', 'b.service'], disable: ['c.socket'], mask: [], default_target: 'multi-user.target' },
    { enable: ['c.socket'], disable: ['a.service'], mask: ['d.service'], default_target: '' },
  );
  assert.equal(u.order, ['a.service', 'b.service', 'c.socket', 'd.service']);
  assert.equal(u.state, { 'a.service': 'disable', 'b.service': 'enable', 'c.socket': 'enable', 'd.service': 'mask' });
  assert.is(u.default_target, 'multi-user.target');
});

test('package lists are joined per build arg, without duplicates', () => {
  assert.equal(mergePackages({ P: ['a', 'b'], Q: ['x'] }, { P: ['b', 'c'] }), { P: ['a', 'b', 'c'], Q: ['x'] });
  assert.equal(mergePackages({ P: ['a', 'b'] }, { P: ['-a', 'c'] }), { P: ['b', 'c'] }, '"-a" takes a out');
});

test('preset lines: template instances as "<template> <instance>"', () => {
  assert.is(presetLine('enable', 'serial-getty@ttyS1.service'), 'enable serial-getty@.service ttyS1');
  assert.is(presetLine('enable', 'getty@.service'), 'enable getty@.service');
  assert.is(presetLine('disable', 'ssh.socket'), 'disable ssh.socket');
});

test('nvidia: Debian\'s units and layers below its own, its body on Debian\'s', () => {
  const nvidia = loadImageDef('nvidia');
  const debian = loadImageDef('debian');
  assert.is(nvidia.base.image, bodyTag(debian));
  assert.is(bodyTag(debian), 'metal-images/debian:12-body');
  assert.is(kernelTag(debian), 'metal-images/debian:12-kernel');
  assert.ok(hasKernelStage(readFileSync(debian.dockerfile, 'utf8')));
  assert.is(debian.dockerfile, join(ROOT, 'layers', 'apt', 'Dockerfile'));
  assert.equal(nvidia.units.order.slice(0, debian.units.order.length), debian.units.order);
  assert.is(nvidia.units.state['nvidia-persistenced.service'], 'enable');
  assert.is(nvidia.units.state['containerd.service'], 'enable');
  const preset = renderPreset(nvidia);
  assert.ok(preset.includes('\nenable serial-getty@.service ttyS1\n'));
  assert.ok(preset.endsWith('enable nvidia-cdi-generate.service\nenable nvidia-persistenced.service\n'));
});

test('firewall: its units override the worker\'s (the first match of a preset wins, so each unit is listed once)', () => {
  for (const def of [loadImageDef('firewall'), loadImageDef('firewall', 'debian')]) {
    assert.is(def.units.state['containerd.service'], 'disable');
    assert.is(def.units.state['nftables.service'], 'enable');
    assert.is(def.units.state['chrony.service'], 'mask');
    const lines = renderPreset(def).split('\n').filter((l) => /^(enable|disable) /.test(l));
    assert.is(new Set(lines.map((l) => l.split(' ')[1])).size, lines.length);
  }
  assert.is(loadImageDef('firewall', 'debian').base.image, 'metal-images/debian:12-body');
  assert.is(loadImageDef('firewall').base.image, 'metal-images/ubuntu:22.04-body');
});

test('finalize meta: units by state, build.yaml with the commit left open, extra keys with {k} filled in the image', () => {
  const m = finalizeMeta(loadImageDef('nvidia'));
  assert.ok(m['units-enabled']!.split('\n').includes('nvidia-cdi-generate.service'));
  assert.ok(m['units-masked']!.split('\n').includes('console-getty.service'));
  assert.is(m['default-target'], 'multi-user.target\n');
  assert.is(m['build.yaml.in'], [
    '# metal-stack image build metadata', 'os: "nvidia"', 'version: "12"', 'build_date: "@BUILD_DATE@"', 'build_commit: "@BUILD_COMMIT@"',
    'build_version: "@BUILD_VERSION@"', 'base_image: "metal-images/debian:12-body"', 'kernel_version: "@KERNEL_VERSION@"', '',
  ].join('\n'));
  assert.is(m['build-meta.tsv'], "nvidia_driver\tdpkg-query -W -f='${Version}' nvidia-kernel-@KERNEL_VERSION@\n");
});

test('staging: the OS folder replaces a layer\'s file of the same path; lib/ and tools/ are added', () => {
  const files = stagedFiles(loadImageDef('debian'));
  assert.is(files.get('rootfs/etc/sudoers'), join(ROOT, 'layers', 'apt', 'context', 'rootfs', 'etc', 'sudoers'));
  assert.is(files.get('rootfs/etc/frr/frr.conf'), join(ROOT, 'layers', 'common', 'context', 'rootfs', 'etc', 'frr', 'frr.conf'));
  assert.is(files.get('rootfs/etc/motd'), join(ROOT, 'debian', 'context', 'rootfs', 'etc', 'motd'));
  assert.ok(files.has('lib/metal.sh'));
  assert.ok(files.has('tools/ignition'));
});

test('duplicate check: only the folder\'s own files are reported, against the nearest lower copy', () => {
  const staged = [
    { name: 'layers/common/context', files: new Map([['a', 'h1'], ['b', 'h2']]) },
    { name: 'layers/apt/context', files: new Map([['b', 'h3']]) },
    { name: 'debian/context', files: new Map([['a', 'h1'], ['b', 'h2'], ['c', 'h4']]) },
  ];
  assert.equal(duplicateFindings(staged, new Set(['debian/context'])).map((f) => `${f.file}: ${f.message}`), [
    'debian/context/a: is identical to layers/common/context/a: drop it here (the lower layer already provides it)',
    'debian/context/b: is identical to layers/common/context/b: drop it here (the lower layer already provides it)',
  ]);
});

test('every definition loads with a default target and a Dockerfile', () => {
  for (const os of listOsFolders()) {
    const base = loadImageDef(os);
    for (const d of [base, ...Object.keys(base.variants).map((v) => loadImageDef(os, v))]) {
      assert.ok(d.units.default_target, `${os} ${d.variant}`);
      assert.ok(readFileSync(d.dockerfile, 'utf8').includes('FROM ${BASE_IMAGE}'), d.dockerfile);
    }
  }
});

test.run();
