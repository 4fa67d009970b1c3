// The firewall rack: the two leaves speak BGP EVPN to the firewall and each has one tenant VNI
// behind it, the way a metal-stack leaf carries a tenant's VRF (an L3 VNI, type-5 routes):
//
//               leaf1 (AS 4200000001)                                leaf2 (AS 4200000002)
//   tenant host ── host0 ─ br3981 ─ vni3981 ─┐                ┌─ vni104009 ─ br104009 ─ host0 ── internet host
//   10.0.17.10/24  10.0.17.1/24 (VTEP 10.0.12.1)              (VTEP 10.0.12.2) 203.0.113.1/24   203.0.113.10/24
//                              Ethernet3 ─── lan0  firewall VM  lan1 ─── Ethernet3
//                                      (BGP unnumbered, ipv4 unicast + l2vpn evpn, VXLAN 4789)
//
// A leaf's namespace is its VRF: the host kernel here has no VRF devices, so each leaf carries its
// one tenant VNI as FRR's L3 VNI of the default VRF (zebra's top-level `vni`), with the bridge as
// its SVI. The underlay routes (the VTEP /32s) and the overlay prefixes never mix on the wire: the
// underlay session only carries the VTEP (and the leaves' anycast resolver), EVPN only the host's prefix (and on leaf2 the default
// route, the internet exit). The route targets are the firewall's auto-derived ones (the low two
// bytes of its AS, then the VNI), so the firewall imports the leaves' routes and they its own.
// Pure renderers and parsers here; leaf.ts starts the daemons, provision.ts runs the checks.
import { ANYCAST_DNS, type LeafPlan } from './plan.ts';

export interface EvpnHost {
  /** Suffix of the host's namespace name (plan.ts runNames). */
  role: 'tenant' | 'internet';
  /** The leaf's address on the host link (the host's gateway), with prefix length. */
  leafAddr: string;
  /** The host's address, with prefix length. */
  hostAddr: string;
}

export interface EvpnLeafPlan {
  vni: number;
  /** The leaf's VTEP (its underlay loopback): in 10.0.0.0/8, where the firewall accepts VXLAN from. */
  vtep: string;
  /** Route target, import and export: the firewall's auto-derived one for this VNI. */
  rt: string;
  host: EvpnHost;
  /** Prefixes the leaf originates as type-5 routes (the host's subnet; leaf2 also the default route). */
  advertise: string[];
}

/** Pure: the route target FRR derives for a VNI: the low two bytes of the AS, then the VNI (RFC 8365 style, as Cumulus documents it). */
export function autoRouteTarget(asn: number, vni: number): string {
  return `${asn % 65536}:${vni}`;
}

export const TENANT_HOST = '10.0.17.10';
export const INTERNET_HOST = '203.0.113.10';

/** Pure: the EVPN side of the two leaves for a firewall with these VRFs (tenant = the private primary, internet = the nat network with the default route). */
export function evpnLeaves(o: { asn: number; tenantVni: number; internetVni: number }): Record<LeafPlan['name'], EvpnLeafPlan> {
  return {
    leaf1: { vni: o.tenantVni, vtep: '10.0.12.1', rt: autoRouteTarget(o.asn, o.tenantVni), host: { role: 'tenant', leafAddr: '10.0.17.1/24', hostAddr: `${TENANT_HOST}/24` }, advertise: ['10.0.17.0/24'] },
    leaf2: { vni: o.internetVni, vtep: '10.0.12.2', rt: autoRouteTarget(o.asn, o.internetVni), host: { role: 'internet', leafAddr: '203.0.113.1/24', hostAddr: `${INTERNET_HOST}/24` }, advertise: ['203.0.113.0/24', '0.0.0.0/0'] },
  };
}

/** Pure: zebra of an EVPN leaf: the VNI as L3 VNI of the default VRF, RAs on the port. */
export function evpnZebraConf(leaf: LeafPlan, evpn: EvpnLeafPlan, port: string): string {
  return [
    `hostname ${leaf.name}`,
    'log stdout informational',
    `vni ${evpn.vni}`,
    '!',
    `interface ${port}`,
    ' ipv6 nd ra-interval 6',
    ' no ipv6 nd suppress-ra',
    '!',
    '',
  ].join('\n');
}

/**
 * Pure: the head every leaf's bgpd.conf starts with (a machine's leaf and a firewall's EVPN
 * leaf): one unnumbered external peer on `port`, up to `address-family ipv4 unicast` with the
 * router id and the anycast resolver announced.
 */
export function bgpdHead(leaf: LeafPlan, routerId: string, port: string): string[] {
  return [
    `hostname ${leaf.name}`,
    'log stdout informational',
    '!',
    `router bgp ${leaf.asn}`,
    ` bgp router-id ${routerId}`,
    ' no bgp ebgp-requires-policy',
    ' no bgp network import-check',
    ' bgp bestpath as-path multipath-relax',
    ` neighbor ${port} interface remote-as external`,
    ` neighbor ${port} timers 2 8`,
    ' !',
    ' address-family ipv4 unicast',
    `  network ${routerId}/32`,
    `  network ${ANYCAST_DNS}/32`,
  ];
}

/** Pure: bgpd of an EVPN leaf: one unnumbered peer (the firewall) for the underlay and EVPN. */
export function evpnBgpdConf(leaf: LeafPlan, evpn: EvpnLeafPlan, port: string): string {
  return [
    ...bgpdHead(leaf, evpn.vtep, port),
    ...evpn.advertise.map((p) => `  network ${p}`),
    `  neighbor ${port} route-map UNDERLAY-OUT out`,
    ' exit-address-family',
    ' !',
    ' address-family l2vpn evpn',
    `  neighbor ${port} activate`,
    '  advertise-all-vni',
    '  advertise ipv4 unicast route-map OVERLAY-OUT',
    `  route-target import ${evpn.rt}`,
    `  route-target export ${evpn.rt}`,
    ' exit-address-family',
    '!',
    `ip prefix-list UNDERLAY seq 10 permit ${evpn.vtep}/32`,
    `ip prefix-list UNDERLAY seq 20 permit ${ANYCAST_DNS}/32`,
    ...evpn.advertise.map((p, i) => `ip prefix-list OVERLAY seq ${10 + i} permit ${p}`),
    'route-map UNDERLAY-OUT permit 10',
    ' match ip address prefix-list UNDERLAY',
    'route-map OVERLAY-OUT permit 10',
    ' match ip address prefix-list OVERLAY',
    '!',
    '',
  ].join('\n');
}

/** Pure: the commands (argv lists) that make a leaf's VTEP, VNI bridge and host link, and the host's namespace. */
export function evpnSetup(evpn: EvpnLeafPlan, leafNs: string, hostNs: string): string[][] {
  const br = `br${evpn.vni}`;
  const vx = `vni${evpn.vni}`;
  const gw = evpn.host.leafAddr.split('/')[0]!;
  return [
    ['ip', '-n', leafNs, 'address', 'add', `${evpn.vtep}/32`, 'dev', 'lo'],
    ['ip', '-n', leafNs, 'link', 'add', br, 'type', 'bridge'],
    ['ip', '-n', leafNs, 'link', 'set', br, 'addrgenmode', 'none', 'up'],
    ['ip', '-n', leafNs, 'link', 'add', vx, 'type', 'vxlan', 'id', String(evpn.vni), 'local', evpn.vtep, 'dstport', '4789', 'nolearning'],
    ['ip', '-n', leafNs, 'link', 'set', vx, 'master', br, 'addrgenmode', 'none', 'up'],
    ['ip', 'netns', 'exec', leafNs, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1'],
    ['ip', '-n', hostNs, 'link', 'set', 'lo', 'up'],
    ['ip', 'link', 'add', 'host0', 'netns', leafNs, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', hostNs],
    ['ip', '-n', leafNs, 'address', 'add', evpn.host.leafAddr, 'dev', 'host0'],
    ['ip', '-n', leafNs, 'link', 'set', 'host0', 'up'],
    ['ip', '-n', hostNs, 'address', 'add', evpn.host.hostAddr, 'dev', 'eth0'],
    ['ip', '-n', hostNs, 'link', 'set', 'eth0', 'up'],
    ['ip', '-n', hostNs, 'route', 'add', 'default', 'via', gw],
  ];
}

export interface EvpnRoute {
  /** Route distinguisher of the block the route is in. */
  rd: string;
  /** 2, 3 or 5. */
  type: number;
  /** The prefix as FRR prints it, e.g. "[5]:[0]:[32]:[185.1.2.3]". */
  route: string;
  /** For type-5: the IP prefix ("185.1.2.3/32"). */
  prefix: string;
  nextHop: string;
  /** Metric, weight and AS path as FRR prints them ("0 0 4200003073 i"). */
  path: string;
  /** Extended communities line (RT, ET, Rmac). */
  extcommunity: string;
  best: boolean;
}

/** Pure: the routes of `show bgp l2vpn evpn` (text: RD blocks, a route line, the next hop line, the extcommunity line). */
export function parseEvpnRoutes(text: string): EvpnRoute[] {
  const out: EvpnRoute[] = [];
  let rd = '';
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    const m = /^Route Distinguisher: (\S+)/.exec(l);
    if (m) {
      rd = m[1]!;
      continue;
    }
    const r = /^([*>=\s]{1,4})\s*(\[(\d)\]:\S+)/.exec(l);
    if (!r || !rd) continue;
    // the path's lines up to the next route: the next hop (FRR wraps the metrics onto their own
    // line when the next hop's host name is long), the metrics and AS path, the extcommunities
    const block: string[] = [];
    for (let j = i + 1; j < lines.length; j++) {
      const t = lines[j]!;
      if (!t.trim() || /^Route Distinguisher:/.test(t) || /^[*>=\s]{1,4}\s*\[\d\]:/.test(t) || /^Displayed /.test(t)) break;
      block.push(t.trim());
    }
    const route = r[2]!;
    const type = Number(r[3]);
    let prefix = '';
    const p5 = /^\[5\]:\[\d+\]:\[(\d+)\]:\[([^\]]+)\]/.exec(route);
    if (p5) prefix = `${p5[2]}/${p5[1]}`;
    const ext = block.find((x) => /RT:|ET:|Rmac:/.test(x)) ?? '';
    const nonExt = block.filter((x) => x !== ext).join(' ');
    const nh = /^(\S+?)(?:\(\S+\))?(?:\s+(.*))?$/.exec(nonExt);
    out.push({ rd, type, route, prefix, nextHop: nh?.[1] ?? '', path: (nh?.[2] ?? '').replace(/\s+/g, ' ').trim(), extcommunity: ext, best: r[1]!.includes('>') });
  }
  return out;
}

/** Pure: the value of the counter of the forward chain's log rule (`nft list chain inet metal forward`). */
export function parseDropCounter(chain: string): { packets: number; bytes: number; rule: string } | null {
  const l = chain.split('\n').find((x) => x.includes('log prefix "nftables-metal-dropped: "'));
  const m = l ? /counter packets (\d+) bytes (\d+)/.exec(l) : null;
  return m ? { packets: Number(m[1]), bytes: Number(m[2]), rule: l!.trim() } : null;
}

/** Pure: the kernel's log lines of nftables drops (journal text) for one source, destination and port. */
export function dropLogLines(journal: string, o: { src: string; dst: string; dport: number }): string[] {
  return journal.split('\n').filter((l) => l.includes('nftables-metal-dropped: ') && l.includes(`SRC=${o.src} `) && l.includes(`DST=${o.dst} `) && l.includes(`DPT=${o.dport} `));
}
