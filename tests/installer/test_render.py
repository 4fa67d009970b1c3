"""Unit tests of the file texts the installer writes (scripts/installer/metal_installer/render.py)
and of the permissions record (perms.py). Exact strings: a change to a generated file shows here.

Run: python3 -m unittest discover -s tests/installer
"""
import os
import stat
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts", "installer"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from metal_installer import perms, render  # noqa: E402
from metal_installer.config import parse_install_yaml, parse_os_yaml  # noqa: E402
from test_config import OS_YAML, fixture  # noqa: E402

H = render.HEADER


class Machine(unittest.TestCase):
    def setUp(self):
        self.osd = parse_os_yaml(OS_YAML)
        self.inst = parse_install_yaml(fixture("machine.yaml"), self.osd)

    def test_identity_files(self):
        self.assertEqual(render.hostname(self.inst), "machine-fixture\n")
        self.assertEqual(
            render.hosts(self.inst),
            f"{H}\n127.0.0.1\tlocalhost\n10.0.17.2\tmachine-fixture\n\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
        )
        self.assertEqual(render.resolv_conf(self.inst), f"{H}\nnameserver 1.1.1.1\nnameserver 1.0.0.1\n")
        self.assertEqual(render.timesyncd_conf(self.inst), f"{H}\n[Time]\nNTP=192.0.2.123 ntp.example.org\n")

    def test_networkd(self):
        files = dict(render.networkd_files(self.inst))
        self.assertEqual(list(files), ["00-lo.network", "10-lan0.link", "10-lan0.network", "11-lan1.link", "11-lan1.network"])
        self.assertEqual(
            files["00-lo.network"],
            f"{H}\n[Match]\nName=lo\n\n[Address]\nAddress=127.0.0.1/8\n\n[Address]\nAddress=10.0.17.2/32\n\n[Address]\nAddress=185.1.2.3/32\n",
        )
        self.assertEqual(files["11-lan1.link"], f"{H}\n[Match]\nPermanentMACAddress=00:03:00:11:12:01\n\n[Link]\nName=lan1\nNamePolicy=\nMTUBytes=9000\n")
        self.assertEqual(files["10-lan0.network"], f"{H}\n[Match]\nName=lan0\n\n[Network]\nIPv6AcceptRA=no\n")

    def test_frr(self):
        conf = render.frr_conf(self.inst)
        self.assertIn("\nrouter bgp 4200003073\n bgp router-id 10.0.17.2\n", conf)
        self.assertIn(" neighbor lan0 interface peer-group TOR\n neighbor lan1 interface peer-group TOR\n", conf)
        self.assertIn(" neighbor TOR timers 2 8\n", conf)
        self.assertIn("bgp as-path access-list SELF permit ^$\n", conf)
        self.assertIn("interface lan1\n ipv6 nd ra-interval 6\n no ipv6 nd suppress-ra\n", conf)
        self.assertNotIn("LOOPBACKS", conf)

    def test_one_nic_peers_on_lan0_only(self):
        text = fixture("machine.yaml").split("  - mac: \"00:03:00:11:12:01\"")[0] + "dns_servers: []\n"
        conf = render.frr_conf(parse_install_yaml(text, self.osd))
        self.assertIn(" neighbor lan0 interface peer-group TOR\n !", conf)
        self.assertNotIn("lan1", conf)

    def test_boot(self):
        cmdline = render.cmdline(self.inst, None)
        self.assertEqual(
            cmdline,
            "console=ttyS1,115200n8 root=UUID=bbbce17d-e50e-4ce4-a645-2ec36ce41b36 init=/sbin/init net.ifnames=0 biosdevname=0 nvme_core.io_timeout=300",
        )
        self.assertEqual(render.cmdline(self.inst, "a:b:c:d").split(" ")[-3:], ["rdloaddriver=raid0", "rdloaddriver=raid1", "rd.md.uuid=a:b:c:d"])
        self.assertEqual(
            render.boot_info("/boot/vmlinuz-6.1", "/boot/initrd.img-6.1", cmdline, "metal-debian"),
            f"kernel: /boot/vmlinuz-6.1\ninitrd: /boot/initrd.img-6.1\ncmdline: {cmdline}\nbootloader_id: metal-debian\n",
        )
        grub = render.grub_default(self.osd, self.inst, cmdline)
        self.assertIn('\nGRUB_SERIAL_COMMAND="serial --unit=1 --speed=115200 --word=8 --parity=no --stop=1"\n', grub)
        self.assertIn(f'\nGRUB_CMDLINE_LINUX="{cmdline}"\n', grub)
        self.assertIn("\nGRUB_DISTRIBUTOR=metal-debian\n", grub)

    def test_build_meta_and_seed(self):
        self.assertEqual(
            render.build_meta({"build_version": "v1-2-g3", "build_date": "2025-11-25T10:00:00Z", "build_commit": "abc"}, "Ignition v0.36.2", "8.4.4"),
            "---\nbuildVersion: v1-2-g3\nbuildDate: '2025-11-25T10:00:00Z'\nbuildSHA: abc\nignitionVersion: Ignition v0.36.2\nfrrVersion: 8.4.4\n",
        )
        self.assertEqual(render.nocloud_meta_data(self.inst), "instance-id: 8db04025-af46-47c9-a5c4-2e2d3795e827\nlocal-hostname: machine-fixture\n")

    def test_output_parsers(self):
        self.assertEqual(render.parse_md_uuid("MD_LEVEL=raid1\nMD_UUID=4b2e1f3a:8c9d0e1f:2a3b4c5d:6e7f8091\nMD_NAME=any:root\n"), "4b2e1f3a:8c9d0e1f:2a3b4c5d:6e7f8091")
        self.assertIsNone(render.parse_md_uuid("MD_LEVEL=raid1\n"))
        self.assertEqual(render.parse_frr_version("Usage : vtysh [OPTION...]\n\nIntegrated shell for FRR (version 8.4.4). \n"), "8.4.4")
        self.assertEqual(render.parse_frr_version("something else"), "")
        self.assertEqual(render.mdadm_conf("ARRAY /dev/md/root metadata=1.2 UUID=x\n"), "ARRAY /dev/md/root metadata=1.2 UUID=x\nMAILADDR root\n")


class Firewall(unittest.TestCase):
    """What render.py writes for firewalls too; the VRF layout, FRR, nftables and units are in
    firewall.py (tests/installer/test_firewall.py)."""

    def setUp(self):
        self.osd = parse_os_yaml(OS_YAML.replace("machine_type: machine", "machine_type: firewall"))
        self.inst = parse_install_yaml(fixture("firewall.yaml"), self.osd)

    def test_defaults(self):
        self.assertEqual(render.resolv_conf(self.inst), f"{H}\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n")
        self.assertEqual(
            render.chrony_conf(self.inst),
            f"{H}\n# chrony runs in the VRF with the default route (chrony@vrf<id>.service, enabled by the installer)\npool time.cloudflare.com iburst\n"
            "driftfile /var/lib/chrony/chrony.drift\n# step the clock in the first three updates if it is off by more than a second\nmakestep 1 3\nmaxupdateskew 100.0\nrtcsync\n",
        )

    def test_chrony_servers_by_ip_and_pools_by_name(self):
        text = fixture("firewall.yaml") + "ntp_servers:\n  - address: 192.0.2.1\n  - address: pool.example.org\n"
        conf = render.chrony_conf(parse_install_yaml(text, self.osd))
        self.assertIn("\nserver 192.0.2.1 iburst\npool pool.example.org iburst\n", conf)


class Permissions(unittest.TestCase):
    def test_format_round_trip(self):
        entries = [perms.Entry(0o700, 0, 0, None, "/root"), perms.Entry(0o755, 0, 0, bytes.fromhex("01000002"), "/usr/bin/ping")]
        text = perms.format_entries(entries)
        self.assertEqual(text, f"{perms.FORMAT_LINE}\n700\t0\t0\t-\t/root\n755\t0\t0\t01000002\t/usr/bin/ping\n")
        self.assertEqual(perms.parse_entries(text), entries)
        with self.assertRaises(ValueError):
            perms.parse_entries("700 0 0 - /root\n")

    def test_what_the_hammer_gets_wrong(self):
        self.assertTrue(perms.needs_record(True, 0o700, 0, 0, None))
        self.assertTrue(perms.needs_record(True, 0o1777, 0, 0, None))
        self.assertFalse(perms.needs_record(True, 0o755, 0, 0, None))
        self.assertFalse(perms.needs_record(False, 0o600, 0, 0, None))  # file modes survive
        self.assertTrue(perms.needs_record(False, 0o640, 102, 109, None))
        self.assertTrue(perms.needs_record(False, 0o755, 0, 0, b"\x01"))

    def test_scan_and_restore_modes(self):
        with tempfile.TemporaryDirectory() as d:
            os.makedirs(os.path.join(d, "private"))
            os.chmod(os.path.join(d, "private"), 0o700)
            os.makedirs(os.path.join(d, "tmp"))  # skipped at the top
            os.chmod(os.path.join(d, "tmp"), 0o1777)
            open(os.path.join(d, "file"), "w").close()
            os.chmod(d, 0o755)
            found = {e.path: e.mode for e in perms.scan(d)}
            self.assertEqual(found.get("/private"), 0o700)
            self.assertNotIn("/tmp", found)
            if os.getuid() == 0:  # as root, a root-owned 0644 file needs no record
                self.assertEqual(found, {"/private": 0o700})
            real = [perms.Entry(0o700, os.getuid(), os.getgid(), None, os.path.join(d, "private"))]
            os.chmod(os.path.join(d, "private"), 0o755)  # what the hammer's untar does
            self.assertEqual(perms.restore(real), (1, 0))
            self.assertEqual(stat.S_IMODE(os.stat(os.path.join(d, "private")).st_mode), 0o700)
            self.assertEqual(perms.restore(real + [perms.Entry(0o700, 0, 0, None, os.path.join(d, "gone"))]), (0, 1))


if __name__ == "__main__":
    unittest.main()
