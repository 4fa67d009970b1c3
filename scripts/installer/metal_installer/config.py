"""The installer's two inputs, parsed and checked: the OS data (os.yaml, generated from the
image's image.yaml by the build) and the machine data (install.yaml, written by the metal-hammer).

Pure: functions take text and return typed values or raise InputError with a message that names
the file and the field. Nothing here touches the file system.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import yaml

INSTALL_YAML = "/etc/metal/install.yaml"
OS_YAML = "os.yaml"

# metal-api network types whose network is the machine's own (the private primary network).
PRIVATE_PRIMARY_TYPES = ("privateprimaryunshared", "privateprimaryshared")
ROLES = ("machine", "firewall")
NTP_CLIENTS = ("timesyncd", "chrony")
BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)


class InputError(Exception):
    """install.yaml or os.yaml is missing a field or has a wrong one."""


# ---- os.yaml ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OsData:
    os: str
    version: str
    machine_type: str
    initrd: str
    sudo_group: str
    grub_install: List[str]
    grub_mkconfig: List[str]
    initramfs_update: List[str]
    mdadm_conf: str
    ntp_client: str
    chrony_conf: str
    nftables_conf: str

    @property
    def bootloader_id(self) -> str:
        return "metal-" + self.os

    def initrd_name(self, kernel_version: str) -> str:
        return self.initrd.replace("{k}", kernel_version)


def parse_os_yaml(text: str, file: str = OS_YAML) -> OsData:
    doc = _load(text, file)
    f = _Fields(doc, file, hint="it is generated from image.yaml by the build (scripts/steps/build.ts); rebuild the image")
    data = OsData(
        os=f.string("os"),
        version=f.string("version"),
        machine_type=f.choice("machine_type", ROLES),
        initrd=f.string("initrd"),
        sudo_group=f.string("sudo_group"),
        grub_install=f.argv("grub_install"),
        grub_mkconfig=f.argv("grub_mkconfig"),
        initramfs_update=f.argv("initramfs_update"),
        mdadm_conf=f.path("mdadm_conf"),
        ntp_client=f.choice("ntp_client", NTP_CLIENTS),
        chrony_conf=f.path("chrony_conf"),
        nftables_conf=f.path("nftables_conf"),
    )
    if "{k}" not in data.initrd:
        raise InputError(f'{file}: field "initrd" is "{data.initrd}": it must contain {{k}} (the kernel version)')
    return data


# ---- install.yaml -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Console:
    """A serial console as the kernel names it, e.g. ttyS1,115200n8."""

    tty: str
    unit: int
    speed: int
    parity: str  # n, o or e
    bits: int

    @property
    def kernel_arg(self) -> str:
        return f"{self.tty},{self.speed}{self.parity}{self.bits}"

    @property
    def grub_parity(self) -> str:
        return {"n": "no", "o": "odd", "e": "even"}[self.parity]


@dataclass(frozen=True)
class Network:
    networkid: str
    networktype: str
    private: bool
    underlay: bool
    asn: int
    ips: List[str]
    prefixes: List[str]
    destinationprefixes: List[str]
    vrf: int
    nat: bool


@dataclass(frozen=True)
class Nic:
    mac: str
    name: str


@dataclass(frozen=True)
class Vpn:
    """install.yaml's vpn: the headscale/tailscale control server a firewall joins."""

    address: str
    auth_key: str
    connected: bool


@dataclass(frozen=True)
class FirewallRule:
    """One of firewall_rules' egress or ingress rules; protocol lower-case (tcp or udp)."""

    comment: str
    protocol: str
    ports: List[int]
    to: List[str]
    sources: List[str]  # install.yaml's "from" (ingress only; empty for egress)


@dataclass(frozen=True)
class FirewallRules:
    egress: List[FirewallRule]
    ingress: List[FirewallRule]


@dataclass(frozen=True)
class Install:
    hostname: str
    role: str
    password: str
    sshpublickey: str
    console: Console
    root_uuid: str
    raidenabled: bool
    machineuuid: str
    networks: List[Network]
    nics: List[Nic]
    dns_servers: List[str]
    ntp_servers: List[str]
    timestamp: str = ""
    vpn: Optional[Vpn] = None
    firewall_rules: Optional[FirewallRules] = None

    @property
    def primary(self) -> Network:
        """The private primary network (validated to exist exactly once)."""
        return next(n for n in self.networks if is_private_primary(n))

    @property
    def underlay_network(self) -> Optional[Network]:
        return next((n for n in self.networks if n.underlay), None)

    @property
    def bgp_network(self) -> Network:
        """Machines speak BGP with their own network's ASN; firewalls in the underlay's."""
        if self.role == "firewall":
            u = self.underlay_network
            assert u is not None  # validated
            return u
        return self.primary

    @property
    def router_id(self) -> str:
        return next(ip for ip in self.bgp_network.ips if ipaddress.ip_address(ip).version == 4)

    @property
    def asn(self) -> int:
        return self.bgp_network.asn

    @property
    def loopback_ips(self) -> List[str]:
        """Addresses lo carries: a machine's IPs of every network; a firewall's underlay IPs (its
        other addresses belong to the VRF layout)."""
        nets = [self.bgp_network] if self.role == "firewall" else [n for n in self.networks if not n.underlay]
        out: List[str] = []
        for n in nets:
            for ip in n.ips:
                if ip not in out:
                    out.append(ip)
        return out


def is_private_primary(n: Network) -> bool:
    if n.networktype:
        return n.networktype in PRIVATE_PRIMARY_TYPES
    # hammers before networktype existed marked it with private: true
    return n.private and not n.underlay


def parse_install_yaml(text: str, os_data: OsData, file: str = INSTALL_YAML) -> Install:
    doc = _load(text, file)
    f = _Fields(doc, file, hint="")

    hostname = f.string("hostname")
    if not _HOSTNAME.match(hostname) or len(hostname) > 253:
        raise InputError(f'{file}: field "hostname" is "{hostname}": it must be a DNS name (letters, digits, - and ., labels of at most 63 characters)')

    role = f.choice("role", ROLES)
    if role != os_data.machine_type:
        raise InputError(
            f'{file}: field "role" is "{role}", but this image ({os_data.os} {os_data.version}) is built for role "{os_data.machine_type}"; '
            f"allocate a {role} with a {role} image"
        )

    password = f.string("password")
    if "\n" in password or "\r" in password:
        raise InputError(f'{file}: field "password" must be a single line')

    console = parse_console(f.string("console"), file)

    root_uuid = f.string("root_uuid")
    if not _UUID.match(root_uuid):
        raise InputError(f'{file}: field "root_uuid" is "{root_uuid}": expected a file system UUID like 543eb7f8-98d4-d986-e669-824dbebe69a5')

    networks = [_network(f.sub("networks", i, v)) for i, v in enumerate(f.list("networks"))]
    if not networks:
        raise InputError(f'{file}: field "networks" is empty: a machine needs its private primary network')
    primaries = [n for n in networks if is_private_primary(n)]
    if not primaries:
        types = ", ".join(n.networktype or ("private" if n.private else "public") for n in networks)
        raise InputError(
            f'{file}: no private primary network: one entry of "networks" needs networktype '
            f"{' or '.join(PRIVATE_PRIMARY_TYPES)} (got: {types})"
        )
    if len(primaries) > 1:
        raise InputError(f'{file}: {len(primaries)} private primary networks ({", ".join(n.networkid for n in primaries)}): expected exactly one')
    if not primaries[0].ips:
        raise InputError(f'{file}: the private primary network {primaries[0].networkid} has no "ips": the machine would have no address')

    nics = [_nic(f.sub("nics", i, v), i) for i, v in enumerate(f.list("nics"))]
    if not nics:
        raise InputError(f'{file}: field "nics" is empty: the lan interfaces are named after the NICs\' MAC addresses')
    macs = [n.mac for n in nics]
    dup = sorted({m for m in macs if macs.count(m) > 1})
    if dup:
        raise InputError(f'{file}: field "nics" lists MAC {dup[0]} more than once')

    inst = Install(
        hostname=hostname,
        role=role,
        password=password,
        sshpublickey=f.string("sshpublickey", default=""),
        console=console,
        root_uuid=root_uuid,
        raidenabled=f.boolean("raidenabled", default=False),
        # the hammer always writes it; upstream's own test fixtures omit it
        machineuuid=_optional_uuid(f, "machineuuid"),
        networks=networks,
        nics=nics,
        dns_servers=[_server(f, "dns_servers", i, v, key="ip", ip_only=True) for i, v in enumerate(f.list("dns_servers", default=[]))],
        # metal-go's V1NTPServer is tagged "address": a host name or an IP
        ntp_servers=[_server(f, "ntp_servers", i, v, key="address", ip_only=False) for i, v in enumerate(f.list("ntp_servers", default=[]))],
        timestamp=f.string("timestamp", default=""),
        vpn=_vpn(f),
        firewall_rules=_firewall_rules(f),
    )
    if role == "firewall" and inst.underlay_network is None:
        raise InputError(f'{file}: role firewall, but no network has "underlay: true": a firewall peers with the leaves in the underlay')
    bgp = inst.bgp_network
    if not any(ipaddress.ip_address(ip).version == 4 for ip in bgp.ips):
        raise InputError(f'{file}: network {bgp.networkid} has no IPv4 address in "ips": the BGP router-id is taken from it')
    return inst


def parse_console(value: str, file: str = INSTALL_YAML) -> Console:
    m = _CONSOLE.match(value)
    bad = f'{file}: field "console" is "{value}": expected <serial tty>,<baud>[<parity><bits>], e.g. ttyS1,115200n8'
    if not m:
        raise InputError(bad)
    speed = int(m.group(3))
    if speed not in BAUD_RATES:
        raise InputError(f"{bad} (baud {speed} is not one of {', '.join(map(str, BAUD_RATES))})")
    return Console(tty=m.group(1), unit=int(m.group(2)), speed=speed, parity=m.group(4) or "n", bits=int(m.group(5) or 8))


# Cluster API's kubeadm bootstrap userdata starts with this line, #cloud-config follows on line 2;
# cloud-init renders such userdata with Jinja before it reads it.
JINJA_HEADER = "## template: jinja"
CLOUD_CONFIG_HEADER = "#cloud-config"
# a #cloud-config line this far down still marks cloud-config (docs/contract.md §6.8)
CLOUD_CONFIG_LINES = 3


def userdata_kind(text: str) -> str:
    """'none' (absent or blank), 'cloud-config' (a #cloud-config line within the first three lines)
    or 'ignition' (anything else)."""
    stripped = text.lstrip("\ufeff")
    if not stripped.strip():
        return "none"
    if _cloud_config_line(stripped) is not None:
        return "cloud-config"
    return "ignition"


def userdata_is_jinja(text: str) -> bool:
    return text.lstrip("\ufeff").startswith(JINJA_HEADER)


def cloud_config_payload(text: str) -> str:
    """The userdata as cloud-init must get it: from the #cloud-config line on, behind the Jinja header
    if there is one. cloud-init only takes a part for cloud-config if it starts with the header
    (after the Jinja rendering), so lines before it (a comment, a blank line) would make it ignore
    the whole userdata."""
    stripped = text.lstrip("\ufeff")
    lines = stripped.splitlines(keepends=True)
    i = _cloud_config_line(stripped)
    assert i is not None, "not cloud-config"
    head = [lines[0]] if userdata_is_jinja(stripped) and i > 0 else []
    return "".join(head + lines[i:])


def _cloud_config_line(text: str) -> Optional[int]:
    for i, line in enumerate(text.splitlines()[:CLOUD_CONFIG_LINES]):
        # not #cloud-config-archive or #cloud-config-jsonp, which cloud-init reads differently
        if _CLOUD_CONFIG.match(line.strip()):
            return i
    return None


def check_ignition(text: str, file: str) -> str:
    """Returns the Ignition spec version of a userdata that is not cloud-config."""
    import json

    try:
        doc = json.loads(text)
    except ValueError as e:
        raise InputError(f"{file}: userdata is neither cloud-config (no #cloud-config in the first {CLOUD_CONFIG_LINES} lines) nor an Ignition JSON config ({e})") from None
    version = doc.get("ignition", {}).get("version") if isinstance(doc, dict) else None
    if not isinstance(version, str) or not version.startswith("2."):
        raise InputError(f'{file}: Ignition config has "ignition.version" {json.dumps(version)}: this image runs Ignition spec 2.x (e.g. "2.3.0")')
    return version


# ---- helpers ------------------------------------------------------------------------------------

_HOSTNAME = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_CONSOLE = re.compile(r"^(ttyS(\d+)),(\d+)(?:([noe])([5-8]))?$")
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_CLOUD_CONFIG = re.compile(r"^#cloud-config(\s|$)")
_ARGV0 = re.compile(r"^[A-Za-z0-9_./+-]+$")

_MISSING = object()


def _load(text: str, file: str) -> Dict[str, Any]:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        where = ""
        mark = getattr(e, "problem_mark", None)
        if mark is not None:
            where = f":{mark.line + 1}:{mark.column + 1}"
        raise InputError(f"{file}{where}: not valid YAML: {getattr(e, 'problem', None) or e}") from None
    if not isinstance(doc, dict):
        raise InputError(f"{file}: expected a mapping at the top, got {_kind(doc)}")
    return doc


def _kind(v: Any) -> str:
    if v is None:
        return "nothing"
    if isinstance(v, bool):
        return f"boolean {str(v).lower()}"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "a mapping"
    return f"{type(v).__name__} {v!r}"


class _Fields:
    """Typed access to one mapping of a YAML file; every error names the file and the field path."""

    def __init__(self, doc: Dict[str, Any], file: str, hint: str, prefix: str = "") -> None:
        self.doc, self.file, self.hint, self.prefix = doc, file, hint, prefix

    def _err(self, msg: str) -> InputError:
        return InputError(f"{self.file}: {msg}" + (f" ({self.hint})" if self.hint else ""))

    def _get(self, key: str, default: Any) -> Any:
        v = self.doc.get(key)
        if v is None:
            if default is _MISSING:
                raise self._err(f'field "{self.prefix}{key}" is missing')
            return default
        return v

    def string(self, key: str, default: Any = _MISSING) -> str:
        v = self._get(key, default)
        if isinstance(v, bool) or not isinstance(v, (str, int)):
            raise self._err(f'field "{self.prefix}{key}" must be a string, got {_kind(v)}')
        s = str(v)
        if not s and default is _MISSING:
            raise self._err(f'field "{self.prefix}{key}" is empty')
        return s

    def boolean(self, key: str, default: Any = _MISSING) -> bool:
        v = self._get(key, default)
        if not isinstance(v, bool):
            raise self._err(f'field "{self.prefix}{key}" must be true or false, got {_kind(v)}')
        return v

    def integer(self, key: str, lo: int, hi: int, default: Any = _MISSING) -> int:
        v = self._get(key, default)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise self._err(f'field "{self.prefix}{key}" must be an integer from {lo} to {hi}, got {_kind(v)}')
        return v

    def choice(self, key: str, allowed: tuple) -> str:
        v = self.string(key)
        if v not in allowed:
            raise self._err(f'field "{self.prefix}{key}" is "{v}": expected one of {", ".join(allowed)}')
        return v

    def list(self, key: str, default: Any = _MISSING) -> List[Any]:
        v = self._get(key, default)
        if not isinstance(v, list):
            raise self._err(f'field "{self.prefix}{key}" must be a list, got {_kind(v)}')
        return v

    def strings(self, key: str) -> List[str]:
        out = []
        for i, v in enumerate(self.list(key, default=[])):
            if isinstance(v, bool) or not isinstance(v, (str, int)):
                raise self._err(f'field "{self.prefix}{key}[{i}]" must be a string, got {_kind(v)}')
            out.append(str(v))
        return out

    def argv(self, key: str) -> List[str]:
        v = self.strings(key)
        if not v or not _ARGV0.match(v[0]):
            raise self._err(f'field "{self.prefix}{key}" must be a command line as a list, e.g. [update-grub2]')
        return v

    def path(self, key: str) -> str:
        v = self.string(key)
        if not v.startswith("/"):
            raise self._err(f'field "{self.prefix}{key}" is "{v}": expected an absolute path')
        return v

    def sub_mapping(self, key: str, value: Any) -> "_Fields":
        if not isinstance(value, dict):
            raise self._err(f'field "{self.prefix}{key}" must be a mapping or null, got {_kind(value)}')
        return _Fields(value, self.file, self.hint, f"{self.prefix}{key}.")

    def sub(self, key: str, index: int, value: Any) -> "_Fields":
        if not isinstance(value, dict):
            raise self._err(f'field "{self.prefix}{key}[{index}]" must be a mapping, got {_kind(value)}')
        return _Fields(value, self.file, self.hint, f"{self.prefix}{key}[{index}].")


def _network(f: _Fields) -> Network:
    ips = f.strings("ips")
    for i, ip in enumerate(ips):
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise f._err(f'field "{f.prefix}ips[{i}]" is "{ip}": not an IP address') from None
    prefixes = f.strings("prefixes")
    dests = f.strings("destinationprefixes")
    for key, values in (("prefixes", prefixes), ("destinationprefixes", dests)):
        for i, p in enumerate(values):
            try:
                ipaddress.ip_network(p, strict=False)
            except ValueError:
                raise f._err(f'field "{f.prefix}{key}[{i}]" is "{p}": not a CIDR prefix') from None
    return Network(
        # upstream's firewall fixtures have networks without an id (an mpls/external network)
        networkid=f.string("networkid", default=""),
        networktype=f.string("networktype", default=""),
        private=f.boolean("private", default=False),
        underlay=f.boolean("underlay", default=False),
        asn=f.integer("asn", 1, 4294967295),
        ips=ips,
        prefixes=prefixes,
        destinationprefixes=dests,
        vrf=f.integer("vrf", 0, 16777215, default=0),
        nat=f.boolean("nat", default=False),
    )


def _nic(f: _Fields, index: int) -> Nic:
    raw = f.doc.get("mac")
    if isinstance(raw, int) and not isinstance(raw, bool):
        # YAML 1.1 reads an unquoted 00:03:00:11:11:01 as a base-60 number
        raise f._err(f'field "{f.prefix}mac" was read as the number {raw}: quote the MAC address')
    mac = f.string("mac").lower()
    if not _MAC.match(mac):
        raise f._err(f'field "{f.prefix}mac" is "{mac}": expected a MAC address like 00:03:00:11:11:01')
    return Nic(mac=mac, name=f.string("name", default=f"lan{index}"))


def _server(f: _Fields, list_key: str, index: int, value: Any, key: str, ip_only: bool) -> str:
    s = f.sub(list_key, index, value)
    if s.doc.get(key) is None:
        other = next((k for k in ("ip", "address") if k != key and s.doc.get(k) is not None), None)
        if other:
            raise s._err(f'field "{s.prefix}{key}" is missing; the entry has "{other}", but the metal-hammer writes {list_key} entries keyed "{key}"')
    v = s.string(key)
    try:
        ipaddress.ip_address(v)
    except ValueError:
        if ip_only or not _HOSTNAME.match(v):
            kind = "an IP address" if ip_only else "an IP address or host name"
            raise s._err(f'field "{s.prefix}{key}" is "{v}": expected {kind}') from None
    return v


def _optional_uuid(f: _Fields, key: str) -> str:
    v = f.string(key, default="")
    if v and not _UUID.match(v):
        raise f._err(f'field "{f.prefix}{key}" is "{v}": expected a UUID like e0ab02d2-27cd-5a5e-8efc-080ba80cf258')
    return v


def _vpn(f: _Fields) -> Optional[Vpn]:
    raw = f.doc.get("vpn")
    if raw is None:
        return None
    v = f.sub_mapping("vpn", raw)
    address = v.string("address")
    if not re.match(r"^https?://[^\s/]+", address):
        raise v._err(f'field "vpn.address" is "{address}": expected the control server URL, e.g. https://headscale.example.org')
    return Vpn(address=address, auth_key=v.string("auth_key"), connected=v.boolean("connected", default=False))


_PROTOCOLS = ("tcp", "udp")


def _firewall_rules(f: _Fields) -> Optional[FirewallRules]:
    raw = f.doc.get("firewall_rules")
    if raw is None:
        return None
    r = f.sub_mapping("firewall_rules", raw)
    return FirewallRules(
        egress=[_rule(r.sub("egress", i, v), ingress=False) for i, v in enumerate(r.list("egress", default=[]))],
        ingress=[_rule(r.sub("ingress", i, v), ingress=True) for i, v in enumerate(r.list("ingress", default=[]))],
    )


def _rule(f: _Fields, ingress: bool) -> FirewallRule:
    protocol = f.string("protocol").lower()
    if protocol not in _PROTOCOLS:
        raise f._err(f'field "{f.prefix}protocol" is "{protocol}": expected one of {", ".join(_PROTOCOLS)}')
    ports = []
    for i, p in enumerate(f.list("ports", default=[])):
        if isinstance(p, bool) or not isinstance(p, int) or not 1 <= p <= 65535:
            raise f._err(f'field "{f.prefix}ports[{i}]" must be a port number from 1 to 65535, got {_kind(p)}')
        ports.append(p)
    if not ports:
        raise f._err(f'field "{f.prefix}ports" is empty: a rule allows at least one port')
    nets = {}
    for key in ("to", "from") if ingress else ("to",):
        values = f.strings(key)
        for i, p in enumerate(values):
            try:
                ipaddress.ip_network(p, strict=False)
            except ValueError:
                raise f._err(f'field "{f.prefix}{key}[{i}]" is "{p}": not a CIDR prefix') from None
        nets[key] = values
    if ingress and not nets["from"]:
        raise f._err(f'field "{f.prefix}from" is empty: an ingress rule names the sources it allows')
    return FirewallRule(comment=f.string("comment", default=""), protocol=protocol, ports=ports, to=nets["to"], sources=nets.get("from", []))
