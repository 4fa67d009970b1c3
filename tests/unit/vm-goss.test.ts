// goss output parsing, command lines, vars and the summary, against goss v0.4.9's real output.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  formatSummary, gossErrorLine, gossRenderArgv, yamlErrorAt, gossValidateArgv, gossVars, parseDurationSec, parseGossJson, parseJunit, testAdditions,
  GossOutputError,
} from '../../scripts/vm/goss.ts';

// `goss validate --format json` of tests/fixtures/goss/must-fail.yaml on a host without user metal
// (timestamps shortened): one pass, one failure, one skip (uid is skipped when the user is missing).
const FAILING =
  '{"results":[{"duration":41092,"end-time":"2026-11-25T22:22:38Z","err":null,"matcher-result":{"actual":false,"expected":true,"extra-elements":null,"found-elements":null,"message":"to equal","missing-elements":null,"transform-chain":null,"untransformed-value":null},"meta":null,"property":"exists","resource-id":"metal","resource-type":"User","result":1,"skipped":false,"start-time":"2026-11-25T22:22:38Z","successful":false,"summary-line":"User: metal: exists:\\nExpected\\n    false\\nto equal\\n    true","summary-line-compact":"User: metal: exists: Expected false to equal true","title":""},' +
  '{"duration":359,"end-time":"2026-11-25T22:22:38Z","err":null,"matcher-result":{"actual":null,"expected":null,"extra-elements":null,"found-elements":null,"message":"","missing-elements":null,"transform-chain":null,"untransformed-value":null},"meta":null,"property":"uid","resource-id":"metal","resource-type":"User","result":2,"skipped":true,"start-time":"2026-11-25T22:22:38Z","successful":true,"summary-line":"User: metal: uid: skipped","summary-line-compact":"User: metal: uid: skipped","title":""},' +
  '{"duration":3089,"end-time":"2026-11-25T22:22:38Z","err":null,"matcher-result":{"actual":true,"expected":true,"extra-elements":null,"found-elements":null,"message":"matches expectation","missing-elements":null,"transform-chain":null,"untransformed-value":null},"meta":null,"property":"exists","resource-id":"/etc/passwd","resource-type":"File","result":0,"skipped":false,"start-time":"2026-11-25T22:22:38Z","successful":true,"summary-line":"File: /etc/passwd: exists: matches expectation: true","summary-line-compact":"File: /etc/passwd: exists: matches expectation: true","title":""}],' +
  '"summary":{"failed-count":1,"skipped-count":1,"summary-line":"Count: 3, Failed: 1, Skipped: 1, Duration: 0.000s","test-count":3,"total-duration":128650}}';

const PASSING =
  '{"results":[{"duration":3089,"end-time":"2026-11-25T22:22:48Z","err":null,"matcher-result":{"actual":true,"expected":true,"extra-elements":null,"found-elements":null,"message":"matches expectation","missing-elements":null,"transform-chain":null,"untransformed-value":null},"meta":null,"property":"exists","resource-id":"/etc/passwd","resource-type":"File","result":0,"skipped":false,"start-time":"2026-11-25T22:22:48Z","successful":true,"summary-line":"File: /etc/passwd: exists: matches expectation: true","summary-line-compact":"File: /etc/passwd: exists: matches expectation: true","title":""}],' +
  '"summary":{"failed-count":0,"skipped-count":0,"summary-line":"Count: 1, Failed: 0, Skipped: 0, Duration: 0.000s","test-count":1,"total-duration":2500000000}}';

const json = suite('goss JSON');

json('a single failing run: counts, and one line per failure from summary-line-compact', () => {
  const r = parseGossJson(`${FAILING}\nError: timeout of 1s reached before tests entered a passing state\n`);
  assert.is(r.total, 3);
  assert.is(r.passed, 1);
  assert.is(r.failed, 1);
  assert.is(r.skipped, 1);
  assert.is(r.attempts, 1);
  assert.is(r.durationSec, 0.00012865);
  assert.equal(r.failures, [{ type: 'User', id: 'metal', property: 'exists', line: 'User: metal: exists: Expected false to equal true' }]);
  assert.is(r.json, FAILING);
});

json('with retries the last attempt is the verdict', () => {
  const stdout = `${FAILING}\nRetrying in 10s (elapsed/timeout time: 0.012s/150s)\n\n\nAttempt #2:\n${PASSING}\n`;
  const r = parseGossJson(stdout);
  assert.is(r.attempts, 2);
  assert.is(r.total, 1);
  assert.is(r.passed, 1);
  assert.is(r.failed, 0);
  assert.equal(r.failures, []);
  assert.is(r.durationSec, 2.5);
});

json('failures are sorted and folded to one line', () => {
  const doc = JSON.stringify({
    results: [
      { 'resource-type': 'Service', 'resource-id': 'frr', property: 'running', successful: false, skipped: false, 'summary-line-compact': 'Service: frr: running: Expected false to equal true' },
      { 'resource-type': 'Command', 'resource-id': 'no failed units', property: 'stdout', successful: false, skipped: false, 'summary-line-compact': 'Command: no failed units: stdout: Expected "x.service loaded failed failed X\\n"   to equal ""' },
    ],
    summary: { 'test-count': 2, 'failed-count': 2, 'skipped-count': 0, 'total-duration': 1e9 },
  });
  assert.equal(parseGossJson(doc).failures.map((f) => f.line), [
    'Command: no failed units: stdout: Expected "x.service loaded failed failed X\\n" to equal ""',
    'Service: frr: running: Expected false to equal true',
  ]);
});

json('no JSON at all is an error that quotes what goss said', () => {
  for (const [out, msg] of [
    ['', 'goss printed no JSON result'],
    ['Error: file error: open /var/tmp/metal-vmtest/x.yaml: no such file or directory\n', 'goss printed no JSON result: Error: file error: open /var/tmp/metal-vmtest/x.yaml: no such file or directory'],
  ] as const) {
    try {
      parseGossJson(out);
      assert.unreachable('parsed');
    } catch (e) {
      assert.instance(e, GossOutputError);
      assert.is((e as Error).message, msg);
    }
  }
});
json.run();

const JUNIT = `<?xml version="1.0" encoding="UTF-8"?>
<testsuite name="goss" errors="0" tests="3" failures="1" skipped="1" time="0.000" timestamp="2026-11-25T22:22:38Z">
<testcase name="File /etc/passwd exists" time="0.000">
<system-out>File: /etc/passwd: exists: matches expectation: true</system-out>
</testcase>
<testcase name="User metal exists" time="0.000">
<system-err>User: metal: exists: Expected false to equal true</system-err>
<failure>User: metal: exists: Expected false to equal true</failure>
</testcase>
<testcase name="User metal uid" time="0.000">
<skipped/><system-out>User: metal: uid: skipped</system-out>
</testcase>
</testsuite>
`;

const junit = suite('goss JUnit');

junit('counts and failing test cases', () => {
  const r = parseJunit(JUNIT);
  assert.equal({ tests: r.tests, failures: r.failures, skipped: r.skipped, failing: r.failing }, { tests: 3, failures: 1, skipped: 1, failing: ['User metal exists'] });
  assert.is(r.xml, JUNIT);
});

junit('the last suite when goss printed one per attempt; entities decoded in names', () => {
  const second = `<?xml version="1.0" encoding="UTF-8"?>
<testsuite name="goss" errors="0" tests="1" failures="1" skipped="0" time="0.002" timestamp="2026-11-25T22:22:48Z">
<testcase name="Command listeners &lt;tcp&gt; &#34;22&#34; stdout" time="0.000">
<system-err>Command: listeners: stdout: Expected &#34;22 179\\n&#34; to equal &#34;22\\n&#34;</system-err>
<failure>Command: listeners: stdout: Expected &#34;22 179\\n&#34; to equal &#34;22\\n&#34;</failure>
</testcase>
</testsuite>
`;
  const r = parseJunit(`${JUNIT}Retrying in 10s (elapsed/timeout time: 0.001s/150s)\n\n\nAttempt #2:\n${second}`);
  assert.equal({ tests: r.tests, failures: r.failures, failing: r.failing }, { tests: 1, failures: 1, failing: ['Command listeners <tcp> "22" stdout'] });
  assert.is(r.xml, second);
});

junit('no suite is an error', () => {
  assert.throws(() => parseJunit('Error: yaml: line 3: did not find expected key\n'), (e: Error) => e instanceof GossOutputError && e.message === 'goss printed no JUnit test suite: Error: yaml: line 3: did not find expected key');
});
junit.run();

const cmd = suite('goss command lines, vars, errors');

cmd('validate: JSON with retries, JUnit as one pass; render on the host', () => {
  assert.equal(gossValidateArgv('/var/tmp/metal-vmtest/debian-goss.yaml', 'json', { retryTimeout: '150s', sleep: '10s' }), [
    '/var/tmp/metal-vmtest/goss', '--gossfile', '/var/tmp/metal-vmtest/debian-goss.yaml', 'validate', '--no-color', '--format', 'json', '--retry-timeout', '150s', '--sleep', '10s',
  ]);
  assert.equal(gossValidateArgv('/s.yaml', 'json', { retryTimeout: '0s', sleep: '10s' }), ['/var/tmp/metal-vmtest/goss', '--gossfile', '/s.yaml', 'validate', '--no-color', '--format', 'json']);
  assert.equal(gossValidateArgv('/s.yaml', 'junit'), ['/var/tmp/metal-vmtest/goss', '--gossfile', '/s.yaml', 'validate', '--no-color', '--format', 'junit']);
  assert.equal(gossRenderArgv('/r/.state/bin/goss', '/r/debian/goss.yaml', '/r/.state/vm/x/vars.yaml'), ['/r/.state/bin/goss', '--gossfile', '/r/debian/goss.yaml', '--vars', '/r/.state/vm/x/vars.yaml', 'render']);
});

cmd('durations', () => {
  assert.is(parseDurationSec('150s'), 150);
  assert.is(parseDurationSec('2m'), 120);
  assert.is(parseDurationSec('1m30s'), 90);
  assert.is(parseDurationSec('0s'), 0);
  assert.throws(() => parseDurationSec(''), /is not a duration/);
  assert.throws(() => parseDurationSec('10'), /is not a duration/);
  assert.throws(() => parseDurationSec('1h'), /is not a duration/);
});

cmd("goss's error line without its timestamp", () => {
  assert.is(gossErrorLine('2026/11/25 22:13:04 yaml: line 1: did not find expected key\n'), 'yaml: line 1: did not find expected key');
  assert.is(gossErrorLine('2026/11/25 22:13:04 could not read json data in bad.yaml: yaml: line 1: did not find expected key'), 'could not read json data in bad.yaml: yaml: line 1: did not find expected key');
  assert.is(gossErrorLine('2026/11/25 22:13:04 template: test:2:9: executing "test" at <.Vars.nope>: map has no entry for key "nope"\n'), 'template: test:2:9: executing "test" at <.Vars.nope>: map has no entry for key "nope"');
  assert.is(gossErrorLine(''), 'goss failed without a message');
});

cmd('vars and test-only additions', () => {
  assert.equal(
    gossVars({ os: 'debian', version: '12', machineType: 'machine', sudoGroup: 'sudo', kernel: '6.1.0-56-amd64', initrd: 'initrd.img-6.1.0-56-amd64', sysctl: { 'kernel.printk': '^2\\s+4\\s+1\\s+7$' } }),
    { os: 'debian', version: '12', machine_type: 'machine', sudo_group: 'sudo', kernel: '6.1.0-56-amd64', initrd: 'initrd.img-6.1.0-56-amd64', dns_name: 'deb.debian.org', sysctl: { 'kernel.printk': '^2\\s+4\\s+1\\s+7$' }, installed: false, rebooted: false },
  );
  const a = testAdditions('ssh-ed25519 AAAAC3Nza metal-vmtest-debian-12\n');
  assert.equal(a.map((x) => [x.path, x.mode]), [['/root/.ssh/authorized_keys', '0600'], ['/etc/ssh/sshd_config.d/00-metal-vmtest.conf', '0600'], ['/etc/systemd/network/90-metal-vmtest.network', '0644'], ['/etc/resolv.conf', '0644']]);
  assert.is(a[0]!.content, 'ssh-ed25519 AAAAC3Nza metal-vmtest-debian-12\n');
  assert.is(a[1]!.content, '# metal-images VM test only: root by key, for the tooling (the image allows only metal)\nPermitRootLogin prohibit-password\nAllowUsers metal root\nAllowGroups sudo wheel root\n');
  assert.is(a[2]!.content, '# metal-images VM test only: DHCP on the QEMU NIC (the installer writes the real network)\n[Match]\nName=en* eth*\n\n[Network]\nDHCP=ipv4\nIPv6AcceptRA=no\n');
  assert.is(a[3]!.content, '# metal-images VM test only (the installer writes the real one)\nnameserver 10.0.2.3\n');
});

cmd('summary: verdict, timings, accelerator, one line per failure, additions', () => {
  const report = parseGossJson(FAILING);
  assert.is(
    formatSummary({
      label: 'debian-12 (tests/fixtures/goss/must-fail.yaml)',
      report,
      gossSeconds: 12.34,
      bootSeconds: 98.76,
      settleSeconds: 20.01,
      systemState: 'running',
      accel: 'tcg (the CPU has no vmx/svm flag)',
      additions: testAdditions('k'),
      results: ['images/debian/12/goss.xml', 'images/debian/12/goss.json'],
    }),
    [
      'vm test debian-12 (tests/fixtures/goss/must-fail.yaml): FAIL — 1 checks passed, 1 failed, 1 skipped',
      '  boot-to-ssh 98.8s, settle 20.0s (running), goss 12.3s (1 attempt), accelerator tcg (the CPU has no vmx/svm flag)',
      '  FAIL User: metal: exists: Expected false to equal true',
      '  test-only additions (scratch copy only): /root/.ssh/authorized_keys, /etc/ssh/sshd_config.d/00-metal-vmtest.conf, /etc/systemd/network/90-metal-vmtest.network, /etc/resolv.conf',
      '  results: images/debian/12/goss.xml, images/debian/12/goss.json',
    ].join('\n'),
  );
});
cmd.run();

const yamlErr = suite('spec YAML errors');

yamlErr('the line of the first YAML error, or null', () => {
  assert.equal(yamlErrorAt('file:\n  /etc/passwd:\n    exists: true\n   mode: "0644"\n'), { line: 4, message: 'All mapping items must start at the same column' });
  assert.equal(yamlErrorAt('file:\n  /etc/passwd:\n    exists: true\n'), null);
  assert.equal(yamlErrorAt('a: [1, 2\n'), { line: 2, message: 'Flow sequence in block collection must be sufficiently indented and end with a ]' });
});
yamlErr.run();
