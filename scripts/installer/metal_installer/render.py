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


def cmdline(inst: Install, md_uuid: Optional[str]) -> str:
    parts = [
        f"console={inst.console.kernel_arg}",
        f"root=UUID={inst.root_uuid}",
        "init=/sbin/init",
        "net.ifnames=0",
        "biosdevname=0",
        "nvme_core.io_timeout=300",
    ]
    if md_uuid:
        parts += ["rdloaddriver=raid0", "rdloaddriver=raid1", f"rd.md.uuid={md_uuid}"]
    return " ".join(parts)


def grub_default(os_data: OsData, inst: Install, kernel_cmdline: str) -> str:
    c = inst.console
    return "\n".join(
        [
            HEADER,
            "GRUB_DEFAULT=0",
            "GRUB_TIMEOUT=5",
            f"GRUB_DISTRIBUTOR={os_data.bootloader_id}",
            'GRUB_CMDLINE_LINUX_DEFAULT=""',
            f'GRUB_CMDLINE_LINUX="{kernel_cmdline}"',
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


def nocloud_meta_data(inst: Install) -> str:
    return _yaml({"instance-id": inst.machineuuid, "local-hostname": inst.hostname})


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


def _yaml(data: Dict[str, object]) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=4096)
