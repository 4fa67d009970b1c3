"""A firewall's configuration (docs/contract.md §9), as pure functions of the parsed install.yaml.

A metal-stack firewall joins the tenant's private networks, shared networks and the internet over
EVPN/VXLAN to the leaves:

- systemd-networkd: a VLAN-aware bridge; per network (except the underlay) a VRF with its own
  table, an SVI (VLAN device on the bridge, in the VRF, with the firewall's addresses) and a VXLAN
  device (VNI = VRF id, local address = the underlay IP) bridged into that VLAN;
- FRR: EVPN with the leaves in the default VRF (peer group FABRIC, advertise-all-vni), one BGP
  instance per VRF, and route leaking between the VRFs with `import vrf`, an import route-map per
  VRF and prefix-lists naming what may come from where;
- nftables (/etc/nftables/rules): input policy drop, forward policy drop with the firewall_rules,
  SNAT out of every network with `nat: true`, optionally the DNS proxy's DNAT;
- the add-ons' units: node_exporter, nftables-exporter, suricata(-update), droptailer,
  firewall-controller, tailscale(d), each in the VRF it talks through.

The layout is metal-networker's (the library upstream's installer used), so a firewall installed
from this image looks to the firewall-controller, the leaves and an operator like one of upstream's:
tests/installer/test_firewall_conformance.py compares everything rendered here with
metal-networker's own outputs for its nine firewall inputs, and lists what still differs and why.
No file system access and no commands here; steps.py puts the texts in place.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from .config import InputError, Install, Network
from .render import HEADER, MTU

# metal-api network types (metal-lib pkg/net)
PRIMARY_UNSHARED = "privateprimaryunshared"
PRIMARY_SHARED = "privateprimaryshared"
SECONDARY_SHARED = "privatesecondaryshared"
EXTERNAL = "external"
UNDERLAY = "underlay"
PRIVATE_TYPES = (PRIMARY_UNSHARED, PRIMARY_SHARED, SECONDARY_SHARED)
ROUTED_TYPES = PRIVATE_TYPES + (EXTERNAL,)

DEFAULT_ROUTES = ("0.0.0.0/0", "::/0")

# Per network: VLAN id of the SVI and routing table of the VRF, counted by position in install.yaml.
VLAN_OFFSET = 1000
EVPN_MTU = 9000  # bridge, SVIs and VXLANs: the fabric MTU (9216 on the lan links) minus VXLAN's overhead
VXLAN_PORT = 4789
# The underlay's VTEP addresses (the leaves' and this firewall's loopbacks) are in 10/8 in every
# metal-stack partition; VXLAN is accepted from there only.
UNDERLAY_RANGE = "10.0.0.0/8"
# Uplinks to the two leaves: the first two NICs speak BGP unnumbered and carry the VXLANs.
UPLINKS = 2
# Import prefix-lists are numbered from here (metal-networker's IPPrefixListSeqSeed), route-map
# entries in steps of 10.
PREFIX_LIST_SEQ = 100
ROUTE_MAP_STEP = 10
NO_EXPORT = "-no-export"

RULES_PATH = "/etc/nftables/rules"
# Public resolvers whose queries the DNS proxy answers (metal-networker's proxy_dns_servers).
PROXY_DNS_V4 = ("8.8.8.8", "8.8.4.4", "1.1.1.1", "1.0.0.1")
PROXY_DNS_V6 = ("2001:4860:4860::8888", "2001:4860:4860::8844", "2606:4700:4700::1111", "2606:4700:4700::1001")
# Conntrack zone of DNS traffic through the proxy: a query leaking from a private VRF into the
# internet VRF was otherwise tracked twice.
DNS_ZONE = 3
NODE_METRICS_PORT = 9100
NFTABLES_METRICS_PORT = 9630
TAILSCALED_PORT = 41641
DROP_LOG_PREFIX = "nftables-metal-dropped: "


# ---- the networks of a firewall -----------------------------------------------------------------


def network_type(n: Network) -> str:
    """install.yaml's networktype; hammers before it existed only set private and underlay."""
    if n.networktype:
        return n.networktype
    if n.underlay:
        return UNDERLAY
    return PRIMARY_UNSHARED if n.private else EXTERNAL


def networks_of(inst: Install, *types: str) -> List[Network]:
    """The networks of the given types, grouped by type in the order given, each group in
    install.yaml's order (the order in which metal-networker lays out VRFs and rules)."""
    return [n for t in types for n in inst.networks if network_type(n) == t]


def vrf_name(n: Network) -> str:
    return f"vrf{n.vrf}"


def svi_name(n: Network) -> str:
    return f"vlan{n.vrf}"


def vxlan_name(n: Network) -> str:
    return f"vni{n.vrf}"


def has_default_route(n: Network) -> bool:
    return any(p in DEFAULT_ROUTES for p in n.destinationprefixes)


def primary_network(inst: Install) -> Network:
    return networks_of(inst, PRIMARY_UNSHARED, PRIMARY_SHARED)[0]


def underlay(inst: Install) -> Network:
    return networks_of(inst, UNDERLAY)[0]


def default_route_network(inst: Install) -> Optional[Network]:
    """The network the firewall reaches the internet through: the first external network with a
    default route, else the first shared private network with one (a DMZ)."""
    for n in networks_of(inst, EXTERNAL) + networks_of(inst, SECONDARY_SHARED):
        if has_default_route(n):
            return n
    return None


def default_route_vrf(inst: Install) -> Optional[str]:
    n = default_route_network(inst)
    return vrf_name(n) if n else None


def is_dmz(n: Network) -> bool:
    return network_type(n) == SECONDARY_SHARED and has_default_route(n)


def uplinks(inst: Install) -> List[str]:
    return [f"lan{i}" for i in range(min(UPLINKS, len(inst.nics)))]


def check(inst: Install, file: str = "/etc/metal/install.yaml") -> None:
    """What a firewall needs beyond what every install.yaml needs; raises InputError."""
    unders = networks_of(inst, UNDERLAY)
    if len(unders) != 1:
        raise InputError(f"{file}: {len(unders)} underlay networks: a firewall needs exactly one (its VTEP address and BGP AS)")
    seen: Dict[int, str] = {}
    for n in inst.networks:
        if network_type(n) == UNDERLAY:
            continue
        label = n.networkid or f"networks[{inst.networks.index(n)}]"
        if n.vrf <= 0:
            raise InputError(f'{file}: network {label} has vrf {n.vrf}: every network but the underlay needs its VRF id (it is the VNI)')
        if n.vrf in seen:
            raise InputError(f"{file}: networks {seen[n.vrf]} and {label} both have vrf {n.vrf}")
        seen[n.vrf] = label
        if network_type(n) == EXTERNAL and not n.destinationprefixes:
            raise InputError(f'{file}: external network {label} has no "destinationprefixes": nothing would be routed into it')
    if not networks_of(inst, EXTERNAL) and not any(is_dmz(n) for n in inst.networks):
        raise InputError(f"{file}: no external network and no shared network with a default route: a firewall routes the tenant network somewhere")
    if any(n.nat for n in inst.networks) and not primary_network(inst).prefixes:
        raise InputError(f'{file}: a network has "nat: true", but the private primary network has no "prefixes" to translate')
    if len(inst.networks) > 4094 - VLAN_OFFSET:
        raise InputError(f"{file}: {len(inst.networks)} networks: the SVIs' VLAN ids ({VLAN_OFFSET} + position) would pass 4094")


# ---- systemd-networkd ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Evpn:
    """The three devices of one network: VRF, SVI (VLAN on the bridge) and VXLAN."""

    network: Network
    vlan: int  # VLAN id of the SVI, and the VRF's routing table
    order: int  # file name prefix 30, 31, ...

    @property
    def vrf(self) -> str:
        return vrf_name(self.network)

    @property
    def svi(self) -> str:
        return svi_name(self.network)

    @property
    def vxlan(self) -> str:
        return vxlan_name(self.network)


def evpn_networks(inst: Install) -> List[Evpn]:
    out = []
    for i, n in enumerate(inst.networks):
        if network_type(n) == UNDERLAY:
            continue
        out.append(Evpn(network=n, vlan=VLAN_OFFSET + i, order=30 + len(out)))
    return out


# networkd files of an earlier run (the numbering follows the networks of that run)
NETWORKD_GLOBS = ("[0-9][0-9]-bridge.net*", "[0-9][0-9]-vrf-*.net*", "[0-9][0-9]-svi-*.net*", "[0-9][0-9]-vxlan-*.net*")


def _unit_file(comment: str, sections: Sequence[Tuple[str, Sequence[str]]]) -> str:
    lines = [HEADER]
    if comment:
        lines.append("# " + comment)
    for i, (name, keys) in enumerate(sections):
        if i:
            lines.append("")
        lines.append(f"[{name}]")
        lines.extend(keys)
    return "\n".join(lines) + "\n"


def _with_prefix(ip: str) -> str:
    return f"{ip}/{ipaddress.ip_address(ip).max_prefixlen}"


def networkd_files(inst: Install) -> List[Tuple[str, str]]:
    """(file name, text) under /etc/systemd/network, in the order they are written."""
    evpn = evpn_networks(inst)
    u = underlay(inst)
    files = [
        (
            "00-lo.network",
            _unit_file(
                f"networkid: {u.networkid}",
                [("Match", ["Name=lo"]), ("Address", ["Address=127.0.0.1/8"])] + [("Address", [f"Address={_with_prefix(ip)}"]) for ip in u.ips],
            ),
        )
    ]
    for i, nic in enumerate(inst.nics):
        name = f"lan{i}"
        files.append((f"{10 + i}-{name}.link", _unit_file("", [("Match", [f"PermanentMACAddress={nic.mac}"]), ("Link", [f"Name={name}", "NamePolicy=", f"MTUBytes={MTU['firewall']}"])])))
        # every lan link carries the VXLANs (they are routed to the leaves over either)
        network = ["IPv6AcceptRA=no"] + [f"VXLAN={e.vxlan}" for e in evpn]
        files.append((f"{10 + i}-{name}.network", _unit_file("", [("Match", [f"Name={name}"]), ("Network", network)])))
    files.append(("20-bridge.netdev", _unit_file("", [("NetDev", ["Name=bridge", "Kind=bridge", f"MTUBytes={EVPN_MTU}"]), ("Bridge", ["DefaultPVID=none", "VLANFiltering=yes"])])))
    files.append(
        (
            "20-bridge.network",
            _unit_file("", [("Match", ["Name=bridge"]), ("Network", [f"VLAN={e.svi}" for e in evpn])] + [("BridgeVLAN", [f"VLAN={e.vlan}"]) for e in evpn]),
        )
    )
    vtep = inst.router_id  # the underlay's (first IPv4) address
    for e in evpn:
        n, nid = e.network, e.network.networkid
        files += [
            (f"{e.order}-vrf-{n.vrf}.netdev", _unit_file(f"vrf (networkid: {nid})", [("NetDev", [f"Name={e.vrf}", "Kind=vrf"]), ("VRF", [f"Table={e.vlan}"])])),
            (f"{e.order}-vrf-{n.vrf}.network", _unit_file(f"vrf (networkid: {nid})", [("Match", [f"Name={e.vrf}"])])),
            (f"{e.order}-svi-{n.vrf}.netdev", _unit_file(f"svi (networkid: {nid})", [("NetDev", [f"Name={e.svi}", "Kind=vlan"]), ("VLAN", [f"Id={e.vlan}"])])),
            (
                f"{e.order}-svi-{n.vrf}.network",
                _unit_file(
                    f"svi (networkid: {nid})",
                    [("Match", [f"Name={e.svi}"]), ("Link", [f"MTUBytes={EVPN_MTU}"]), ("Network", [f"VRF={e.vrf}"] + [f"Address={_with_prefix(ip)}" for ip in n.ips])],
                ),
            ),
            (
                f"{e.order}-vxlan-{n.vrf}.netdev",
                _unit_file(
                    f"vxlan (networkid: {nid})",
                    [
                        ("NetDev", [f"Name={e.vxlan}", "Kind=vxlan"]),
                        ("VXLAN", [f"VNI={n.vrf}", f"Local={vtep}", "UDPChecksum=true", "MacLearning=false", f"DestinationPort={VXLAN_PORT}"]),
                    ],
                ),
            ),
            (
                f"{e.order}-vxlan-{n.vrf}.network",
                _unit_file(
                    f"vxlan (networkid: {nid})",
                    [("Match", [f"Name={e.vxlan}"]), ("Link", [f"MTUBytes={EVPN_MTU}"]), ("Network", ["Bridge=bridge"]), ("BridgeVLAN", [f"PVID={e.vlan}", f"EgressUntagged={e.vlan}"])],
                ),
            ),
        ]
    return files


# ---- FRR: route leaking between the VRFs --------------------------------------------------------


@dataclass(frozen=True)
class ImportPrefix:
    prefix: str  # CIDR as install.yaml writes it (FRR masks host bits itself)
    action: str  # permit or deny
    source_vrf: str

    @property
    def version(self) -> int:
        return ipaddress.ip_network(self.prefix, strict=False).version


@dataclass(frozen=True)
class ImportRule:
    """What the BGP instance of one VRF imports from the others."""

    target_vrf: str
    import_vrfs: List[str]
    prefixes: List[ImportPrefix]  # imported as they are
    no_export: List[ImportPrefix]  # imported marked no-export: private prefixes must not leave the partition


@dataclass(frozen=True)
class PrefixListEntry:
    family: str  # ip or ipv6
    name: str
    seq: Optional[int]  # None: FRR numbers it (the default route is written without one)
    action: str
    prefix: str
    le: Optional[int]
    source_vrf: str

    def line(self) -> str:
        spec = f"{self.action} {self.prefix}" if self.seq is None else f"seq {self.seq} {self.action} {self.prefix}"
        return f"{self.family} prefix-list {self.name} {spec}" + (f" le {self.le}" if self.le is not None else "")


@dataclass(frozen=True)
class RouteMapEntry:
    name: str
    action: str
    order: int
    statements: List[str]


def _prefixes(values: Sequence[str], source_vrf: str, action: str = "permit") -> List[ImportPrefix]:
    return [ImportPrefix(v, action, source_vrf) for v in values]


def _add_unique(items: List[str], *new: str) -> None:
    for x in new:
        if x not in items:
            items.append(x)


def import_rule(inst: Install, net: Network) -> ImportRule:
    """Route leaking into the VRF of `net`, by network type:

    - the private primary network reaches out into the external networks (their destination
      prefixes, e.g. the default route, and their own prefixes, but not the firewall's own public
      address of the default network) and into the shared private networks;
    - a shared private network answers the private primary network; a DMZ (one with a default
      route) also reaches the external networks that have the same destination prefixes;
    - an external network gets the private primary network's prefixes (and a DMZ's, if both have
      a default route) for the return traffic, marked no-export, and its own prefixes.
    """
    target = vrf_name(net)
    kind = network_type(net)
    primary = primary_network(inst)
    externals = networks_of(inst, EXTERNAL)
    shared = networks_of(inst, SECONDARY_SHARED)
    vrfs: List[str] = []
    prefixes: List[ImportPrefix] = []
    no_export: List[ImportPrefix] = []
    if kind in (PRIMARY_UNSHARED, PRIMARY_SHARED):
        _add_unique(vrfs, *[vrf_name(e) for e in externals])
        for e in externals:
            prefixes += _prefixes(e.destinationprefixes, vrf_name(e))
        default = default_route_network(inst)
        if default is not None:
            # the firewall's own address there is no route into the internet VRF
            prefixes += _prefixes([_with_prefix(ip) for ip in default.ips], vrf_name(default), "deny")
        for e in externals:
            prefixes += _prefixes(e.prefixes, vrf_name(e))
        _add_unique(vrfs, *[vrf_name(s) for s in shared])
        for s in shared:
            prefixes += _prefixes(s.prefixes, vrf_name(s))
        for s in shared:
            for p in _prefixes(s.destinationprefixes, vrf_name(s)):
                if all(q.prefix != p.prefix for q in prefixes):
                    prefixes.append(p)
    elif kind == SECONDARY_SHARED:
        vrfs.append(vrf_name(primary))
        prefixes += _prefixes(primary.prefixes, vrf_name(primary)) + _prefixes(net.prefixes, vrf_name(primary))
        for dest in net.destinationprefixes:
            for e in externals:
                if dest in e.destinationprefixes:
                    prefixes += _prefixes([dest], vrf_name(e))
                    _add_unique(vrfs, vrf_name(e))
                    prefixes += _prefixes(e.prefixes, vrf_name(e))
    elif kind == EXTERNAL:
        vrfs.append(vrf_name(primary))
        prefixes += _prefixes(net.prefixes, vrf_name(primary))
        answered = [primary]
        if has_default_route(net):
            for s in shared:
                if has_default_route(s):
                    answered.append(s)
                    _add_unique(vrfs, vrf_name(s))
        for a in answered:
            no_export += _prefixes(a.prefixes, vrf_name(a))
    return ImportRule(target, vrfs, prefixes, no_export)


def prefix_lists(rule: ImportRule) -> List[PrefixListEntry]:
    """The prefix-lists of one VRF's imports, IPv4 first, no-export lists before the others.

    Numbered as metal-networker numbers them (from 100, one number per prefix of the family, the
    imported lists of a family continuing after its no-export lists), so the entries are the same
    statements as upstream's. A prefix-list is named <target>-import-from-<source>[-ipv6][-no-export].
    """
    out: List[PrefixListEntry] = []
    seq = PREFIX_LIST_SEQ
    for version, family in ((4, "ip"), (6, "ipv6")):
        out += _entries(rule, rule.no_export, version, family, exported=False, seq=seq)
        seq = PREFIX_LIST_SEQ + len(out)
        out += _entries(rule, rule.prefixes, version, family, exported=True, seq=seq)
    return out


def _entries(rule: ImportRule, prefixes: List[ImportPrefix], version: int, family: str, exported: bool, seq: int) -> List[PrefixListEntry]:
    out = []
    for p in prefixes:
        if p.version != version:
            continue
        if p.source_vrf != rule.target_vrf:  # a VRF imports nothing from itself
            net = ipaddress.ip_network(p.prefix, strict=False)
            name = f"{rule.target_vrf}-import-from-{p.source_vrf}" + ("-ipv6" if version == 6 else "") + ("" if exported else NO_EXPORT)
            if net.prefixlen == 0:
                out.append(PrefixListEntry(family, name, None, p.action, p.prefix, None, p.source_vrf))
            else:
                out.append(PrefixListEntry(family, name, seq, p.action, p.prefix, net.max_prefixlen, p.source_vrf))
        seq += 1
    return out


def route_map(rule: ImportRule, lists: List[PrefixListEntry]) -> List[RouteMapEntry]:
    """<vrf>-import-map: one permit entry per prefix-list (matching its source VRF and the list,
    no-export lists also setting the community), in reverse order of the lists' names, then deny."""
    first: Dict[str, PrefixListEntry] = {}
    for e in lists:
        first.setdefault(e.name, e)
    name = f"{rule.target_vrf}-import-map"
    out = []
    order = ROUTE_MAP_STEP
    for list_name in sorted(first, reverse=True):
        e = first[list_name]
        statements = [f"match source-vrf {e.source_vrf}", f"match {e.family} address prefix-list {list_name}"]
        if list_name.endswith(NO_EXPORT):
            statements.append("set community additive no-export")
        out.append(RouteMapEntry(name, "permit", order, statements))
        order += ROUTE_MAP_STEP
    out.append(RouteMapEntry(name, "deny", order, []))
    return out


def frr_version_parts(version: str) -> Tuple[int, int]:
    """(major, minor) of '8.4.4'; raises ValueError for anything else."""
    m = re.match(r"^(\d+)\.(\d+)", version.strip())
    if not m:
        raise ValueError(f"not an FRR version: {version!r}")
    return int(m.group(1)), int(m.group(2))


def frr_conf(inst: Install, frr_version: str) -> str:
    """/etc/frr/frr.conf of a firewall, for the installed FRR (`frr_version`, e.g. '8.4.4').

    FRR 10 enforces the first AS of routes leaked between the VRFs' BGP instances; they get
    `no bgp enforce-first-as` there, as metal-networker writes it for FRR 10.
    """
    major, minor = frr_version_parts(frr_version)
    asn, router_id = inst.asn, inst.router_id
    vrf_nets = networks_of(inst, *ROUTED_TYPES)
    lan = uplinks(inst)
    out = ["! " + HEADER[2:], f"frr version {major}.{minor}", "frr defaults datacenter", f"hostname {inst.hostname}", "!"]
    out += ["log syslog debugging", "debug bgp updates", "debug bgp nht", "debug bgp update-groups", "debug bgp zebra"]
    for n in vrf_nets:
        out += ["!", f"vrf {vrf_name(n)}", f" vni {n.vrf}", " exit-vrf"]
    out.append("!")
    for u in lan:
        # BGP unnumbered learns the leaf's link-local address from its router advertisements
        out += [f"interface {u}", " ipv6 nd ra-interval 6", " no ipv6 nd suppress-ra", "!"]
    out += [
        f"router bgp {asn}",
        f" bgp router-id {router_id}",
        " bgp bestpath as-path multipath-relax",
        " neighbor FABRIC peer-group",
        " neighbor FABRIC remote-as external",
        " neighbor FABRIC timers 2 8",
    ]
    out += [f" neighbor {u} interface peer-group FABRIC" for u in lan]
    out += [
        " !",
        " address-family ipv4 unicast",
        "  redistribute connected route-map LOOPBACKS",
        "  neighbor FABRIC route-map only-self-out out",
        " exit-address-family",
        " !",
        " address-family ipv6 unicast",
        "  redistribute connected route-map LOOPBACKS",
        "  neighbor FABRIC route-map only-self-out out",
        "  neighbor FABRIC activate",
        " exit-address-family",
        " !",
        " address-family l2vpn evpn",
        "  neighbor FABRIC activate",
        "  advertise-all-vni",
        " exit-address-family",
        "!",
    ]
    rules = [import_rule(inst, n) for n in vrf_nets]
    for n, rule in zip(vrf_nets, rules):
        out += [f"router bgp {asn} vrf {vrf_name(n)}", f" bgp router-id {router_id}"]
        if major >= 10:
            out.append(" no bgp enforce-first-as")
        out.append(" bgp bestpath as-path multipath-relax")
        for family in ("ipv4", "ipv6"):
            out += [" !", f" address-family {family} unicast", "  redistribute connected"]
            out += [f"  import vrf {v}" for v in rule.import_vrfs]
            out += [f"  import vrf route-map {rule.target_vrf}-import-map", " exit-address-family"]
        out += [" !", " address-family l2vpn evpn", "  advertise ipv4 unicast", "  advertise ipv6 unicast", " exit-address-family", "!"]
    for rule in rules:
        lists = prefix_lists(rule)
        out += [e.line() for e in lists]
        for m in route_map(rule, lists):
            out.append(f"route-map {m.name} {m.action} {m.order}")
            out += [" " + s for s in m.statements]
        out.append("!")
    out += [
        "route-map only-self-out permit 10",
        " match as-path SELF",
        "route-map only-self-out deny 20",
        "!",
        "route-map LOOPBACKS permit 10",
        " match interface lo",
        "!",
        "bgp as-path access-list SELF permit ^$",
        "!",
        "line vty",
        "!",
        "",
    ]
    return "\n".join(out)


# ---- nftables -----------------------------------------------------------------------------------


def _family(prefix_or_ip: str) -> str:
    return "ip6" if ipaddress.ip_network(prefix_or_ip, strict=False).version == 6 else "ip"


def _comment(text: str) -> str:
    """A comment nft takes: no quotes, backslashes or control characters, at most 128 bytes."""
    clean = "".join(c for c in text if c.isprintable() and c not in '"\\')
    return clean.encode("utf-8")[:128].decode("utf-8", "ignore")


@dataclass(frozen=True)
class DnsProxy:
    """Queries from the private networks to well-known resolvers go to the proxy on the firewall's
    address in the default network."""

    family: str  # ip or ip6
    address: str
    svis: List[str]


def dns_proxy(inst: Install) -> Optional[DnsProxy]:
    default = default_route_network(inst)
    if default is None or not default.ips:
        return None
    ip = default.ips[0]
    return DnsProxy(_family(ip), ip, [svi_name(n) for n in networks_of(inst, *PRIVATE_TYPES)])


def firewall_rules(inst: Install) -> List[str]:
    """install.yaml's firewall_rules as forward rules: egress from the private networks' VRFs,
    ingress to the given addresses (or, without any, into the private primary network)."""
    fr = inst.firewall_rules
    if fr is None:
        return []
    private_vrfs = ",".join(f'"{vrf_name(n)}"' for n in networks_of(inst, *PRIVATE_TYPES))
    out = ["# egress rules specified during firewall creation"]
    for r in fr.egress:
        ports = ",".join(str(p) for p in r.ports)
        for to in r.to:
            out.append(f'iifname {{ {private_vrfs} }} {_family(to)} daddr {to} {r.protocol} dport {{ {ports} }} counter accept comment "{_comment(r.comment)}"')
    out.append("# ingress rules specified during firewall creation")
    p = primary_network(inst)
    into_primary = f'oifname {{ "{vrf_name(p)}", "{vxlan_name(p)}", "{svi_name(p)}" }}'
    for r in fr.ingress:
        ports = ",".join(str(p) for p in r.ports)
        for src in r.sources:
            family = _family(src)
            if r.to:
                dests = [t for t in r.to if _family(t) == family]
                if not dests:  # no destination of the source's family: the rule can never match
                    continue
                target = f"{family} daddr {{ {', '.join(dests)} }}"
            else:
                target = into_primary
            out.append(f'{target} {family} saddr {src} {r.protocol} dport {{ {ports} }} counter accept comment "{_comment(r.comment)}"')
    return out


def nftables_rules(inst: Install, forward_policy: str = "drop", with_dns_proxy: bool = False) -> str:
    """/etc/nftables/rules, which the image's /etc/nftables.conf includes after `flush ruleset`.

    forward_policy drop is a firewall's until the firewall-controller takes over (it renders these
    rules again with accept and adds its own chains); with_dns_proxy adds the DNAT of DNS queries
    to the proxy that the firewall-controller runs.
    """
    if forward_policy not in ("drop", "accept"):
        raise ValueError(f"forward policy {forward_policy!r}: expected drop or accept")
    lan = uplinks(inst)
    proxy = dns_proxy(inst) if with_dns_proxy else None
    private = networks_of(inst, *PRIVATE_TYPES)
    i1, i2 = " " * 4, " " * 8

    def chain(name: str, base: str, rules: List[str]) -> List[str]:
        return [f"{i1}chain {name} {{", f"{i2}{base}"] + [f"{i2}{r}" if r else "" for r in rules] + [f"{i1}}}"]

    input_rules = [
        'meta l4proto ipv6-icmp counter accept comment "icmpv6 input required for neighbor discovery"',
        'iifname "lo" counter accept comment "BGP unnumbered"',
    ]
    input_rules += [f'iifname "{u}" ip6 saddr fe80::/64 tcp dport bgp counter accept comment "bgp unnumbered input from {u}"' for u in lan]
    input_rules += [f'iifname "{u}" ip saddr {UNDERLAY_RANGE} udp dport {VXLAN_PORT} counter accept comment "incoming VXLAN {u}"' for u in lan]
    input_rules += ["", 'ct state established,related counter accept comment "stateful input"']
    if proxy:
        src = "fd00::/8" if proxy.family == "ip6" else "10.0.0.0/8"
        input_rules.append("")
        for proto in ("tcp", "udp"):
            input_rules.append(f'{proxy.family} saddr {src} {proto} dport domain {proxy.family} daddr {proxy.address} accept comment "dnat to dns proxy"')
    input_rules.append("")
    if inst.vpn is not None:
        # with a VPN, ssh reaches the firewall through it only
        input_rules.append('iifname "tailscale*" accept comment "Accept tailscale traffic"')
    else:
        input_rules.append('tcp dport ssh ct state new counter accept comment "SSH incoming connections"')
    for n in private:
        input_rules.append(f'iifname "{vrf_name(n)}" tcp dport {NODE_METRICS_PORT} counter accept comment "node metrics"')
        input_rules.append(f'iifname "{vrf_name(n)}" tcp dport {NFTABLES_METRICS_PORT} counter accept comment "nftables metrics"')
    input_rules += ["", 'ct state invalid counter drop comment "drop invalid packets to prevent malicious activity"', "counter jump refuse"]

    forward_rules = [
        'ct state invalid counter drop comment "drop invalid packets from forwarding to prevent malicious activity"',
        'ct state established,related counter accept comment "stateful forward"',
        'tcp dport bgp ct state new counter jump refuse comment "block bgp forward to machines"',
    ]
    forward_rules += firewall_rules(inst)
    if forward_policy == "drop":
        # droptailer reads the dropped packets from the kernel log by this prefix
        forward_rules.append(f'limit rate 2/minute counter log prefix "{DROP_LOG_PREFIX}"')

    output_rules = [
        'meta l4proto ipv6-icmp counter accept comment "icmpv6 output required for neighbor discovery"',
        'oifname "lo" counter accept comment "lo output required e.g. for chrony"',
    ]
    output_rules += [f'oifname "{u}" ip6 saddr fe80::/64 tcp dport bgp counter accept comment "bgp unnumbered output at {u}"' for u in lan]
    output_rules += [
        "",
        f'ip daddr {UNDERLAY_RANGE} udp dport {VXLAN_PORT} counter accept comment "outgoing VXLAN"',
        "",
        'ct state established,related counter accept comment "stateful output"',
        'ct state invalid counter drop comment "drop invalid packets"',
    ]
    output_ct: List[str] = []
    prerouting: List[str] = []
    prerouting_ct: List[str] = []
    if proxy:
        dns_set = "@proxy_dns_servers_v6" if proxy.family == "ip6" else "@proxy_dns_servers"
        for svi in proxy.svis:
            for proto in ("tcp", "udp"):
                output_ct.append(f'oifname "{svi}" {proto} sport domain ct zone set {DNS_ZONE}')
                prerouting.append(f'{proxy.family} daddr {dns_set} iifname "{svi}" {proto} dport domain dnat {proxy.family} to {proxy.address} comment "dnat to dns proxy"')
                prerouting_ct.append(f'iifname "{svi}" {proto} dport domain ct zone set {DNS_ZONE}')

    lines = [HEADER, "table inet metal {"]
    lines += chain("input", "type filter hook input priority 0; policy drop;", input_rules)
    lines += chain("forward", f"type filter hook forward priority 0; policy {forward_policy};", forward_rules)
    lines += chain("output", "type filter hook output priority 0; policy accept;", output_rules)
    lines += chain("output_ct", "type filter hook output priority raw; policy accept;", output_ct)
    lines += [f"{i1}chain refuse {{", f'{i2}limit rate 2/minute counter log prefix "{DROP_LOG_PREFIX}"', f"{i2}counter drop", f"{i1}}}", "}"]
    lines += ["table inet nat {"]
    lines += _dns_set("proxy_dns_servers", "ipv4_addr", PROXY_DNS_V4)
    if proxy and proxy.family == "ip6":
        lines += _dns_set("proxy_dns_servers_v6", "ipv6_addr", PROXY_DNS_V6)
    lines += chain("prerouting", "type nat hook prerouting priority 0; policy accept;", prerouting)
    lines += chain("prerouting_ct", "type filter hook prerouting priority raw; policy accept;", prerouting_ct)
    lines += chain("input", "type nat hook input priority 0; policy accept;", [])
    lines += chain("output", "type nat hook output priority 0; policy accept;", [])
    lines += chain("postrouting", "type nat hook postrouting priority 0; policy accept;", _snat(inst, proxy))
    lines += ["}", ""]
    return "\n".join(lines)


def _dns_set(name: str, kind: str, elements: Sequence[str]) -> List[str]:
    i1, i2 = " " * 4, " " * 8
    return [f"{i1}set {name} {{", f"{i2}type {kind}", f"{i2}flags interval", f"{i2}auto-merge", f"{i2}elements = {{ {', '.join(elements)} }}", f"{i1}}}", ""]


def _snat(inst: Install, proxy: Optional[DnsProxy]) -> List[str]:
    """Masquerade the private primary network (and DMZs) out of every network with nat: true; the
    DNS proxy's own address in the default network is left alone."""
    sources = list(primary_network(inst).prefixes)
    for n in inst.networks:
        if is_dmz(n):
            sources += n.prefixes
    default = default_route_network(inst)
    out = []
    for n in networks_of(inst, *ROUTED_TYPES):
        if not n.nat:
            continue
        for src in sources:
            family = _family(src)
            spared = ""
            if proxy and default is n and proxy.family == family:
                spared = f" {family} daddr != {proxy.address}"
            out.append(f'oifname "{svi_name(n)}" {family} saddr {src}{spared} counter masquerade random comment "snat (networkid: {_comment(n.networkid)})"')
    return out


def nftables_includes(conf: str) -> List[str]:
    """The include patterns of an nftables.conf."""
    return re.findall(r'^\s*include\s+"([^"]+)"', conf, re.MULTILINE)


# ---- units of the add-ons -----------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    name: str  # under /etc/systemd/system
    text: str
    program: str  # what it runs: the image provides it
    enable: bool  # enabled by the installer; the others an operator enables (Ignition userdata)


@dataclass(frozen=True)
class ExtraFile:
    path: str
    text: str
    mode: int


VRF_EXEC = "/bin/ip vrf exec"
NODE_EXPORTER = "/usr/local/bin/node_exporter"
NFTABLES_EXPORTER = "/usr/bin/nftables-exporter"
SURICATA = "/usr/bin/suricata"
SURICATA_UPDATE = "/usr/bin/suricata-update"
DROPTAILER = "/usr/local/bin/droptailer-client"
FIREWALL_CONTROLLER = "/usr/local/bin/firewall-controller"
TAILSCALED = "/usr/local/bin/tailscaled"
TAILSCALE = "/usr/local/bin/tailscale"
TAILSCALE_AUTH_KEY = "/etc/tailscale/auth-key"
# where an operator's Ignition userdata puts the credentials of the two (docs/contract.md §9)
OPERATOR_DIRS = ("/etc/firewall-controller", "/etc/droptailer-client")


def _unit(description: str, service: Sequence[str], unit_extra: Sequence[str] = (), after: str = "network.target", wanted_by: str = "multi-user.target") -> str:
    return _unit_file("", [("Unit", [f"Description={description}", f"After={after}", *unit_extra]), ("Service", list(service)), ("Install", [f"WantedBy={wanted_by}"])])


def _in_vrf(vrf: str, argv: str) -> str:
    return f"{VRF_EXEC} {vrf} {argv}"


def units(inst: Install) -> List[Unit]:
    """The add-ons' units, each started in the VRF it talks through: suricata-update, the
    firewall-controller and tailscale reach the internet through the default route's VRF; the
    droptailer client sends to the tenant's cluster in the private primary VRF; the exporters
    listen in the default VRF, where (with tcp_l3mdev_accept) the tenant VRFs reach them."""
    internet = default_route_vrf(inst)
    tenant = vrf_name(primary_network(inst))
    out = [
        Unit(
            "node-exporter.service",
            _unit("Node exporter - provides prometheus metrics about the node", [f"ExecStart={NODE_EXPORTER} --collector.tcpstat", "Restart=always", "RestartSec=30"]),
            NODE_EXPORTER,
            True,
        ),
        Unit(
            "nftables-exporter.service",
            _unit(
                "Nftables exporter - provides prometheus metrics for nftables",
                [f"ExecStart={NFTABLES_EXPORTER} --config=/etc/nftables_exporter.yaml", "Restart=always", "RestartSec=30"],
            ),
            NFTABLES_EXPORTER,
            True,
        ),
        Unit(
            "droptailer.service",
            _unit(
                "Droptailer",
                [
                    "LimitMEMLOCK=infinity",
                    "Environment=DROPTAILER_SERVER_ADDRESS=droptailer:50051",
                    f'Environment=DROPTAILER_PREFIXES_OF_DROPS="{DROP_LOG_PREFIX},nftables-firewall-dropped: "',
                    "Environment=DROPTAILER_CLIENT_CERTIFICATE=/etc/droptailer-client/droptailer-client.crt",
                    "Environment=DROPTAILER_CLIENT_KEY=/etc/droptailer-client/droptailer-client.key",
                    f"ExecStart={_in_vrf(tenant, DROPTAILER)}",
                    "Restart=always",
                    "RestartSec=10",
                ],
                wanted_by="firewall-controller.service",
            ),
            DROPTAILER,
            False,
        ),
    ]
    if internet is None:
        return out
    d = default_route_network(inst)
    assert d is not None
    svi = svi_name(d)
    out += [
        Unit(
            "firewall-controller.service",
            _unit(
                "Firewall controller - configures the firewall based on k8s resources",
                ["LimitMEMLOCK=infinity", "Environment=KUBECONFIG=/etc/firewall-controller/.kubeconfig", f"ExecStart={_in_vrf(internet, FIREWALL_CONTROLLER)}", "Restart=always", "RestartSec=10"],
            ),
            FIREWALL_CONTROLLER,
            False,
        ),
        Unit(
            "suricata-update.service",
            _unit_file(
                "",
                [
                    ("Unit", ["Description=Suricata Intrusion Detection Service Rules Update", "After=network-online.target", "Wants=network-online.target"]),
                    (
                        "Service",
                        [
                            "LimitMEMLOCK=infinity",
                            "User=root",
                            "Group=root",
                            "Type=oneshot",
                            f"ExecStart={_in_vrf(internet, SURICATA_UPDATE)}",
                            # a running suricata takes the new rules (the image's timer runs this daily)
                            "ExecStartPost=-/usr/bin/suricatasc -c ruleset-reload-nonblocking",
                        ],
                    ),
                    ("Install", ["WantedBy=multi-user.target"]),
                ],
            ),
            SURICATA_UPDATE,
            True,
        ),
        Unit(
            "suricata.service",
            _unit_file(
                "",
                [
                    (
                        "Unit",
                        [
                            f"Description=Suricata Intrusion Detection Service on {svi}",
                            f"BindsTo=sys-subsystem-net-devices-{svi}.device",
                            f"After=sys-subsystem-net-devices-{svi}.device network.target",
                        ],
                    ),
                    (
                        "Service",
                        [
                            "ExecStartPre=/bin/rm -f /run/suricata.pid",
                            f"ExecStart={SURICATA} -c /etc/suricata/suricata.yaml --pidfile /run/suricata.pid --af-packet={svi}",
                            "ExecReload=/bin/kill -USR2 $MAINPID",
                            "Restart=always",
                            "RestartSec=60",
                        ],
                    ),
                    # the SVI is networkd's: started when it appears, also after the boot's device
                    # timeout (DefaultDeviceTimeoutSec, 90 s; a slow boot in the rack took longer and
                    # suricata never ran)
                    ("Install", ["WantedBy=multi-user.target", f"WantedBy=sys-subsystem-net-devices-{svi}.device"]),
                ],
            ),
            SURICATA,
            True,
        ),
    ]
    if inst.vpn is not None:
        hostname = inst.machineuuid or inst.hostname
        out += [
            Unit(
                "tailscaled.service",
                _unit_file(
                    "",
                    [
                        (
                            "Unit",
                            [
                                "Description=Tailscale node agent",
                                "Documentation=https://tailscale.com/kb/",
                                "Wants=network-pre.target",
                                "After=network-pre.target network.target systemd-resolved.service",
                            ],
                        ),
                        (
                            "Service",
                            [
                                "LimitMEMLOCK=infinity",
                                "User=root",
                                "Group=root",
                                "Type=notify",
                                f"ExecStartPre={_in_vrf(internet, TAILSCALED)} --cleanup",
                                f"ExecStart={_in_vrf(internet, TAILSCALED)} --port {TAILSCALED_PORT}",
                                f"ExecStopPost={_in_vrf(internet, TAILSCALED)} --cleanup",
                                "Restart=on-failure",
                                "RuntimeDirectory=tailscale",
                                "RuntimeDirectoryMode=0755",
                                "StateDirectory=tailscale",
                                "StateDirectoryMode=0700",
                                "CacheDirectory=tailscale",
                                "CacheDirectoryMode=0750",
                            ],
                        ),
                        ("Install", ["WantedBy=multi-user.target"]),
                    ],
                ),
                TAILSCALED,
                True,
            ),
            Unit(
                "tailscale.service",
                _unit_file(
                    "",
                    [
                        ("Unit", ["Description=Tailscale client", "After=tailscaled.service", "Requires=tailscaled.service"]),
                        (
                            "Service",
                            [
                                "LimitMEMLOCK=infinity",
                                "User=root",
                                "Group=root",
                                # the key is read from a root-only file: not in a unit file or the process list
                                f"ExecStart={_in_vrf(internet, TAILSCALE)} up --hostname {hostname} --auth-key file:{TAILSCALE_AUTH_KEY} --login-server {inst.vpn.address}",
                                "Restart=on-failure",
                            ],
                        ),
                        ("Install", ["WantedBy=multi-user.target"]),
                    ],
                ),
                TAILSCALE,
                True,
            ),
        ]
    return out


# After the image's presets (05-, 10-) and Ignition's (20-ignition.preset, where an operator's
# userdata enables firewall-controller and droptailer), before the distribution's default "enable".
UNITS_PRESET = "/etc/systemd/system-preset/30-metal-firewall-units.preset"


def units_preset(units: Sequence[Unit]) -> str:
    """`systemctl preset-all` would enable every unit nobody names (the distribution's default):
    the add-ons start disabled; the installer enables those whose programs the image has, and an
    operator's Ignition userdata the others (its preset file comes first)."""
    lines = [HEADER, "# the installer enables those of these units whose programs the image has, after the presets"]
    return "\n".join(lines + [f"disable {u.name}" for u in units]) + "\n"


def extra_files(inst: Install) -> List[ExtraFile]:
    """Files the units read."""
    if inst.vpn is None:
        return []
    return [ExtraFile(TAILSCALE_AUTH_KEY, inst.vpn.auth_key + "\n", 0o600)]
