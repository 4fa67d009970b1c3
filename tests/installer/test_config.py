"""Unit tests of the installer's input checks (scripts/installer/metal_installer/config.py).

Run: python3 -m unittest discover -s tests/installer   (Python >= 3.9 with PyYAML; the integration
suite also runs them inside the built image, with the Python the installer really uses).
"""
import os
import sys
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts", "installer"))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "install")

from metal_installer.config import (  # noqa: E402
    InputError,
    check_ignition,
    cloud_config_payload,
    parse_console,
    parse_install_yaml,
    parse_os_yaml,
    userdata_is_jinja,
    userdata_kind,
)

OS_YAML = """
os: debian
version: "12"
machine_type: machine
initrd: initrd.img-{k}
sudo_group: sudo
size_budget_mib: 1400
required_commands: [bash]
grub_install: [grub-install]
grub_mkconfig: [update-grub2]
initramfs_update: [update-initramfs, -u]
mdadm_conf: /etc/mdadm/mdadm.conf
ntp_client: timesyncd
chrony_conf: /etc/chrony/chrony.conf
nftables_conf: /etc/nftables.conf
"""


def fixture(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as f:
        return f.read()


class OsYaml(unittest.TestCase):
    def test_parses_the_generated_file(self):
        d = parse_os_yaml(OS_YAML)
        self.assertEqual(d.bootloader_id, "metal-debian")
        self.assertEqual(d.initrd_name("6.1.0-56-amd64"), "initrd.img-6.1.0-56-amd64")
        self.assertEqual(d.grub_mkconfig, ["update-grub2"])

    def test_missing_field_names_it_and_the_fix(self):
        with self.assertRaises(InputError) as e:
            parse_os_yaml(OS_YAML.replace("ntp_client: timesyncd\n", ""), "/etc/metal/installer/os.yaml")
        self.assertEqual(
            str(e.exception),
            '/etc/metal/installer/os.yaml: field "ntp_client" is missing (it is generated from image.yaml by the build (scripts/steps/build.ts); rebuild the image)',
        )

    def test_initrd_needs_the_kernel_placeholder(self):
        with self.assertRaises(InputError) as e:
            parse_os_yaml(OS_YAML.replace("initrd.img-{k}", "initrd.img"))
        self.assertEqual(str(e.exception), 'os.yaml: field "initrd" is "initrd.img": it must contain {k} (the kernel version)')


class InstallYaml(unittest.TestCase):
    def setUp(self):
        self.osd = parse_os_yaml(OS_YAML)

    def parse(self, text):
        return parse_install_yaml(text, self.osd)

    def error(self, text):
        with self.assertRaises(InputError) as e:
            self.parse(text)
        return str(e.exception)

    def test_machine_fixture(self):
        inst = self.parse(fixture("machine.yaml"))
        self.assertEqual(inst.hostname, "machine-fixture")
        self.assertEqual(inst.primary.networkid, "bc830818-2df1-4904-8c40-4322296d393d")
        self.assertEqual(inst.router_id, "10.0.17.2")
        self.assertEqual(inst.asn, 4200003073)
        self.assertEqual(inst.loopback_ips, ["10.0.17.2", "185.1.2.3"])
        self.assertEqual([n.mac for n in inst.nics], ["00:03:00:11:11:01", "00:03:00:11:12:01"])
        self.assertEqual(inst.dns_servers, ["1.1.1.1", "1.0.0.1"])
        self.assertEqual(inst.ntp_servers, ["192.0.2.123", "ntp.example.org"])
        self.assertEqual(inst.console.kernel_arg, "ttyS1,115200n8")
        self.assertFalse(inst.raidenabled)
        self.assertEqual(inst.machineuuid, "8db04025-af46-47c9-a5c4-2e2d3795e827")
        self.assertEqual(inst.timestamp, "2025-11-25T10:00:00Z")
        self.assertIsNone(inst.vpn)
        self.assertIsNone(inst.firewall_rules)

    def test_firewall_fixture_speaks_bgp_in_the_underlay(self):
        fw = parse_os_yaml(OS_YAML.replace("machine_type: machine", "machine_type: firewall"))
        inst = parse_install_yaml(fixture("firewall.yaml"), fw)
        self.assertEqual((inst.router_id, inst.asn), ("10.1.0.1", 4210000001))
        self.assertEqual(inst.loopback_ips, ["10.1.0.1"])
        self.assertEqual(inst.primary.ips, ["10.0.16.2"])
        # the hammer writes empty lists as []: the defaults apply
        self.assertEqual((inst.dns_servers, inst.ntp_servers), ([], []))

    def test_bad_fixtures_name_the_field(self):
        self.assertEqual(self.error(fixture("bad-no-hostname.yaml")), '/etc/metal/install.yaml: field "hostname" is empty')
        self.assertEqual(
            self.error(fixture("bad-console.yaml")),
            '/etc/metal/install.yaml: field "console" is "ttyS1-115200": expected <serial tty>,<baud>[<parity><bits>], e.g. ttyS1,115200n8',
        )
        self.assertEqual(
            self.error(fixture("bad-no-private-primary.yaml")),
            '/etc/metal/install.yaml: no private primary network: one entry of "networks" needs networktype privateprimaryunshared or privateprimaryshared (got: external)',
        )

    def test_role_must_match_the_image(self):
        self.assertEqual(
            self.error(fixture("firewall.yaml")),
            '/etc/metal/install.yaml: field "role" is "firewall", but this image (debian 12) is built for role "machine"; allocate a firewall with a firewall image',
        )

    def test_field_errors(self):
        m = fixture("machine.yaml")
        cases = {
            m.replace("hostname: machine-fixture", "hostname: -bad-"): 'field "hostname" is "-bad-": it must be a DNS name (letters, digits, - and ., labels of at most 63 characters)',
            m.replace('"00:03:00:11:11:01"', '"00:03:00:11:11"'): 'field "nics[0].mac" is "00:03:00:11:11": expected a MAC address like 00:03:00:11:11:01',
            m.replace('"00:03:00:11:11:01"', "10:03:00:11:11:01"): 'field "nics[0].mac" was read as the number 7814920261: quote the MAC address',
            m.replace("hostname: machine-fixture\n", ""): 'field "hostname" is missing',
            m.replace("hostname: machine-fixture", "hostname: null"): 'field "hostname" is missing',
            m.replace('"00:03:00:11:12:01"', '"00:03:00:11:11:01"'): 'field "nics" lists MAC 00:03:00:11:11:01 more than once',
            m.replace("        - 10.0.17.2", "        - 10.0.17.300"): 'field "networks[0].ips[0]" is "10.0.17.300": not an IP address',
            m.replace("    - asn: 4200003073\n      destinationprefixes: []", "    - asn: 0\n      destinationprefixes: []"): 'field "networks[0].asn" must be an integer from 1 to 4294967295, got int 0',
            m.replace("networks:\n", "networks: []\nunused:\n"): 'field "networks" is empty: a machine needs its private primary network',
            m.replace("nics:\n", "nics: null\nunused:\n"): 'field "nics" is missing',
            m.replace("vpn: null", "vpn: []"): 'field "vpn" must be a mapping or null, got a list',
            m.replace("    - address: ntp.example.org", "    - ip: ntp.example.org"): 'field "ntp_servers[1].address" is missing; the entry has "ip", but the metal-hammer writes ntp_servers entries keyed "address"',
            m.replace("machineuuid: 8db04025-af46-47c9-a5c4-2e2d3795e827", "machineuuid: 8db04025"): 'field "machineuuid" is "8db04025": expected a UUID like e0ab02d2-27cd-5a5e-8efc-080ba80cf258',
            m.replace("role: machine", "role: null"): 'field "role" is missing',
            m.replace("root_uuid: bbbce17d-e50e-4ce4-a645-2ec36ce41b36", "root_uuid: /dev/sda2"): 'field "root_uuid" is "/dev/sda2": expected a file system UUID like 543eb7f8-98d4-d986-e669-824dbebe69a5',
            m.replace("console: ttyS1,115200n8", "console: ttyS1,115201n8"): 'field "console" is "ttyS1,115201n8": expected <serial tty>,<baud>[<parity><bits>], e.g. ttyS1,115200n8 (baud 115201 is not one of 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)',
            m.replace("password: metal-fixture-password\n", ""): 'field "password" is missing',
            m.replace("    - ip: 1.1.1.1", "    - ip: dns.example.org"): 'field "dns_servers[0].ip" is "dns.example.org": expected an IP address',
            m.replace("raidenabled: false", "raidenabled: maybe"): "field \"raidenabled\" must be true or false, got str 'maybe'",
        }
        for text, want in cases.items():
            with self.subTest(want=want):
                self.assertEqual(self.error(text), "/etc/metal/install.yaml: " + want)

    def test_yaml_syntax_error_has_a_position(self):
        self.assertEqual(self.error("hostname: [x\n"), "/etc/metal/install.yaml:2:1: not valid YAML: expected ',' or ']', but got '<stream end>'")

    def test_older_hammers_mark_the_primary_network_private(self):
        text = fixture("machine.yaml").replace("      networktype: privateprimaryunshared\n", "").replace("      networktype: external\n", "")
        self.assertNotIn("networktype", text)
        self.assertEqual(self.parse(text).primary.ips, ["10.0.17.2"])

    def test_hammer_zero_values_are_accepted(self):
        m = fixture("machine.yaml")
        inst = self.parse(m.replace('machineuuid: 8db04025-af46-47c9-a5c4-2e2d3795e827', 'machineuuid: ""').replace("sshpublickey: ssh-ed25519", "sshpublickey: ''\nunused: ssh-ed25519")
                          .replace('timestamp: "2025-11-25T10:00:00Z"', 'timestamp: ""').replace("dns_servers:\n    - ip: 1.1.1.1\n    - ip: 1.0.0.1", "dns_servers: []"))
        self.assertEqual((inst.machineuuid, inst.sshpublickey, inst.timestamp, inst.dns_servers), ("", "", "", []))
        inst = self.parse(m.replace("dns_servers:\n    - ip: 1.1.1.1\n    - ip: 1.0.0.1", "dns_servers: null").replace("ntp_servers:\n    - address: 192.0.2.123\n    - address: ntp.example.org", "ntp_servers: null"))
        self.assertEqual((inst.dns_servers, inst.ntp_servers), ([], []))


class Console(unittest.TestCase):
    def test_forms(self):
        c = parse_console("ttyS0,9600")
        self.assertEqual((c.tty, c.unit, c.speed, c.parity, c.bits, c.kernel_arg, c.grub_parity), ("ttyS0", 0, 9600, "n", 8, "ttyS0,9600n8", "no"))
        self.assertEqual(parse_console("ttyS3,57600e7").grub_parity, "even")
        for bad in ("tty0", "ttyS1", "ttyS1,", "ttyS,115200", "ttyS1,115200x8", "ttyS1 ,115200n8"):
            with self.subTest(bad=bad), self.assertRaises(InputError):
                parse_console(bad)


class Userdata(unittest.TestCase):
    def test_kind(self):
        self.assertEqual(userdata_kind(""), "none")
        self.assertEqual(userdata_kind("  \n"), "none")
        self.assertEqual(userdata_kind("#cloud-config\nusers: []\n"), "cloud-config")
        self.assertEqual(userdata_kind('{"ignition": {"version": "2.3.0"}}'), "ignition")
        self.assertEqual(userdata_kind(fixture("userdata-cloud-config.yaml")), "cloud-config")
        self.assertEqual(userdata_kind(fixture("userdata-ignition.json")), "ignition")

    def test_cloud_config_within_the_first_three_lines(self):
        self.assertEqual(userdata_kind(fixture("userdata-cluster-api.yaml")), "cloud-config")
        self.assertEqual(userdata_kind("## template: jinja\n#cloud-config\nruncmd: []\n"), "cloud-config")
        self.assertEqual(userdata_kind("\ufeff# generated\n\n#cloud-config\n"), "cloud-config")
        self.assertEqual(userdata_kind("# one\n# two\n# three\n#cloud-config\n"), "ignition")
        # other cloud-init formats are not cloud-config
        self.assertEqual(userdata_kind("#cloud-config-archive\n- type: text/x-shellscript\n"), "ignition")
        self.assertEqual(userdata_kind("#cloud-config   \nruncmd: []\n"), "cloud-config")

    def test_jinja_header(self):
        self.assertTrue(userdata_is_jinja(fixture("userdata-cluster-api.yaml")))
        self.assertFalse(userdata_is_jinja(fixture("userdata-cloud-config.yaml")))
        self.assertFalse(userdata_is_jinja("#cloud-config\n## template: jinja\n"))

    def test_payload_starts_with_the_header_cloud_init_looks_for(self):
        ud = fixture("userdata-cluster-api.yaml")
        self.assertEqual(cloud_config_payload(ud), ud)  # already as cloud-init wants it
        self.assertEqual(cloud_config_payload("# generated by x\n\n#cloud-config\nruncmd: []\n"), "#cloud-config\nruncmd: []\n")
        self.assertEqual(cloud_config_payload("## template: jinja\n# note\n#cloud-config\na: 1"), "## template: jinja\n#cloud-config\na: 1")
        self.assertEqual(cloud_config_payload("#cloud-config\n"), "#cloud-config\n")

    def test_ignition_version(self):
        self.assertEqual(check_ignition(fixture("userdata-ignition.json"), "u"), "2.3.0")
        with self.assertRaises(InputError) as e:
            check_ignition('{"ignition": {"version": "3.4.0"}}', "u")
        self.assertEqual(str(e.exception), 'u: Ignition config has "ignition.version" "3.4.0": this image runs Ignition spec 2.x (e.g. "2.3.0")')
        with self.assertRaises(InputError) as e:
            check_ignition("#!/bin/sh\necho hi\n", "u")
        self.assertEqual(str(e.exception), "u: userdata is neither cloud-config (no #cloud-config in the first 3 lines) nor an Ignition JSON config (Expecting value: line 1 column 1 (char 0))")


if __name__ == "__main__":
    unittest.main()
