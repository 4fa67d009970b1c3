import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { throwsUsage } from '../helpers/assert.ts';
import { parseImageDef, loadImageDef, imageTag, imageName, listOsFolders } from '../../scripts/lib/image-def.ts';
import { UsageError } from '../../scripts/lib/errors.ts';

const minimal = `
os: demo
version: "12"
base: { image: "debian:12" }
packages_command: [dpkg, -l]
machine_type: machine
contract: { size_budget_mib: 100 }
`;


test('minimal definition gets defaults', () => {
  const d = parseImageDef(minimal, 'demo/image.yaml', 'demo');
  assert.is(d.version, '12');
  assert.is(d.supported, true);
  assert.equal(d.build_args, {});
  assert.is(d.base.bootstrap, null);
  assert.is(d.contract.initrd, 'initrd.img-{k}');
  assert.is(d.contract.sudo_group, 'sudo');
});

test('unknown field names file and field', () => {
  throwsUsage(
    () => parseImageDef(minimal + 'colour: blue\n', 'demo/image.yaml', 'demo'),
    'demo/image.yaml: field "colour" is not known (expected one of: os, version, description, supported, layers, base, build_args, packages, units, build_meta, publish_as, packages_command, machine_type, go_tools, contract, variants)',
  );
  throwsUsage(
    () => parseImageDef(minimal.replace('base: { image: "debian:12" }', 'base: { image: "debian:12", imgae: x }'), 'demo/image.yaml', 'demo'),
    'demo/image.yaml: field "base.imgae" is not known (expected one of: image, from, bootstrap)',
  );
});

test('wrong type names file and field', () => {
  throwsUsage(
    () => parseImageDef(minimal.replace('packages_command: [dpkg, -l]', 'packages_command: dpkg -l'), 'demo/image.yaml', 'demo'),
    'demo/image.yaml: field "packages_command" must be a list, got string "dpkg -l"',
  );
  throwsUsage(
    () => parseImageDef(minimal.replace('machine_type: machine', 'machine_type: server'), 'demo/image.yaml', 'demo'),
    'demo/image.yaml: field "machine_type" must be one of machine, firewall, got "server"',
  );
  throwsUsage(
    () => parseImageDef(minimal.replace('size_budget_mib: 100', 'size_budget_mib: -1'), 'demo/image.yaml', 'demo'),
    'demo/image.yaml: field "contract.size_budget_mib" must be a positive integer, got number -1',
  );
});

test('a YAML number is no version: "version: 12.10" is an error naming file:line, not "12.1"', () => {
  throwsUsage(
    () => parseImageDef(minimal.replace('version: "12"', 'version: 12.10'), 'demo/image.yaml', 'demo'),
    'demo/image.yaml:3: field "version" must be a string, but YAML reads it as the number 12.1',
    'quote it in demo/image.yaml: version: "12.10"',
  );
  throwsUsage(
    () => parseImageDef(minimal + 'variants:\n  x:\n    version: 3.10\n', 'demo/image.yaml', 'demo'),
    'demo/image.yaml:10: field "variants.x.version" must be a string, but YAML reads it as the number 3.1',
    'quote it in demo/image.yaml: version: "3.10"',
  );
  throwsUsage(
    () => parseImageDef(minimal.replace('version: "12"', 'version: 12'), 'demo/image.yaml', 'demo'),
    'demo/image.yaml:3: field "version" must be a string, but YAML reads it as the number 12',
    'quote it in demo/image.yaml: version: "12"',
  );
  assert.is(parseImageDef(minimal.replace('version: "12"', 'version: "12.10"'), 'demo/image.yaml', 'demo').version, '12.10');
});

test('missing required field', () => {
  throwsUsage(() => parseImageDef(minimal.replace('machine_type: machine\n', ''), 'demo/image.yaml', 'demo'), 'demo/image.yaml: field "machine_type" is required');
});

test('YAML syntax error carries a position', () => {
  try {
    parseImageDef('os: demo\nversion: [12\n', 'demo/image.yaml', 'demo');
    assert.unreachable();
  } catch (e) {
    assert.instance(e, UsageError);
    assert.match((e as Error).message, /^demo\/image\.yaml:\d+:\d+: YAML error: /);
  }
});

test('os must match the folder', () => {
  throwsUsage(() => parseImageDef(minimal, 'other/image.yaml', 'other'), 'other/image.yaml: field "os" is "demo" but the folder is "other"');
});

test('unknown OS lists the known ones', () => {
  try {
    loadImageDef('foo');
    assert.unreachable();
  } catch (e) {
    assert.instance(e, UsageError);
    assert.match((e as Error).message, /^unknown OS "foo" \(known: .*debian.*\)$/);
  }
  throwsUsage(() => loadImageDef('../etc'), `unknown OS "../etc" (known: ${listOsFolders().join(', ')})`);
});

test('every OS folder in the repository validates', () => {
  for (const os of listOsFolders()) {
    const d = loadImageDef(os);
    assert.is(d.os, os);
    for (const v of Object.keys(d.variants)) loadImageDef(os, v);
  }
});

test('tag and id', () => {
  assert.is(imageTag({ os: 'debian', version: '12' }), 'metal-images/debian:12');
  assert.is(imageName({ os: 'firewall', version: '3.0-ubuntu' }), 'firewall-3.0-ubuntu');
});

test.run();
