"""The text of every file the installer writes, as pure functions of the parsed inputs.

No file system access and no commands: the unit tests (tests/installer/) compare these strings
exactly, and the steps (steps.py) only put them in place.
"""
from __future__ import annotations

import ipaddress
from typing import Dict, List, Optional, Tuple

import yaml

from .config import Install, OsData

HEADER = "# written by the metal-stack installer from /etc/metal/install.yaml"

DEFAULT_DNS = ["8.8.8.8", "8.8.4.4"]
DEFAULT_NTP = ["time.cloudflare.com"]

# MTU of the lan interfaces: the leaves' fabric MTU differs for machines and firewalls.
MTU = {"machine": 9000, "firewall": 9216}

# Leaf-facing interfaces that speak BGP unnumbered (the first two NICs).
BGP_UPLINKS = 2


def hostname(inst: Install) -> str:
    return inst.hostname + "\n"


def hosts(inst: Install) -> str:
    return "\n".join(
        [
            HEADER,
            "127.0.0.1\tlocalhost",
            f"{inst.primary.ips[0]}\t{inst.hostname}",
            "",
            "::1\tlocalhost ip6-localhost ip6-loopback",
            "ff02::1\tip6-allnodes",
            "ff02::2\tip6-allrouters",
            "",
        ]
    )


def resolv_conf(inst: Install) -> str:
    servers = inst.dns_servers or DEFAULT_DNS
    return "\n".join([HEADER] + [f"nameserver {s}" for s in servers] + [""])


def ntp_servers(inst: Install) -> List[str]:
    return inst.ntp_servers or DEFAULT_NTP


def timesyncd_conf(inst: Install) -> str:
    return "\n".join([HEADER, "[Time]", "NTP=" + " ".join(ntp_servers(inst)), ""])


def chrony_conf(inst: Install) -> str:
    lines = [HEADER]
    if inst.role == "firewall":
        lines.append("# chrony runs in the VRF with the default route (chrony@vrf<id>.service, enabled by the installer)")
    for s in ntp_servers(inst):
        lines.append(f"server {s} iburst" if _is_ip(s) else f"pool {s} iburst")
    lines += [
        "driftfile /var/lib/chrony/chrony.drift",
        "# step the clock in the first three updates if it is off by more than a second",
        "makestep 1 3",
        "maxupdateskew 100.0",
        "rtcsync",
        "",
    ]
    return "\n".join(lines)


def lan_name(index: int) -> str:
    return f"lan{index}"


def networkd_files(inst: Install) -> List[Tuple[str, str]]:
    """(file name, text) under /etc/systemd/network, in the order they are written."""
    lo = [HEADER, "[Match]", "Name=lo", "", "[Address]", "Address=127.0.0.1/8"]
    for ip in inst.loopback_ips:
        prefix = 32 if ipaddress.ip_address(ip).version == 4 else 128
        lo += ["", "[Address]", f"Address={ip}/{prefix}"]
    files = [("00-lo.network", "\n".join(lo) + "\n")]
    for i, nic in enumerate(inst.nics):
        name = lan_name(i)
        link = [HEADER, "[Match]", f"PermanentMACAddress={nic.mac}", "", "[Link]", f"Name={name}", "NamePolicy=", f"MTUBytes={MTU[inst.role]}", ""]
        network = [HEADER, "[Match]", f"Name={name}", "", "[Network]", "IPv6AcceptRA=no", ""]
        files.append((f"1{i}-{name}.link", "\n".join(link)))
        files.append((f"1{i}-{name}.network", "\n".join(network)))
    return files


def frr_conf(inst: Install) -> str:
    """BGP unnumbered to the leaves over the first two lan interfaces, announcing only own routes.

    For firewalls this is the underlay (default VRF) part only; the tenant VRFs and EVPN come with
    the VRF layout.
    """
    if inst.role == "machine":
        return frr_machine_conf(inst)
    uplinks = [lan_name(i) for i in range(min(BGP_UPLINKS, len(inst.nics)))]
    peer = "TOR" if inst.role == "machine" else "FABRIC"
    out = [
        "! " + HEADER[2:],
        "frr defaults datacenter",
        f"hostname {inst.hostname}",
        "log syslog informational",
        "service integrated-vtysh-config",
        "!",
    ]
    for u in uplinks:
        # BGP unnumbered learns the peer's link-local address from router advertisements
        out += [f"interface {u}", " ipv6 nd ra-interval 6", " no ipv6 nd suppress-ra", "!"]
    out += [
        f"router bgp {inst.asn}",
        f" bgp router-id {inst.router_id}",
        " bgp bestpath as-path multipath-relax",
        f" neighbor {peer} peer-group",
        f" neighbor {peer} remote-as external",
        f" neighbor {peer} timers 2 8",
    ]
    out += [f" neighbor {u} interface peer-group {peer}" for u in uplinks]
    redistribute = [" redistribute connected", " redistribute kernel"] if inst.role == "machine" else [" redistribute connected route-map LOOPBACKS"]
    out += [" !", " address-family ipv4 unicast"]
    out += [" " + r for r in redistribute]
    out += [f"  neighbor {peer} route-map only-self-out out", " exit-address-family"]
    out += [" !", " address-family ipv6 unicast"]
    out += [" " + r for r in redistribute]
    out += [f"  neighbor {peer} activate", f"  neighbor {peer} route-map only-self-out out", " exit-address-family", "!"]
    out += [
        "bgp as-path access-list SELF permit ^$",
        "!",
        "route-map only-self-out permit 10",
        " match as-path SELF",
        "!",
        "route-map only-self-out deny 99",
        "!",
    ]
    if inst.role == "firewall":
        out += ["route-map LOOPBACKS permit 10", " match interface lo", "!"]
    out += ["line vty", "!", ""]
    return "\n".join(out)


def frr_machine_conf(inst: Install) -> str:
    """A machine's FRR, statement for statement what metal-networker configured (docs/contract.md §8):

    - peer group TOR: BGP unnumbered to the leaves over lan0 and lan1, announcing only own routes
      (as-path ^$), IPv4 and IPv6 unicast;
    - peer group LOCAL: iBGP from any address (`bgp listen range 0.0.0.0/0`), so that BGP speakers
      on the node itself (MetalLB speakers placed by metal-ccm, kube-vip) announce service and VIP
      addresses through this FRR; their routes get weight 32768 (route-map local-in), like the
      machine's own, and go out to the leaves as the machine's;
    - RAs on the lan interfaces (unnumbered learns the leaves' link-local addresses from them) and
      `no zebra nexthop kernel enable` (zebra does not treat kernel routes as nexthops).

    Left out on purpose: `frr version` (FRR records its own when it saves) and metal-networker's
    `log syslog debugging` with four `debug bgp` lines (they flood the journal of a production
    node); `log syslog informational` instead.
    """
    uplinks = [lan_name(i) for i in range(min(BGP_UPLINKS, len(inst.nics)))]
    out = [
        "! " + HEADER[2:],
        "frr defaults datacenter",
        f"hostname {inst.hostname}",
        "allow-reserved-ranges",
        "log syslog informational",
        "service integrated-vtysh-config",
        "!",
    ]
    for u in uplinks:
        out += [f"interface {u}", " ipv6 nd ra-interval 6", " no ipv6 nd suppress-ra", "!"]
    out += ["no zebra nexthop kernel enable", "!"]
    out += [
        f"router bgp {inst.asn}",
        f" bgp router-id {inst.router_id}",
        " bgp bestpath as-path multipath-relax",
        " neighbor TOR peer-group",
        " neighbor TOR remote-as external",
        " neighbor TOR timers 2 8",
    ]
    out += [f" neighbor {u} interface peer-group TOR" for u in uplinks]
    out += [
        " neighbor LOCAL peer-group",
        " neighbor LOCAL remote-as internal",
        " neighbor LOCAL timers 2 8",
        " neighbor LOCAL route-map local-in in",
        " bgp listen range 0.0.0.0/0 peer-group LOCAL",
    ]
    for family in ("ipv4", "ipv6"):
        out += [" !", f" address-family {family} unicast", "  redistribute connected", "  redistribute kernel", "  neighbor TOR route-map only-self-out out"]
        if family == "ipv6":
            out.append("  neighbor TOR activate")
        out.append(" exit-address-family")
    out += [
        "!",
        "bgp as-path access-list SELF permit ^$",
        "!",
        "route-map local-in permit 10",
        " set weight 32768",
        "!",
        "route-map only-self-out permit 10",
        " match as-path SELF",
        "!",
        "route-map only-self-out deny 99",
        "!",
        "line vty",
        "!",
        "",
    ]
    return "\n".join(out)


# ---- LLDP phone-home -----------------------------------------------------------------------------

# The lan interfaces as the networkd .link files name them (lan0, lan1, ...).
LAN_PATTERN = "lan*"
# go-lldpd's interval; a hold of 2 gives its TTL of 4 s
LLDP_TX_INTERVAL = 2
LLDP_TX_HOLD = 2


def lldpd_conf(inst: Install) -> Optional[str]:
    """lldpd configuration (read by lldpcli when lldpd starts) that makes Debian's lldpd send what
    metal-stack's go-lldpd sends (docs/contract.md §10): System Name = the machine UUID, System
    Description "provisioned since <timestamp>", every 2 s with TTL 4 s, port id = interface name,
    on the lan interfaces. metal-core on the leaves takes such a frame as the machine's phone-home.

    None without machineuuid (upstream's test fixtures; the hammer always writes it): lldpd then
    keeps its defaults (host name and kernel), which metal-core ignores, rather than phoning home
    under a wrong name.
    """
    if not inst.machineuuid:
        return None
    since = "".join(c for c in inst.timestamp if c.isalnum() or c in ":.+-_ ")
    description = f"provisioned since {since}" if since else "provisioned"
    return "\n".join(
        [
            HEADER,
            "# LLDP phone-home as metal-stack's go-lldpd sends it: metal-core on the leaves takes a frame",
            '# whose System Description contains "provisioned" as a sign of life of the machine named by its',
            "# System Name.",
            f"configure system hostname {inst.machineuuid}",
            f'configure system description "{description}"',
            f"configure system interface pattern {LAN_PATTERN}",
            "configure lldp portidsubtype ifname",
            f"configure lldp tx-interval {LLDP_TX_INTERVAL}",
            f"configure lldp tx-hold {LLDP_TX_HOLD}",
            "",
        ]
    )


# ---- cloud-init ----------------------------------------------------------------------------------


def nocloud_instance_id(inst: Install) -> str:
    """cloud-init runs its per-instance modules once per instance id: the machine's UUID, or, where
    install.yaml has none, the root file system's (new with every installation)."""
    return inst.machineuuid or f"metal-{inst.root_uuid}"


def cloud_init_cfg(inst: Install, payload: str) -> str:
    """/etc/cloud/cloud.cfg.d/99_metal_userdata.cfg: the userdata as NoCloud datasource config.

    ds-identify (cloud-init's systemd generator) decides at boot whether cloud-init runs at all. It
    runs before local-fs.target, so a seed in /var/lib/cloud/seed is invisible to it when /var/lib
    is a partition of its own (the default layout, docs/contract.md §7). It also takes NoCloud as found
    when the config under /etc/cloud names NoCloud with user-data and meta-data, and cloud-init's
    NoCloud reads exactly those keys from its datasource config. The file sorts after the image's
    99_metal.cfg, so it keeps that file's datasource_list.
    """
    doc = {"datasource": {"NoCloud": {"meta-data": {"instance-id": nocloud_instance_id(inst), "local-hostname": inst.hostname}, "user-data": payload}}}
    head = [
        HEADER[: -len("/etc/metal/install.yaml")] + "/etc/metal/userdata and install.yaml",
        "# The userdata as cloud-init's NoCloud datasource config: ds-identify finds it here at boot",
        "# (it runs before /var/lib is mounted), and cloud-init applies it at first boot.",
    ]
    return "\n".join(head) + "\n" + yaml.dump(doc, Dumper=_LiteralDumper, sort_keys=False, default_flow_style=False, width=4096, allow_unicode=True)


def nocloud_instance_data(inst: Install) -> str:
    """What cloud-init's Jinja rendering will see of the NoCloud datasource at boot (the keys
    templates use: ds.meta_data and v1's instance and host names), for `cloud-init devel render`."""
    md = {"instance-id": nocloud_instance_id(inst), "local-hostname": inst.hostname}
    v1 = {
        "cloud_name": "unknown", "cloud-name": "unknown", "platform": "nocloud", "subplatform": "config (ds_config)",
        "instance_id": md["instance-id"], "instance-id": md["instance-id"],
        "local_hostname": inst.hostname, "local-hostname": inst.hostname, "region": None, "availability_zone": None,
    }
    import json

    return json.dumps({"ds": {"meta_data": md, "meta-data": md}, "v1": v1, "merged_cfg": {}}, indent=1) + "\n"


def userdata_error(kind: str, problem: str, applied: str, when: str) -> str:
    """/etc/metal/userdata.error: what went wrong with the userdata, for the operator."""
    return "\n".join(
        [
            f"# metal-stack installer, {when}",
            f"The {kind} userdata (/etc/metal/userdata) has a problem: {applied}",
            "The installation went on without stopping: a failed installation would make the",
            "metal-hammer reboot into PXE and install again, forever.",
            "",
            problem.rstrip("\n"),
            "",
        ]
    )


def userdata_motd() -> str:
    return "\n  WARNING: this machine's userdata had a problem at installation; see /etc/metal/userdata.error (sudo).\n\n"


# ---- console -------------------------------------------------------------------------------------

# Debian's, Ubuntu's and Almalinux's getty units run util-linux agetty with these options; -f in
# login's options and --autologin make it log the user in without asking.
AGETTY = "/sbin/agetty"
USER_NAME = "metal"
SERIAL_BAUDS = (115200, 57600, 38400, 9600)


def autologin_dropins(inst: Install) -> List[Tuple[str, str]]:
    """(path under /etc/systemd/system, text): machine consoles log user metal in without a password,
    as upstream's machine images do (docs/contract.md §11): the serial console of install.yaml's console
    (systemd-getty-generator starts its getty from the kernel's console=) and tty1."""
    c = inst.console
    bauds = ",".join(str(b) for b in dict.fromkeys((c.speed,) + SERIAL_BAUDS))
    # the unit file says \\u; systemd unescapes it to \u, which agetty replaces with the user name
    login = "-o '-p -f -- \\\\u'"
    text = "\n".join(
        [
            HEADER,
            "# Machines: the console logs user metal in without a password (firewalls keep asking).",
            "[Service]",
            "ExecStart=",
            "{exec}",
            "",
        ]
    )
    name = "10-metal-autologin.conf"
    serial = f"ExecStart=-{AGETTY} {login} --keep-baud {bauds} --autologin {USER_NAME} - $TERM"
    tty1 = f"ExecStart=-{AGETTY} {login} --noclear --autologin {USER_NAME} - $TERM"
    return [
        (f"serial-getty@{c.tty}.service.d/{name}", text.replace("{exec}", serial)),
        (f"getty@tty1.service.d/{name}", text.replace("{exec}", tty1)),
    ]


def cmdline(inst: Install, md_uuid: Optional[str]) -> str:
    """boot-info.yaml's cmdline: the parameters of GRUB's linux line, in its order. grub-mkconfig's
    10_linux always writes `root=UUID=<fs uuid of /> ro` and then GRUB_CMDLINE_LINUX, so the first
    boot (the hammer's kexec) and every later one (firmware, GRUB) start the kernel alike. `ro`
    changes nothing for initramfs-tools and dracut (they mount root read-only by default);
    systemd-remount-fs remounts it as /etc/fstab says."""
    return f"root=UUID={inst.root_uuid} ro " + grub_cmdline(inst, md_uuid)


def grub_cmdline(inst: Install, md_uuid: Optional[str]) -> str:
    """GRUB_CMDLINE_LINUX: everything but root= and ro, which grub-mkconfig adds (twice root= would
    leave the kernel with the last one)."""
    parts = [
        f"console={inst.console.kernel_arg}",
        "init=/sbin/init",
        "net.ifnames=0",
        "biosdevname=0",
        "nvme_core.io_timeout=300",
    ]
    if md_uuid:
        parts += ["rdloaddriver=raid0", "rdloaddriver=raid1", f"rd.md.uuid={md_uuid}"]
    return " ".join(parts)


def grub_default(os_data: OsData, inst: Install, grub_cmdline_linux: str) -> str:
    c = inst.console
    return "\n".join(
        [
            HEADER,
            "GRUB_DEFAULT=0",
            "GRUB_TIMEOUT=5",
            f"GRUB_DISTRIBUTOR={os_data.bootloader_id}",
            'GRUB_CMDLINE_LINUX_DEFAULT=""',
            f'GRUB_CMDLINE_LINUX="{grub_cmdline_linux}"',
            "GRUB_TERMINAL=serial",
            f'GRUB_SERIAL_COMMAND="serial --unit={c.unit} --speed={c.speed} --word={c.bits} --parity={c.grub_parity} --stop=1"',
            "",
        ]
    )


def boot_info(kernel: str, initrd: str, kernel_cmdline: str, bootloader_id: str) -> str:
    """What the metal-hammer reads to kexec into the installed kernel."""
    return _yaml({"kernel": kernel, "initrd": initrd, "cmdline": kernel_cmdline, "bootloader_id": bootloader_id})


def build_meta(build: Dict[str, object], ignition_version: str, frr_version: str) -> str:
    """/etc/metal/build-meta.yaml; the keys are the ones upstream's installers write."""
    return "---\n" + _yaml(
        {
            "buildVersion": str(build.get("build_version", "")),
            "buildDate": str(build.get("build_date", "")),
            "buildSHA": str(build.get("build_commit", "")),
            "ignitionVersion": ignition_version,
            "frrVersion": frr_version,
        }
    )


def mdadm_conf(scan: str) -> str:
    return scan.rstrip("\n") + "\nMAILADDR root\n"


# ---- parsers of command output --------------------------------------------------------------------


def parse_md_uuid(mdadm_export: str) -> Optional[str]:
    """MD_UUID from `mdadm --detail --export <dev>`."""
    for line in mdadm_export.splitlines():
        if line.startswith("MD_UUID="):
            return line.split("=", 1)[1].strip() or None
    return None


def parse_frr_version(vtysh_help: str) -> str:
    """'8.4.4' from vtysh --help ("Integrated shell for FRR (version 8.4.4).")."""
    marker = "(version "
    i = vtysh_help.find(marker)
    if i < 0:
        return ""
    return vtysh_help[i + len(marker):].split(")", 1)[0].strip()


def _is_ip(s: str) -> bool:
    try:
        ipaddress.ip_address(s)
        return True
    except ValueError:
        return False


class _LiteralDumper(yaml.SafeDumper):
    """Multi-line strings as | blocks (readable userdata), where YAML allows it."""


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None)


_LiteralDumper.add_representer(str, _str_representer)


def _yaml(data: Dict[str, object]) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=4096)
