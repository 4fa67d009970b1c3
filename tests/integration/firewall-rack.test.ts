// The firewall in the rack: the Debian-based firewall (make firewall VARIANT=debian, built here by
// its helper when missing) provisioned as the metal-hammer does it, with the hammer's firewall
// install.yaml, booted once (the hammer's kexec), and traffic through it between a tenant host
// and an internet host behind two EVPN leaves (scripts/rack/evpn.ts, firewall.ts). Asserted from
// the consumers' side: the leaves' EVPN tables, the internet host's listener, the nft counter and
// kernel log droptailer reads, the VRF of chronyd and suricata-update. The Ubuntu-based firewall
// runs the same wherever its base can be had; here it says by name why it cannot.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { config } from '../../scripts/lib/config.ts';
import { loadImageDef } from '../../scripts/lib/image-def.ts';
import { run } from '../../scripts/lib/shell.ts';
import { FIREWALL, firewallPlan } from '../../scripts/rack/plan.ts';
import { ProvisionError, REPORT_FILE, runProvisionTest } from '../../scripts/rack/provision.ts';
import type { ProvisionReport } from '../../scripts/rack/report.ts';
import { planBase } from '../../scripts/steps/base.ts';
import { ensureFirewallDebianArtifact, FIREWALL_DEBIAN, FIREWALL_DEBIAN_DIR } from '../helpers/firewall.ts';
import { referenceFile } from '../helpers/reference.ts';

const HAMMER = join(config().binDir, 'rack-hammer');
let buildSeconds = 0;

test.before(async () => {
  buildSeconds = await ensureFirewallDebianArtifact();
  if (buildSeconds) console.log(`  make firewall VARIANT=debian (VM test skipped) took ${buildSeconds}s`);
});

test('rack-hammer writes a firewall install.yaml byte for byte as the hammer does (reference/hammer/firewall.yaml: vpn, firewall_rules)', async () => {
  const refText = readFileSync(referenceFile('hammer', 'firewall.yaml'), 'utf8');
  const ref = parse(refText) as Record<string, unknown> & { sshpublickey: string; root_uuid: string; timestamp: string; console: string };
  const machine = {
    hostname: ref.hostname, networks: ref.networks, machineuuid: ref.machineuuid, sshpubkeys: ref.sshpublickey.split('\n'), password: ref.password,
    nics: ref.nics, role: ref.role, dns_servers: ref.dns_servers, ntp_servers: ref.ntp_servers, userdata: '', vpn: ref['vpn'], firewall_rules: ref['firewall_rules'],
  };
  const out = await run([HAMMER, 'install-yaml', `--root-uuid=${ref.root_uuid}`, `--timestamp=${ref.timestamp}`, `--console=${ref.console}`], { input: JSON.stringify(machine) });
  assert.is(out.stdout, refText);
});

test('the rack\'s firewall allocation is the reference firewall.yaml\'s, except vpn and the resolver (named)', () => {
  const ref = parse(readFileSync(referenceFile('hammer', 'firewall.yaml'), 'utf8')) as Record<string, unknown>;
  const m = firewallPlan({ sshPublicKey: 'k', password: 'p', userdata: '' }) as unknown as Record<string, unknown>;
  for (const k of ['hostname', 'networks', 'machineuuid', 'role', 'firewall_rules', 'ntp_servers', 'nics']) assert.equal(m[k], ref[k], k);
  // differences, on purpose: no vpn (ssh would be admitted through tailscale only), the leaves' resolver
  assert.ok(ref['vpn'] && m['vpn'] === null);
  assert.equal(m['dns_servers'], [{ ip: '192.0.2.53' }]);
});

test('the Debian-based firewall in the rack: EVPN routes on both leaves, SNAT, drops counted and logged, no way in, chrony and suricata-update in the internet VRF', async () => {
  const t0 = performance.now();
  let failure: unknown = null;
  try {
    await runProvisionTest(FIREWALL_DEBIAN, FIREWALL_DEBIAN_DIR);
  } catch (e) {
    failure = e;
  }
  const seconds = Math.round((performance.now() - t0) / 1000);
  console.log(`  firewall rack wall time: ${seconds}s (build ${buildSeconds}s)`);
  assert.ok(existsSync(join(FIREWALL_DEBIAN_DIR, REPORT_FILE)), `no ${REPORT_FILE}: ${(failure as Error | null)?.message ?? ''}`);
  const r = JSON.parse(readFileSync(join(FIREWALL_DEBIAN_DIR, REPORT_FILE), 'utf8')) as ProvisionReport;
  if (failure) assert.instance(failure, ProvisionError);
  console.log(`  phases: ${JSON.stringify(r.phases)}`);
  assert.equal(r.boots.map((b) => b.kind), ['kexec']);
  const b = r.boots[0]!;
  const fw = b.firewall!;
  assert.ok(fw, 'the firewall checks ran');
  for (const e of fw.evpn) {
    console.log(`  ${e.leaf} (VNI ${e.vni}) show bgp l2vpn evpn, the firewall's routes:`);
    for (const x of e.routes.filter((x) => x.nextHop === FIREWALL.underlay.ip)) console.log(`    RD ${x.rd} ${x.route} via ${x.nextHop} ${x.path} ${x.extcommunity}`);
  }
  console.log(`  SNAT: the internet host's listener saw ${fw.snat.peersSeen.join(', ')}`);
  console.log(`  drop counter: ${fw.denied.counterBefore} → ${fw.denied.counterAfter}: ${fw.denied.rule}`);
  for (const l of [...fw.denied.logLines, ...fw.inbound.logLines]) console.log(`  ${l}`);
  console.log(`  verdict: ${JSON.stringify(r.verdict, null, 2)}`);

  assert.ok(fw.evpn.find((e) => e.leaf === 'leaf1')!.routes.some((x) => x.type === 5 && x.prefix === '0.0.0.0/0' && x.nextHop === FIREWALL.underlay.ip), 'leaf1 has the default route from the firewall');
  assert.ok(fw.evpn.find((e) => e.leaf === 'leaf2')!.routes.some((x) => x.type === 5 && x.prefix === `${FIREWALL.internet.ip}/32` && x.nextHop === FIREWALL.underlay.ip), 'leaf2 has the firewall\'s public address');
  assert.ok(fw.snat.connected, 'the tenant host reached the internet host on the allowed port');
  assert.equal([...new Set(fw.snat.peersSeen)], [FIREWALL.internet.ip], 'the internet host saw the SNAT address');
  assert.not.ok(fw.denied.connected, 'the port firewall_rules does not allow is dropped');
  assert.ok((fw.denied.counterAfter ?? 0) > (fw.denied.counterBefore ?? 0), 'and counted');
  assert.ok(fw.denied.logLines.length > 0, 'and logged under nftables-metal-dropped:');
  assert.not.ok(fw.inbound.connected, 'the internet host cannot open a connection into the tenant network');
  assert.is(fw.vrf.chronyd, `vrf${FIREWALL.internet.vrf}`);
  assert.equal(r.verdict.failed, [], `failures:\n${r.verdict.failed.join('\n')}`);
  assert.ok(r.verdict.ok);
});

test('the Ubuntu-based firewall in the rack: runs wherever its base can be had', async () => {
  const def = loadImageDef('firewall');
  let base = def;
  while (base.base.from) base = loadImageDef(base.base.from);
  const plan = await planBase(base);
  if (plan.kind === 'unavailable') {
    console.log(`  firewall-3.0-ubuntu rack test NOT RUN: ${plan.message}`);
    return;
  }
  // its base can be had: make firewall builds it and runs this rack as its VM test
  const { cli } = await import('../helpers/cli.ts');
  const r = await cli(['build', 'firewall'], { echo: true });
  assert.is(r.code, 0, `make firewall failed:\n${r.stderr.slice(-3000)}`);
  assert.match(r.stdout, /^vm test \(rack\)\s+\S+\s+\S+\s+ok\b/m, 'the rack ran as its VM test and passed');
});

test.run();
