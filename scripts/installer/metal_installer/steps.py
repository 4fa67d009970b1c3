"""The installer's steps, in the order docs/contract.md §6 lists them. Each step is one function taking the
context; it returns a one-line summary or raises StepError. The texts come from render.py; this
module only checks preconditions, puts files in place and runs the OS's tools.
"""
from __future__ import annotations

import contextlib
import fnmatch
import glob
import grp
import os
import pwd
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Tuple

import yaml

from . import firewall, perms, render
from .config import (
    INSTALL_YAML,
    Install,
    InputError,
    OsData,
    check_ignition,
    cloud_config_payload,
    parse_install_yaml,
    parse_os_yaml,
    userdata_is_jinja,
    userdata_kind,
)
from .system import LOG, StepError, read, run, which, write

USERDATA = "/etc/metal/userdata"
IGNITION_CONFIG = "/etc/metal/config.ign"
BOOT_INFO = "/etc/metal/boot-info.yaml"
BUILD_YAML = "/etc/metal/build.yaml"
BUILD_META = "/etc/metal/build-meta.yaml"
NETWORK_DIR = "/etc/systemd/network"
FRR_CONF = "/etc/frr/frr.conf"
CLOUD_INIT_CFG = "/etc/cloud/cloud.cfg.d/99_metal_userdata.cfg"
USERDATA_ERROR = "/etc/metal/userdata.error"
USERDATA_MOTD = "/etc/motd.d/metal-userdata"
LLDPD_CONF = "/etc/lldpd.d/metal-phone-home.conf"
SYSTEMD_DIR = "/etc/systemd/system"
UNIT_DIRS = ("/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")
SYSTEMD_DIR = "/etc/systemd/system"
USER = "metal"
UID = 1000

# Test environments (containers, VMs without EFI) set this to skip what needs the real machine's
# firmware and disks: grub-install, update-grub2/grub2-mkconfig, efibootmgr and the RAID probing.
SKIP_BOOTLOADER_ENV = "INSTALL_SKIP_BOOTLOADER"


@dataclass
class Context:
    installer_dir: str
    skip_bootloader: bool
    os_data: Optional[OsData] = None
    inst: Optional[Install] = None
    userdata: str = ""
    userdata_kind: str = "none"
    userdata_problem: str = ""
    kernel: str = ""
    initrd: str = ""
    md_uuid: Optional[str] = None
    notes: List[str] = field(default_factory=list)

    @property
    def os(self) -> OsData:
        assert self.os_data is not None
        return self.os_data

    @property
    def install(self) -> Install:
        assert self.inst is not None
        return self.inst


# ---- 1. inputs -----------------------------------------------------------------------------------


def check_input(ctx: Context) -> str:
    """Everything that can be checked before the first write: inputs, tools, kernel, firmware."""
    ctx.os_data = load_os_data(ctx.installer_dir)
    if not os.path.exists(INSTALL_YAML):
        raise StepError(f"{INSTALL_YAML} is missing: the metal-hammer writes it before it runs /install.sh")
    try:
        ctx.inst = parse_install_yaml(read(INSTALL_YAML), ctx.os)
        if ctx.inst.role == "firewall":
            firewall.check(ctx.inst, INSTALL_YAML)
    except InputError as e:
        raise StepError(str(e)) from None
    # the userdata is only looked at here; whatever is wrong with it is reported by the userdata
    # step and does not stop the installation
    try:
        if os.path.exists(USERDATA):
            ctx.userdata = read(USERDATA)
    except (OSError, UnicodeDecodeError) as e:
        ctx.userdata_problem = f"{USERDATA} cannot be read: {e}"
    ctx.userdata_kind = "unreadable" if ctx.userdata_problem else userdata_kind(ctx.userdata)
    inst, osd = ctx.install, ctx.os

    try:
        grp.getgrnam(osd.sudo_group)
    except KeyError:
        raise StepError(f'group "{osd.sudo_group}" (os.yaml sudo_group) does not exist in this image') from None
    holder = _user_with_uid(UID)
    if holder is not None and holder != USER:
        raise StepError(f'uid {UID} belongs to user "{holder}": the image must leave it free for user {USER}')

    tools = ["useradd", "userdel", "chpasswd", "vtysh", "systemctl"]
    if inst.role == "firewall":
        tools += ["nft", "chronyd"]
    elif osd.ntp_client == "chrony":
        tools.append("chronyd")
    if not ctx.skip_bootloader:
        tools += [osd.grub_install[0], osd.grub_mkconfig[0], "blkid"]
        if inst.raidenabled:
            tools += ["mdadm", "blkid", "efibootmgr", osd.initramfs_update[0]]
    missing = [t for t in tools if which(t) is None]
    if missing:
        raise StepError(f"the image lacks {', '.join(missing)} (looked in the installer's PATH)")

    if inst.role == "firewall":
        _check_nftables_loader(osd.nftables_conf)

    ctx.kernel, ctx.initrd = find_kernel(osd)
    if not ctx.skip_bootloader and not os.path.isdir("/sys/firmware/efi"):
        raise StepError(f"not booted in EFI mode (no /sys/firmware/efi): the installer sets up EFI grub only; test environments set {SKIP_BOOTLOADER_ENV}=1")
    if not inst.sshpublickey.strip():
        ctx.notes.append("no sshpublickey: user metal can log in on the console only")
    if len(inst.dns_servers) > 3:
        ctx.notes.append(f"{len(inst.dns_servers)} dns_servers: the resolver uses the first three only")
    if not inst.machineuuid:
        ctx.notes.append("no machineuuid: LLDP sends no phone-home, so metal-core will not see this machine as alive")
    for n in ctx.notes:
        LOG.line("  note: " + n)
    return (
        f"role {inst.role}, hostname {inst.hostname}, {osd.os} {osd.version}, {len(inst.nics)} NICs, "
        f"{len(inst.networks)} networks, userdata {ctx.userdata_kind}{' (Jinja template)' if userdata_is_jinja(ctx.userdata) else ''}, kernel {ctx.kernel}"
        + (f", {SKIP_BOOTLOADER_ENV}=1" if ctx.skip_bootloader else "")
    )


def load_os_data(installer_dir: str) -> OsData:
    path = os.path.join(installer_dir, "os.yaml")
    if not os.path.exists(path):
        raise StepError(f"{path} is missing: the build stages it next to the installer (scripts/steps/build.ts); rebuild the image")
    try:
        return parse_os_yaml(read(path), path)
    except InputError as e:
        raise StepError(str(e)) from None


def find_kernel(osd: OsData) -> Tuple[str, str]:
    maps = sorted(glob.glob("/boot/System.map-*"))
    if len(maps) != 1:
        raise StepError(f"expected exactly one /boot/System.map-<version>, found {len(maps)}: {' '.join(maps) or 'none'}")
    version = maps[0][len("/boot/System.map-"):]
    kernel = f"/boot/vmlinuz-{version}"
    initrd = "/boot/" + osd.initrd_name(version)
    for p in (kernel, initrd):
        if not os.path.isfile(p):
            raise StepError(f"{p} is missing (kernel {version} from {maps[0]}; initrd name from os.yaml: {osd.initrd})")
    return kernel, initrd


# ---- 2. what the untar lost ----------------------------------------------------------------------


def permissions(ctx: Context) -> str:
    path = os.path.join(ctx.installer_dir, "permissions.tsv")
    restored = "no permissions.tsv (image built without --record-permissions)"
    if os.path.exists(path):
        entries = perms.parse_entries(read(path))
        changed, missing = perms.restore(entries)
        restored = f"{changed} of {len(entries)} recorded entries restored" + (f", {missing} no longer present" if missing else "")
    os.chmod("/var/tmp", 0o1777)
    # systemd-detect-virt would take the machine for a docker container
    if os.path.lexists("/.dockerenv"):
        os.unlink("/.dockerenv")
    # they hold the console password and maybe the userdata's secrets; the hammer may write them 0644
    secured = []
    for p in (INSTALL_YAML, USERDATA):
        if os.path.isfile(p) and not os.path.islink(p):
            os.chown(p, 0, 0)
            os.chmod(p, 0o600)
            secured.append(os.path.basename(p))
    return restored + "; /var/tmp 1777; " + " and ".join(secured) + " 0600"


# ---- 3.-5. identity, resolver, time ---------------------------------------------------------------


def hostname(ctx: Context) -> str:
    write("/etc/hostname", render.hostname(ctx.install))
    write("/etc/hosts", render.hosts(ctx.install))
    return f"/etc/hostname {ctx.install.hostname}, /etc/hosts {ctx.install.primary.ips[0]}"


def resolv_conf(ctx: Context) -> str:
    write("/etc/resolv.conf", render.resolv_conf(ctx.install))
    return "nameservers " + " ".join(ctx.install.dns_servers or render.DEFAULT_DNS)


def ntp(ctx: Context) -> str:
    servers = " ".join(render.ntp_servers(ctx.install))
    if ctx.install.role == "firewall" or ctx.os.ntp_client == "chrony":
        write(ctx.os.chrony_conf, render.chrony_conf(ctx.install))
        return f"chrony ({ctx.os.chrony_conf}): {servers}"
    write("/etc/systemd/timesyncd.conf", render.timesyncd_conf(ctx.install))
    return f"systemd-timesyncd: {servers}"


# ---- 6. user metal ------------------------------------------------------------------------------


def user(ctx: Context) -> str:
    if _user_exists(USER):
        run(["userdel", "--remove", USER])
    run(["useradd", "--create-home", "--uid", str(UID), "--gid", ctx.os.sudo_group, "--shell", "/bin/bash", USER])
    run(["chpasswd"], stdin=f"{USER}:{ctx.install.password}\n")
    return f"{USER} (uid {UID}, group {ctx.os.sudo_group}, /bin/bash), console password set"


# ---- 7.-9. network ------------------------------------------------------------------------------


def network(ctx: Context) -> str:
    for old in glob.glob(os.path.join(NETWORK_DIR, "[01]?-l[ao]*")):
        os.unlink(old)  # files of an earlier run with other NICs
    if ctx.install.role == "firewall":
        return firewall_network(ctx)
    files = render.networkd_files(ctx.install)
    for name, text in files:
        write(os.path.join(NETWORK_DIR, name), text)
    macs = ", ".join(f"{render.lan_name(i)}={n.mac}" for i, n in enumerate(ctx.install.nics))
    return f"{len(files)} files in {NETWORK_DIR}: lo {len(ctx.install.loopback_ips)} addresses, {macs}, MTU {render.MTU[ctx.install.role]}"


def firewall_network(ctx: Context) -> str:
    for pattern in firewall.NETWORKD_GLOBS:
        for old in glob.glob(os.path.join(NETWORK_DIR, pattern)):
            os.unlink(old)  # devices of an earlier run with other networks
    files = firewall.networkd_files(ctx.install)
    for name, text in files:
        write(os.path.join(NETWORK_DIR, name), text)
    evpn = firewall.evpn_networks(ctx.install)
    macs = ", ".join(f"lan{i}={n.mac}" for i, n in enumerate(ctx.install.nics))
    return (
        f"{len(files)} files in {NETWORK_DIR}: lo {', '.join(firewall.underlay(ctx.install).ips)}, {macs} (MTU {render.MTU['firewall']}), bridge, "
        f"VRF+SVI+VXLAN for {', '.join(e.vrf for e in evpn)}"
    )


def frr(ctx: Context) -> str:
    vrfs = ""
    if ctx.install.role == "firewall":
        # the syntax of the installed FRR (FRR 10 needs more than FRR 8)
        version = render.parse_frr_version(run(["vtysh", "--help"], quiet=True))
        try:
            text = firewall.frr_conf(ctx.install, version)
        except ValueError:
            raise StepError(f"cannot tell the installed FRR's version from `vtysh --help` (got {version!r}): the firewall's frr.conf depends on it") from None
        vrfs = f", FRR {version}, EVPN, BGP in {len(firewall.networks_of(ctx.install, *firewall.ROUTED_TYPES))} VRFs with route leaking"
    else:
        text = render.frr_conf(ctx.install)
    candidate = FRR_CONF + ".new"
    write(candidate, text, 0o640)
    try:
        run(["vtysh", "--dryrun", "--inputfile", candidate])
    except StepError as e:
        raise StepError(f"FRR rejects the generated configuration (left in {candidate}): {e}") from None
    owner = "frr" if _user_exists("frr") else None
    group = "frr" if _group_exists("frr") else None
    write(FRR_CONF, text, 0o640, owner, group)
    os.unlink(candidate)
    return f"{FRR_CONF}: AS {ctx.install.asn}, router-id {ctx.install.router_id}{vrfs}, vtysh --dryrun passed"


def lldp(ctx: Context) -> str:
    """lldpd announces the machine's phone-home (docs/contract.md §10); lldpd reads the file when it starts."""
    text = render.lldpd_conf(ctx.install)
    if text is None:
        if os.path.lexists(LLDPD_CONF):
            os.unlink(LLDPD_CONF)
        return f"no machineuuid in {INSTALL_YAML}: no phone-home configured, lldpd sends its defaults"
    write(LLDPD_CONF, text)
    tool = "" if which("lldpd") else " (WARNING: the image has no lldpd)"
    return f"{LLDPD_CONF}: System Name {ctx.install.machineuuid}, every {render.LLDP_TX_INTERVAL}s on {render.LAN_PATTERN}{tool}"


def nftables(ctx: Context) -> str:
    """The firewall's rules go to /etc/nftables/rules; the image's nftables.conf (which
    nftables.service loads at boot) flushes the ruleset and includes them."""
    conf, rules = ctx.os.nftables_conf, firewall.RULES_PATH
    text = firewall.nftables_rules(ctx.install)
    # not beside the rules: an include of /etc/nftables/* would load a candidate too
    candidate = "/etc/metal/nftables-rules.new"
    write(candidate, text, 0o600)
    _nft_check(candidate, f"nft rejects the generated rules (left in {candidate})")
    write(rules, text, 0o600)
    os.unlink(candidate)
    try:
        _nft_check(conf, f"nft rejects {conf} with the generated rules included (the rules are moved back to {candidate})")
    except StepError:
        os.replace(rules, candidate)
        raise
    n_snat = text.count(" masquerade ")
    n_rules = len([r for r in firewall.firewall_rules(ctx.install) if not r.startswith("#")])
    return f"{rules}: input and forward policy drop, {n_snat} SNAT rules, {n_rules} rules from firewall_rules; nft --check of it and of {conf} passed"


def _check_nftables_loader(conf: str) -> None:
    """nftables.service loads the image's nftables.conf at boot: it must include the rules."""
    loader = read(conf) if os.path.exists(conf) else ""
    if not any(fnmatch.fnmatch(firewall.RULES_PATH, pattern) for pattern in firewall.nftables_includes(loader)):
        raise StepError(
            f"{conf} does not include {firewall.RULES_PATH}, so nftables.service would not load the firewall's rules at boot: "
            f'the image must ship an {conf} with "flush ruleset" and include "/etc/nftables/*" (firewall/context/rootfs{conf})'
        )


def _nft_check(path: str, what: str) -> None:
    try:
        run(["nft", "--check", "--file", path])
    except StepError as e:
        hint = " (nft --check needs CAP_NET_ADMIN; in a container run it with --cap-add NET_ADMIN)" if "Operation not permitted" in str(e) else ""
        raise StepError(f"{what}{hint}: {e}") from None


def firewall_units(ctx: Context) -> str:
    """The add-ons' units (each in its VRF), the files they read and the directories an operator's
    userdata fills; enabled in the services step, after the presets."""
    inst = ctx.install
    units = firewall.units(inst)
    for u in units:
        write(os.path.join(SYSTEMD_DIR, u.name), u.text)
    write(firewall.UNITS_PRESET, firewall.units_preset(units))
    for f in firewall.extra_files(inst):
        write(f.path, f.text, f.mode)
    for d in firewall.OPERATOR_DIRS:
        # they hold credentials; an image that ships them arrives 0755 (the hammer's untar)
        os.makedirs(d, mode=0o750, exist_ok=True)
        os.chmod(d, 0o750)
    missing = [f"{u.program}" for u in units if not os.path.exists(u.program)]
    return f"{len(units)} units in {SYSTEMD_DIR} ({', '.join(u.name for u in units)})" + (f"; the image lacks {', '.join(missing)}" if missing else "")


# ---- 10. ssh ------------------------------------------------------------------------------------


def ssh_keys(ctx: Context) -> str:
    pw = pwd.getpwnam(USER)
    ssh_dir = os.path.join(pw.pw_dir, ".ssh")
    os.makedirs(ssh_dir, exist_ok=True)
    os.chown(ssh_dir, pw.pw_uid, pw.pw_gid)
    os.chmod(ssh_dir, 0o700)
    keys = [k.strip() for k in ctx.install.sshpublickey.splitlines() if k.strip()]
    path = os.path.join(ssh_dir, "authorized_keys")
    write(path, "".join(k + "\n" for k in keys), 0o600)
    os.chown(path, pw.pw_uid, pw.pw_gid)
    return f"{path}: {len(keys)} key(s)"


# ---- machine consoles ---------------------------------------------------------------------------


def console(ctx: Context) -> str:
    """Machines: the gettys of the serial console and of tty1 log metal in without a password."""
    for old in glob.glob(os.path.join(SYSTEMD_DIR, "*getty@*.service.d", "10-metal-autologin.conf")):
        os.unlink(old)  # an earlier run's console
    paths = []
    for rel, text in render.autologin_dropins(ctx.install):
        path = os.path.join(SYSTEMD_DIR, rel)
        write(path, text)
        paths.append(os.path.dirname(rel))
    return f"autologin of {USER} on {' and '.join(paths)}"


# ---- 11. userdata -------------------------------------------------------------------------------


class UserdataProblem(Exception):
    """The userdata cannot (fully) take effect. Reported, never fatal: a failed installation makes
    the metal-hammer reboot into PXE and install again, forever."""

    def __init__(self, problem: str, applied: str) -> None:
        super().__init__(problem)
        self.problem, self.applied = problem, applied


def userdata(ctx: Context) -> str:
    for p in (CLOUD_INIT_CFG, IGNITION_CONFIG, USERDATA_ERROR, USERDATA_MOTD):
        if os.path.lexists(p):
            os.unlink(p)  # an earlier run's
    kind = ctx.userdata_kind
    if kind == "none":
        return f"no userdata ({USERDATA} absent or empty)"
    try:
        if kind == "unreadable":
            raise UserdataProblem(ctx.userdata_problem, "it was not applied")
        return _cloud_config(ctx) if kind == "cloud-config" else _ignition(ctx)
    except UserdataProblem as e:
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        write(USERDATA_ERROR, render.userdata_error(kind, e.problem, e.applied, when), 0o600)
        write(USERDATA_MOTD, render.userdata_motd())
        first = e.problem.strip().splitlines()[0] if e.problem.strip() else "?"
        LOG.line(f"WARNING: userdata ({kind}): {e.applied}: {first}")
        LOG.line(f"WARNING: the installation goes on; details in {USERDATA_ERROR}, the login banner points there")
        return f"WARNING {kind} userdata: {e.applied} (see {USERDATA_ERROR})"


def _cloud_config(ctx: Context) -> str:
    """Handed to the image's cloud-init as NoCloud datasource config, which ds-identify finds at boot
    even with /var/lib on its own partition (render.cloud_init_cfg). The schema check only reports:
    cloud-init applies what it can, as it would anywhere."""
    payload = cloud_config_payload(ctx.userdata)
    if which("cloud-init") is None:
        raise UserdataProblem("the image has no cloud-init", "it cannot take effect")
    write(CLOUD_INIT_CFG, render.cloud_init_cfg(ctx.install, payload), 0o600)
    jinja = userdata_is_jinja(payload)
    dropped = len(ctx.userdata.lstrip("\ufeff").splitlines()) - len(payload.splitlines())
    handed = f"handed to cloud-init in {CLOUD_INIT_CFG}" + (f" ({dropped} line(s) before #cloud-config left out)" if dropped else "")
    try:
        _check_cloud_config(ctx, payload, jinja)
    except StepError as e:
        raise UserdataProblem(f"cloud-init's schema check fails:\n{e}", f"it was {handed} as it is, but cloud-init will report errors") from None
    return f"cloud-config{' (Jinja template, rendered by cloud-init at boot)' if jinja else ''} valid, {handed}; cloud-init applies it at first boot"


def _check_cloud_config(ctx: Context, payload: str, jinja: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="metal-userdata-") as d:
        os.chmod(d, 0o700)
        config = os.path.join(d, "user-data")
        write(config, payload, 0o600)
        if jinja:
            # what cloud-init will render at boot, with what the NoCloud datasource then knows
            data = os.path.join(d, "instance-data.json")
            write(data, render.nocloud_instance_data(ctx.install), 0o600)
            rendered = run(["cloud-init", "devel", "render", config, "--instance-data", data], quiet=True)
            write(config, rendered, 0o600)
        # quiet: schema errors quote the userdata, which stays out of the log (it goes to USERDATA_ERROR)
        run(["cloud-init", "schema", "--config-file", config], quiet=True)


def _ignition(ctx: Context) -> str:
    try:
        version = check_ignition(ctx.userdata, USERDATA)
    except InputError as e:
        raise UserdataProblem(str(e), "it was not applied") from None
    if which("ignition") is None:
        raise UserdataProblem("the image has no ignition", "it was not applied")
    write(IGNITION_CONFIG, ctx.userdata, 0o600)
    try:
        # the "file" OEM reads config.ign from the working directory
        run(["ignition", "-oem", "file", "-stage", "files", "-log-to-stdout"], cwd=os.path.dirname(IGNITION_CONFIG))
    except StepError as e:
        raise UserdataProblem(f"Ignition failed: {e}", "it may be applied in part") from None
    return f"Ignition config (spec {version}) applied (files stage) from {IGNITION_CONFIG}"


# ---- 12. boot -----------------------------------------------------------------------------------


def bootloader(ctx: Context) -> str:
    inst, osd = ctx.install, ctx.os
    if inst.raidenabled and not ctx.skip_bootloader:
        ctx.md_uuid = _md_uuid(inst.root_uuid)
    kernel_cmdline = render.cmdline(inst, ctx.md_uuid)
    write(BOOT_INFO, render.boot_info(ctx.kernel, ctx.initrd, kernel_cmdline, osd.bootloader_id))
    # grub-mkconfig puts root=UUID=<fs> ro in front: the same line as boot-info.yaml's
    write("/etc/default/grub", render.grub_default(osd, inst, render.grub_cmdline(inst, ctx.md_uuid)))
    if ctx.skip_bootloader:
        return f"{BOOT_INFO} and /etc/default/grub written; grub-install, {osd.grub_mkconfig[0]}, efibootmgr skipped ({SKIP_BOOTLOADER_ENV}=1)"
    if inst.raidenabled:
        write(osd.mdadm_conf, render.mdadm_conf(run(["mdadm", "--examine", "--scan"])))
        os.makedirs("/var/lib/initramfs-tools", exist_ok=True)
        run(osd.initramfs_update)
    run(
        osd.grub_install
        + ["--target=x86_64-efi", "--efi-directory=/boot/efi", "--boot-directory=/boot", f"--bootloader-id={osd.bootloader_id}", "--removable"]
    )
    with _uuid_link(inst.root_uuid):
        run(osd.grub_mkconfig)
    entries = 0
    if inst.raidenabled:
        # --removable writes no NVRAM entry; with the ESP mirrored, every disk gets one
        for dev in run(["blkid", "--match-token", "PARTLABEL=efi", "--output", "device"]).split():
            disk, part = _disk_and_partition(dev)
            run(["efibootmgr", "--create", "--disk", disk, "--part", part, "--loader", "\\EFI\\BOOT\\BOOTX64.EFI", "--label", osd.bootloader_id])
            entries += 1
    return f"grub installed as {osd.bootloader_id}" + (f", RAID md uuid {ctx.md_uuid}, {entries} EFI boot entries" if inst.raidenabled else "")


@contextlib.contextmanager
def _uuid_link(root_uuid: str):
    """grub-mkconfig writes root=UUID=<fs> only where /dev/disk/by-uuid/<fs> exists; else the
    device name (root=/dev/sda2, which breaks as soon as disks enumerate differently). The
    metal-hammer's /dev has no udev links, so the link is made for the run and removed again."""
    link = f"/dev/disk/by-uuid/{root_uuid}"
    if os.path.lexists(link):
        yield
        return
    dev = run(["blkid", "--uuid", root_uuid], quiet=True).strip()
    if not dev:
        raise StepError(f"no block device has the root file system's UUID {root_uuid} (install.yaml root_uuid)")
    os.makedirs(os.path.dirname(link), exist_ok=True)
    os.symlink(dev, link)
    try:
        yield
    finally:
        os.unlink(link)


def _md_uuid(root_uuid: str) -> Optional[str]:
    dev = run(["blkid", "--uuid", root_uuid]).strip()
    uuid = render.parse_md_uuid(run(["mdadm", "--detail", "--export", dev]))
    if not uuid:
        raise StepError(f"raidenabled, but the root file system {root_uuid} is on {dev}, which is no md array")
    return uuid


def _disk_and_partition(dev: str) -> Tuple[str, str]:
    name = os.path.basename(dev)
    sys_dir = os.path.realpath(f"/sys/class/block/{name}")
    part = read(os.path.join(sys_dir, "partition")).strip()
    return "/dev/" + os.path.basename(os.path.dirname(sys_dir)), part


# ---- 13. identity of the installed system -------------------------------------------------------


def services(ctx: Context) -> str:
    kept = []
    for p in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            write(p, "", 0o444)
        except OSError as e:
            # only on a running system (a VM test): systemd may have mounted a transient ID over it
            if not os.path.ismount(p):
                raise
            kept.append(f"{p} ({e.strerror}: a mount point of the running system)")
    run(["systemctl", "preset-all"])
    summary = "machine-id emptied (systemd generates it at first boot), unit presets applied"
    if kept:
        summary += "; left alone: " + ", ".join(kept)
    if ctx.install.role == "firewall":
        summary += "; " + _enable_firewall_units(ctx)
    return summary


def _enable_firewall_units(ctx: Context) -> str:
    inst = ctx.install
    enable: List[str] = []
    left: List[str] = []
    vrf = firewall.default_route_vrf(inst)
    if vrf is None:
        left.append("chrony@.service (no network has a default route)")
    elif not any(os.path.exists(os.path.join(d, "chrony@.service")) for d in UNIT_DIRS):
        left.append(f"chrony@{vrf}.service (the image has no chrony@.service template; chrony keeps the image's presets)")
    else:
        enable.append(f"chrony@{vrf}.service")  # starts once networkd has created the VRF device
    operator = []
    for u in firewall.units(inst):
        if not u.enable:
            operator.append(u.name)
        elif not os.path.exists(u.program):
            left.append(f"{u.name} (the image lacks {u.program})")
        else:
            enable.append(u.name)
    if enable:
        run(["systemctl", "enable"] + enable)
    if "node-exporter.service" in enable and any(os.path.exists(os.path.join(d, "prometheus-node-exporter.service")) for d in UNIT_DIRS):
        run(["systemctl", "disable", "prometheus-node-exporter.service"])  # one exporter on 9100
    out = f"enabled: {', '.join(enable) or 'none'}"
    if left:
        out += f"; not enabled: {', '.join(left)}"
    if operator:
        out += f"; left to the operator's userdata: {', '.join(operator)}"
    return out


def build_meta(ctx: Context) -> str:
    if not os.path.exists(BUILD_YAML):
        raise StepError(f"{BUILD_YAML} is missing: the image build writes it in its last layer")
    build = yaml.safe_load(read(BUILD_YAML)) or {}
    ignition = run(["ignition", "-version"], quiet=True).strip() if which("ignition") else ""
    frr_version = render.parse_frr_version(run(["vtysh", "--help"], quiet=True))
    write(BUILD_META, render.build_meta(build, ignition, frr_version))
    return f"{BUILD_META}: build {build.get('build_version', '?')}, {ignition or 'no ignition'}, FRR {frr_version}"


# ---- the plan -----------------------------------------------------------------------------------

Step = Tuple[str, Callable[[Context], str]]


def plan(role: str) -> List[Step]:
    """The steps after check-input, for a role."""
    steps: List[Step] = [
        ("permissions", permissions),
        ("hostname", hostname),
        ("resolv.conf", resolv_conf),
        ("ntp", ntp),
        ("user", user),
        ("network", network),
        ("frr", frr),
        ("lldp", lldp),
    ]
    if role == "firewall":
        steps += [("nftables", nftables), ("firewall-units", firewall_units)]
    steps.append(("ssh-keys", ssh_keys))
    if role == "machine":
        steps.append(("console", console))
    steps += [
        ("userdata", userdata),
        ("bootloader", bootloader),
        ("services", services),
        ("build-meta", build_meta),
    ]
    return steps


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def _user_with_uid(uid: int) -> Optional[str]:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None
