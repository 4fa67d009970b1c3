// Pure parts of the firewall rack (scripts/rack/evpn.ts, plan.ts): the leaves' EVPN configuration,
// the route targets, the firewall's allocation, and the parsers of what FRR and nft print.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { autoRouteTarget, dropLogLines, evpnBgpdConf, evpnLeaves, evpnSetup, evpnZebraConf, parseDropCounter, parseEvpnRoutes } from '../../scripts/rack/evpn.ts';
import { FIREWALL, firewallPlan, firewallRackAdditions, LEAVES } from '../../scripts/rack/plan.ts';

const evpn = evpnLeaves({ asn: FIREWALL.asn, tenantVni: 3981, internetVni: 104009 });

test('route targets: the low two bytes of the AS and the VNI, as FRR derives them', () => {
  assert.is(autoRouteTarget(4200003073, 3981), '62977:3981');
  assert.is(autoRouteTarget(65000, 104009), '65000:104009');
  assert.is(evpn.leaf1.rt, '62977:3981');
  assert.is(evpn.leaf2.rt, '62977:104009');
});

test('EVPN leaves: the VNI as L3 VNI of the default VRF, the VTEP in the underlay, overlay and underlay kept apart', () => {
  const z = evpnZebraConf(LEAVES[0]!, evpn.leaf1, 'Ethernet3');
  assert.match(z, /^vni 3981$/m);
  assert.match(z, /^interface Ethernet3\n ipv6 nd ra-interval 6\n no ipv6 nd suppress-ra$/m);
  const b = evpnBgpdConf(LEAVES[1]!, evpn.leaf2, 'Ethernet3');
  assert.match(b, /^router bgp 4200000002$/m);
  assert.match(b, /^ neighbor Ethernet3 interface remote-as external$/m);
  assert.match(b, /^  advertise-all-vni\n  advertise ipv4 unicast route-map OVERLAY-OUT\n  route-target import 62977:104009\n  route-target export 62977:104009$/m);
  assert.match(b, /^  network 0\.0\.0\.0\/0$/m);
  assert.match(b, /^ip prefix-list OVERLAY seq 11 permit 0\.0\.0\.0\/0$/m);
  assert.match(b, /^ip prefix-list UNDERLAY seq 10 permit 10\.0\.12\.2\/32$/m);
  assert.not.match(b, /UNDERLAY seq \d+ permit 203\./);
  const cmds = evpnSetup(evpn.leaf1, 'L', 'H').map((c) => c.join(' '));
  assert.ok(cmds.includes('ip -n L link add vni3981 type vxlan id 3981 local 10.0.12.1 dstport 4789 nolearning'));
  assert.ok(cmds.includes('ip -n L link set vni3981 master br3981 addrgenmode none up'));
  assert.ok(cmds.includes('ip -n H route add default via 10.0.17.1'));
});

test('the firewall allocation: the reference firewall.yaml values, without vpn, with firewall_rules', () => {
  const m = firewallPlan({ sshPublicKey: 'ssh-ed25519 AAA k\n', password: 'pw', userdata: '' });
  assert.is(m.role, 'firewall');
  assert.equal(m.networks.map((n) => [n['vrf'], n['ips'], n['nat'], n['networktype']]), [[3981, ['10.0.16.2'], false, 'privateprimaryunshared'], [104009, ['185.1.2.3'], true, 'external'], [0, ['10.1.0.1'], false, 'underlay']]);
  assert.is(m.vpn, null);
  assert.equal(m.firewall_rules!.egress[0]!.ports, [443]);
  assert.ok(firewallRackAdditions().some((a) => a.path === '/etc/suricata/update.yaml' && a.content.includes('http://203.0.113.10:80/rules.tar.gz')));
});

// FRR 8.4.4's `show bgp l2vpn evpn` (captured from two such leaves in namespaces)
const SHOW = `BGP table version is 4, local router ID is 10.0.12.1
Status codes: s suppressed, d damped, h history, * valid, > best, i - internal
EVPN type-5 prefix: [5]:[EthTag]:[IPlen]:[IP]

   Network          Next Hop            Metric LocPrf Weight Path
Route Distinguisher: 10.0.12.1:1
*> [5]:[0]:[24]:[10.0.17.0]
                    10.0.12.1(vm)            0         32768 i
                    ET:8 RT:62977:5000 Rmac:6e:1e:3e:ba:d7:9a
Route Distinguisher: 10.1.0.1:3
*> [5]:[0]:[32]:[10.0.16.2]
                    10.1.0.1(firewall)       0             0 4200003073 ?
                    RT:62977:3981 ET:8 Rmac:96:ba:8d:73:a1:2b

Route Distinguisher: 10.0.12.2:1
*> [5]:[0]:[0]:[0.0.0.0]
                    10.0.12.2(leaf2)
                                             0             0 4200000002 i
                    ET:8 RT:62977:104009 Rmac:0e:4a:c2:39:40:a6

Displayed 3 out of 3 total prefixes
`;

test('parseEvpnRoutes: RD, type, prefix, next hop, path and extended communities', () => {
  const r = parseEvpnRoutes(SHOW);
  assert.is(r.length, 3);
  assert.equal(r[1], { rd: '10.1.0.1:3', type: 5, route: '[5]:[0]:[32]:[10.0.16.2]', prefix: '10.0.16.2/32', nextHop: '10.1.0.1', path: '0 0 4200003073 ?', extcommunity: 'RT:62977:3981 ET:8 Rmac:96:ba:8d:73:a1:2b', best: true });
  assert.is(r[0]!.prefix, '10.0.17.0/24');
  assert.equal(r[0]!.path, '0 32768 i');
  // the metrics wrapped onto their own line after a long next-hop name
  assert.equal(r[2], { rd: '10.0.12.2:1', type: 5, route: '[5]:[0]:[0]:[0.0.0.0]', prefix: '0.0.0.0/0', nextHop: '10.0.12.2', path: '0 0 4200000002 i', extcommunity: 'ET:8 RT:62977:104009 Rmac:0e:4a:c2:39:40:a6', best: true });
  assert.equal(parseEvpnRoutes(''), []);
});

test('parseDropCounter and dropLogLines: the log rule of the forward chain and the kernel lines', () => {
  const chain = `table inet metal {
\tchain forward {
\t\tct state established,related counter packets 12 bytes 900 accept comment "stateful forward"
\t\tlimit rate 2/minute burst 5 packets counter packets 3 bytes 180 log prefix "nftables-metal-dropped: "
\t}
}`;
  assert.equal(parseDropCounter(chain), { packets: 3, bytes: 180, rule: 'limit rate 2/minute burst 5 packets counter packets 3 bytes 180 log prefix "nftables-metal-dropped: "' });
  assert.is(parseDropCounter('table inet metal {}'), null);
  const j = '2026-12-02T05:00:00+0000 firewall kernel: nftables-metal-dropped: IN=vlan3981 OUT=vlan104009 SRC=10.0.17.10 DST=203.0.113.10 LEN=60 PROTO=TCP SPT=40000 DPT=8080 WINDOW=64240 SYN \n'
    + '2026-12-02T05:00:01+0000 firewall kernel: nftables-metal-dropped: IN=vlan3981 OUT=vlan104009 SRC=10.0.17.10 DST=203.0.113.10 LEN=60 PROTO=TCP SPT=40000 DPT=80800 SYN \n';
  assert.is(dropLogLines(j, { src: '10.0.17.10', dst: '203.0.113.10', dport: 8080 }).length, 1);
  assert.is(dropLogLines(j, { src: '203.0.113.10', dst: '10.0.17.10', dport: 8080 }).length, 0);
});


test('firewallSummary: the build record keeps the firewall\'s EVPN prefixes per leaf, the SNAT source, the drop counter', async () => {
  const { firewallSummary } = await import('../../scripts/steps/provision.ts');
  const routes = parseEvpnRoutes(SHOW);
  const s = firewallSummary({
    evpn: [{ leaf: 'leaf1', vni: 3981, routes, text: SHOW }],
    snat: { port: 443, connected: true, reply: 'hello 185.1.2.3', peersSeen: ['185.1.2.3'] },
    denied: { port: 8080, connected: false, counterBefore: 0, counterAfter: 2, rule: '', logLines: [] },
    inbound: { port: 443, connected: false, logLines: [], leaf2Route: '' },
    vrf: { chronyd: 'vrf104009', suricataUpdate: { result: 'success', rulesFetchedBy: [], sidInstalled: true, journal: '' }, suricata: { vrfOrIface: '', alert: 'x' } },
  });
  assert.equal(s, { evpn: { leaf1: ['10.0.16.2/32'] }, snatSourceSeen: '185.1.2.3', dropCounter: [0, 2], chronydVrf: 'vrf104009', suricataAlert: true });
});

test.run();
