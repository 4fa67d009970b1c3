"""Unit tests of the file texts the installer writes (scripts/installer/metal_installer/render.py)
and of the permissions record (perms.py). Exact strings: a change to a generated file shows here.

Run: python3 -m unittest discover -s tests/installer
"""
import json
import os
import stat
import sys
import tempfile
import unittest

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts", "installer"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from metal_installer import perms, render  # noqa: E402
from metal_installer.config import parse_install_yaml, parse_os_yaml  # noqa: E402
from test_config import OS_YAML, fixture  # noqa: E402

H = render.HEADER

MACHINE_FRR = f"""! {H[2:]}
frr defaults datacenter
hostname machine-fixture
allow-reserved-ranges
log syslog informational
service integrated-vtysh-config
!
interface lan0
 ipv6 nd ra-interval 6
 no ipv6 nd suppress-ra
!
interface lan1
 ipv6 nd ra-interval 6
 no ipv6 nd suppress-ra
!
no zebra nexthop kernel enable
!
router bgp 4200003073
 bgp router-id 10.0.17.2
 bgp bestpath as-path multipath-relax
 neighbor TOR peer-group
 neighbor TOR remote-as external
 neighbor TOR timers 2 8
 neighbor lan0 interface peer-group TOR
 neighbor lan1 interface peer-group TOR
 neighbor LOCAL peer-group
 neighbor LOCAL remote-as internal
 neighbor LOCAL timers 2 8
 neighbor LOCAL route-map local-in in
 bgp listen range 0.0.0.0/0 peer-group LOCAL
 !
 address-family ipv4 unicast
  redistribute connected
  redistribute kernel
  neighbor TOR route-map only-self-out out
 exit-address-family
 !
 address-family ipv6 unicast
  redistribute connected
  redistribute kernel
  neighbor TOR route-map only-self-out out
  neighbor TOR activate
 exit-address-family
!
bgp as-path access-list SELF permit ^$
!
route-map local-in permit 10
 set weight 32768
!
route-map only-self-out permit 10
 match as-path SELF
!
route-map only-self-out deny 99
!
line vty
!
"""


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
        self.assertEqual(render.frr_conf(self.inst), MACHINE_FRR)

    def test_one_nic_peers_on_lan0_only(self):
        text = fixture("machine.yaml")
        text = text[: text.index('    - identifier: ""\n      mac: "00:03:00:11:12:01"')] + text[text.index("vpn: null"):]
        conf = render.frr_conf(parse_install_yaml(text, self.osd))
        self.assertIn(" neighbor lan0 interface peer-group TOR\n neighbor LOCAL peer-group\n", conf)
        self.assertNotIn("lan1", conf)

    def test_boot(self):
        grub = render.grub_cmdline(self.inst, None)
        self.assertEqual(grub, "console=ttyS1,115200n8 init=/sbin/init net.ifnames=0 biosdevname=0 nvme_core.io_timeout=300")
        cmdline = render.cmdline(self.inst, None)
        # GRUB's linux line: grub-mkconfig's root=UUID=<fs> ro, then GRUB_CMDLINE_LINUX
        self.assertEqual(cmdline, "root=UUID=bbbce17d-e50e-4ce4-a645-2ec36ce41b36 ro " + grub)
        self.assertEqual(render.cmdline(self.inst, "a:b:c:d").split(" ")[-3:], ["rdloaddriver=raid0", "rdloaddriver=raid1", "rd.md.uuid=a:b:c:d"])
        self.assertEqual(
            render.boot_info("/boot/vmlinuz-6.1", "/boot/initrd.img-6.1", cmdline, "metal-debian"),
            f"kernel: /boot/vmlinuz-6.1\ninitrd: /boot/initrd.img-6.1\ncmdline: {cmdline}\nbootloader_id: metal-debian\n",
        )
        self.assertEqual(
            render.grub_default(self.osd, self.inst, grub),
            f"""{H}
GRUB_DEFAULT=0
GRUB_TIMEOUT=5
GRUB_DISTRIBUTOR=metal-debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=ttyS1,115200n8 init=/sbin/init net.ifnames=0 biosdevname=0 nvme_core.io_timeout=300"
GRUB_TERMINAL=serial
GRUB_SERIAL_COMMAND="serial --unit=1 --speed=115200 --word=8 --parity=no --stop=1"
""",
        )

    def test_build_meta(self):
        self.assertEqual(
            render.build_meta({"build_version": "v1-2-g3", "build_date": "2025-11-25T10:00:00Z", "build_commit": "abc"}, "Ignition v0.36.2", "8.4.4"),
            "---\nbuildVersion: v1-2-g3\nbuildDate: '2025-11-25T10:00:00Z'\nbuildSHA: abc\nignitionVersion: Ignition v0.36.2\nfrrVersion: 8.4.4\n",
        )

    def test_lldp_phone_home(self):
        self.assertEqual(
            render.lldpd_conf(self.inst),
            f"""{H}
# LLDP phone-home as metal-stack's go-lldpd sends it: metal-core on the leaves takes a frame
# whose System Description contains "provisioned" as a sign of life of the machine named by its
# System Name.
configure system hostname 8db04025-af46-47c9-a5c4-2e2d3795e827
configure system description "provisioned since 2025-11-25T10:00:00Z"
configure system interface pattern lan*
configure lldp portidsubtype ifname
configure lldp tx-interval 2
configure lldp tx-hold 2
""",
        )

    def test_lldp_without_machineuuid_or_timestamp(self):
        text = fixture("machine.yaml").replace("machineuuid: 8db04025-af46-47c9-a5c4-2e2d3795e827\n", "")
        self.assertIsNone(render.lldpd_conf(parse_install_yaml(text, self.osd)))
        text = fixture("machine.yaml").replace('timestamp: "2025-11-25T10:00:00Z"', 'timestamp: "2025-11-25 \\"x\\""')
        self.assertIn('\nconfigure system description "provisioned since 2025-11-25 x"\n', render.lldpd_conf(parse_install_yaml(text, self.osd)))
        text = fixture("machine.yaml").replace('timestamp: "2025-11-25T10:00:00Z"\n', "")
        self.assertIn('\nconfigure system description "provisioned"\n', render.lldpd_conf(parse_install_yaml(text, self.osd)))

    def test_autologin(self):
        dropins = render.autologin_dropins(self.inst)
        self.assertEqual([p for p, _ in dropins], ["serial-getty@ttyS1.service.d/10-metal-autologin.conf", "getty@tty1.service.d/10-metal-autologin.conf"])
        head = f"{H}\n# Machines: the console logs user metal in without a password (firewalls keep asking).\n[Service]\nExecStart=\n"
        self.assertEqual(dropins[0][1], head + "ExecStart=-/sbin/agetty -o '-p -f -- \\\\u' --keep-baud 115200,57600,38400,9600 --autologin metal - $TERM\n")
        self.assertEqual(dropins[1][1], head + "ExecStart=-/sbin/agetty -o '-p -f -- \\\\u' --noclear --autologin metal - $TERM\n")
        other = parse_install_yaml(fixture("machine.yaml").replace("console: ttyS1,115200n8", "console: ttyS0,9600n8"), self.osd)
        path, text = render.autologin_dropins(other)[0]
        self.assertEqual(path, "serial-getty@ttyS0.service.d/10-metal-autologin.conf")
        self.assertIn(" --keep-baud 9600,115200,57600,38400 ", text)

    def test_cloud_init_datasource(self):
        ud = fixture("userdata-cluster-api.yaml")
        cfg = render.cloud_init_cfg(self.inst, ud)
        self.assertTrue(cfg.startswith(
            "# written by the metal-stack installer from /etc/metal/userdata and install.yaml\n"
            "# The userdata as cloud-init's NoCloud datasource config: ds-identify finds it here at boot\n"
            "# (it runs before /var/lib is mounted), and cloud-init applies it at first boot.\n"
            "datasource:\n  NoCloud:\n    meta-data:\n      instance-id: 8db04025-af46-47c9-a5c4-2e2d3795e827\n      local-hostname: machine-fixture\n"
            "    user-data: |\n      ## template: jinja\n      #cloud-config\n\n      # Shaped like Cluster API"), cfg)
        self.assertEqual(yaml.safe_load(cfg)["datasource"]["NoCloud"]["user-data"], ud)
        # whatever the text, it comes back unchanged, and the keys ds-identify greps for start a line
        for text in ("#cloud-config\nruncmd: []", "#cloud-config\na: 'x '  \n\tb\n", "#cloud-config\n\n\n", "#cloud-config\nk: \"\u00e9\u2713\"\n"):
            with self.subTest(text=text):
                cfg = render.cloud_init_cfg(self.inst, text)
                self.assertEqual(yaml.safe_load(cfg)["datasource"]["NoCloud"]["user-data"], text)
                keys = [line.strip().split(":")[0] for line in cfg.splitlines()]
                self.assertLess(keys.index("NoCloud"), keys.index("meta-data"))
                self.assertIn("user-data", keys)
        without = parse_install_yaml(fixture("machine.yaml").replace("machineuuid: 8db04025-af46-47c9-a5c4-2e2d3795e827\n", ""), self.osd)
        self.assertEqual(render.nocloud_instance_id(without), "metal-bbbce17d-e50e-4ce4-a645-2ec36ce41b36")

    def test_jinja_instance_data(self):
        data = json.loads(render.nocloud_instance_data(self.inst))
        self.assertEqual(data["ds"]["meta_data"], {"instance-id": "8db04025-af46-47c9-a5c4-2e2d3795e827", "local-hostname": "machine-fixture"})
        self.assertEqual((data["v1"]["instance_id"], data["v1"]["local_hostname"]), ("8db04025-af46-47c9-a5c4-2e2d3795e827", "machine-fixture"))

    def test_userdata_error_report(self):
        self.assertEqual(
            render.userdata_error("ignition", "u: not JSON\n", "it was not applied", "2025-11-25T10:00:00Z"),
            "# metal-stack installer, 2025-11-25T10:00:00Z\n"
            "The ignition userdata (/etc/metal/userdata) has a problem: it was not applied\n"
            "The installation went on without stopping: a failed installation would make the\n"
            "metal-hammer reboot into PXE and install again, forever.\n\nu: not JSON\n",
        )
        self.assertIn("/etc/metal/userdata.error", render.userdata_motd())

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
