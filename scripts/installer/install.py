#!/usr/bin/env python3
"""metal-stack image installer: makes an untarred image bootable and configured for one machine.

The metal-hammer untars the image, writes /etc/metal/install.yaml (and /etc/metal/userdata), and
runs /install.sh in a chroot of it; /install.sh runs this file. The steps are listed in
metal_installer/steps.py; each is logged, and the first one that fails stops the run with a
message naming it (exit code 1).

    install.py                         install (the metal-hammer's call)
    install.py --self-check            image build: is os.yaml complete, are the tools there?
    install.py --record-permissions    image build: record what the hammer's untar loses

Environment: INSTALL_SKIP_BOOTLOADER=1 skips grub-install, grub-mkconfig, efibootmgr and the RAID
probing (containers and VMs without EFI).
"""
from __future__ import annotations

import os
import sys
import time

HERE = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, HERE)

from metal_installer import perms, render, steps  # noqa: E402
from metal_installer.system import LOG, StepError, which, write  # noqa: E402

USAGE = "usage: install.py [--self-check] [--record-permissions]"


def install() -> int:
    ctx = steps.Context(installer_dir=HERE, skip_bootloader=os.environ.get(steps.SKIP_BOOTLOADER_ENV, "") in ("1", "true", "yes"))
    started = time.monotonic()
    LOG.line("installing; log also in /var/log/metal-installer.log")
    plan = [("check-input", steps.check_input)]
    n = 0
    while n < len(plan):
        name, fn = plan[n]
        total = len(plan) if n > 0 else "?"
        LOG.line(f"[{n + 1}/{total}] {name}")
        t = time.monotonic()
        try:
            summary = fn(ctx)
        except StepError as e:
            LOG.line(f"FAILED in step {n + 1} {name}: {e}")
            return 1
        except Exception as e:  # a bug or an unexpected system state: still name the step
            LOG.line(f"FAILED in step {n + 1} {name}: {type(e).__name__}: {e}")
            return 1
        if n == 0:
            plan += steps.plan(ctx.install.role)
            LOG.open_file()
        LOG.line(f"[{n + 1}/{len(plan)}] {name} ok ({time.monotonic() - t:.2f}s): {summary}")
        n += 1
    LOG.line(f"done: {len(plan)} steps in {time.monotonic() - started:.1f}s; the hammer boots {ctx.kernel} with {steps.BOOT_INFO}")
    return 0


def self_check() -> int:
    """Run at the end of the image build: fails the build if the installer could not work here."""
    try:
        osd = steps.load_os_data(HERE)
    except StepError as e:
        print(f"install.py --self-check: {e}", file=sys.stderr)
        return 1
    # lldpd sends the phone-home (metal-core keeps the machine alive by it)
    tools = ["useradd", "userdel", "chpasswd", "vtysh", "systemctl", "blkid", "mdadm", "efibootmgr", "lldpd"]
    tools += [osd.grub_install[0], osd.grub_mkconfig[0], osd.initramfs_update[0]]
    if osd.machine_type == "firewall":
        tools += ["nft", "chronyd"]
    elif osd.ntp_client == "chrony":
        tools.append("chronyd")
    missing = [t for t in tools if which(t) is None]
    if osd.machine_type == "machine" and not os.access(render.AGETTY, os.X_OK):
        missing.append(f"{render.AGETTY} (the console's autologin drop-ins run it)")
    if not (which("ignition") or which("cloud-init")):
        missing.append("ignition or cloud-init")
    problems = [f"missing commands: {', '.join(missing)}"] if missing else []
    try:
        steps.find_kernel(osd)
    except StepError as e:
        problems.append(str(e))
    try:
        import grp

        grp.getgrnam(osd.sudo_group)
    except KeyError:
        problems.append(f'group "{osd.sudo_group}" (sudo_group) does not exist')
    if problems:
        for p in problems:
            print(f"install.py --self-check: {p}", file=sys.stderr)
        return 1
    print(f"install.py --self-check: {osd.os} {osd.version} ({osd.machine_type}), bootloader id {osd.bootloader_id}: ok")
    return 0


def record_permissions() -> int:
    entries = list(perms.scan("/"))
    path = os.path.join(HERE, "permissions.tsv")
    write(path, perms.format_entries(entries))
    print(f"install.py --record-permissions: {len(entries)} entries the hammer's untar would get wrong, in {path}")
    return 0


def main(argv: list) -> int:
    known = {"--self-check": self_check, "--record-permissions": record_permissions}
    if not argv:
        return install()
    if any(a not in known for a in argv):
        print(USAGE, file=sys.stderr)
        return 2
    for a in argv:
        rc = known[a]()
        if rc:
            return rc
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
