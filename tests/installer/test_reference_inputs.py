"""The installer's input check against what the consumers really write: every install.yaml under
../shared/reference (the metal-hammer's serialisation, metal-networker's inputs, upstream's own test
fixtures) must parse, with the fields the hammer sets. Read in place (tests/installer/reference.py)."""
import glob
import os
import sys
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts", "installer"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from metal_installer.config import InputError, parse_install_yaml, parse_os_yaml  # noqa: E402
from reference import reference_dir, reference_file  # noqa: E402

OS_YAML = """
os: debian
version: "12"
machine_type: {role}
initrd: initrd.img-{{k}}
sudo_group: sudo
grub_install: [grub-install]
grub_mkconfig: [update-grub2]
initramfs_update: [update-initramfs, -u]
mdadm_conf: /etc/mdadm/mdadm.conf
ntp_client: timesyncd
chrony_conf: /etc/chrony/chrony.conf
nftables_conf: /etc/nftables.conf
"""


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def install_inputs():
    """(path, role) of every install.yaml-shaped input in the reference tree."""
    ref = reference_dir()
    out = []
    for p in sorted(glob.glob(os.path.join(ref, "hammer", "*.yaml")) + glob.glob(os.path.join(ref, "metal-networker", "*.yaml"))):
        out.append(p)
    out += [os.path.join(ref, "metal-images-test", n) for n in ("machine.yaml", "firewall.yaml")]
    return out


# metal-networker's inputs (2019-2025) carry the network part of install.yaml only: they predate the
# "role" and "root_uuid" keys that every current hammer writes. Those two, and only those, are added.
NETWORKER_ADDED = {"role": None, "root_uuid": "543eb7f8-98d4-d986-e669-824dbebe69e5"}


def role_of(path):
    return "firewall" if os.path.basename(path).startswith("firewall") else "machine"


def parse(path):
    text = read(path)
    role = role_of(path)
    if os.path.basename(os.path.dirname(path)) == "metal-networker":
        for key, value in NETWORKER_ADDED.items():
            assert f"\n{key}:" not in text, f"{path} has {key} now: drop it from NETWORKER_ADDED"
            text += f"\n{key}: {value or role}\n"
    return parse_install_yaml(text, parse_os_yaml(OS_YAML.format(role=role)), path)


class EveryReferenceInput(unittest.TestCase):
    def test_all_parse(self):
        inputs = install_inputs()
        self.assertGreaterEqual(len(inputs), 14, inputs)
        for p in inputs:
            with self.subTest(input=os.path.relpath(p, reference_dir())):
                inst = parse(p)
                self.assertTrue(inst.hostname)
                self.assertTrue(inst.nics)


class HammerShape(unittest.TestCase):
    def test_machine_as_the_hammer_writes_it(self):
        inst = parse(reference_file("hammer", "machine.yaml"))
        self.assertEqual(inst.machineuuid, "e0ab02d2-27cd-5a5e-8efc-080ba80cf258")
        self.assertEqual(inst.ntp_servers, ["time.cloudflare.com", "192.0.2.123"])
        self.assertEqual(inst.dns_servers, ["1.1.1.1", "8.8.8.8"])
        self.assertEqual(inst.timestamp, "2026-11-30T14:22:05Z")
        self.assertIsNone(inst.vpn)
        self.assertIsNone(inst.firewall_rules)
        self.assertEqual([n.mac for n in inst.nics], ["00:03:00:11:11:01", "00:03:00:11:12:01"])

    def test_firewall_vpn_and_rules(self):
        inst = parse(reference_file("hammer", "firewall.yaml"))
        self.assertEqual(inst.vpn.address, "https://headscale.example.org")
        self.assertEqual(inst.vpn.auth_key, "tskey-example-not-a-secret")
        self.assertFalse(inst.vpn.connected)
        self.assertEqual([(r.protocol, r.ports, r.to) for r in inst.firewall_rules.egress], [("tcp", [443], ["0.0.0.0/0"])])
        ing = inst.firewall_rules.ingress[0]
        self.assertEqual((ing.protocol, ing.ports, ing.sources, ing.to), ("tcp", [443], ["0.0.0.0/0"], ["185.1.2.3/32"]))

    def test_upper_case_protocol_and_v6_rules(self):
        inst = parse(reference_file("metal-networker", "firewall_with_rules.yaml"))
        self.assertEqual(inst.firewall_rules.ingress[0].protocol, "tcp")
        self.assertIn("::/0", inst.firewall_rules.egress[1].to)

    def test_upstream_fixture_without_machineuuid(self):
        inst = parse(reference_file("metal-images-test", "machine.yaml"))
        self.assertEqual(inst.machineuuid, "")
        self.assertEqual(inst.ntp_servers, ["1.pool.ntp.org"])


class RealErrorsStillRejected(unittest.TestCase):
    def base(self):
        return read(reference_file("hammer", "machine.yaml"))

    def check(self, text, message):
        with self.assertRaises(InputError) as c:
            parse_install_yaml(text, parse_os_yaml(OS_YAML.format(role="machine")), "install.yaml")
        self.assertIn(message, str(c.exception))

    def test_ntp_keyed_ip(self):
        self.check(self.base().replace("- address: time.cloudflare.com", "- ip: time.cloudflare.com"),
                   'field "ntp_servers[0].address" is missing; the entry has "ip", but the metal-hammer writes ntp_servers entries keyed "address"')

    def test_bad_machineuuid(self):
        self.check(self.base().replace("machineuuid: e0ab02d2-27cd-5a5e-8efc-080ba80cf258", "machineuuid: nope"), 'field "machineuuid" is "nope"')

    def test_bad_vpn(self):
        self.check(self.base().replace("vpn: null", "vpn: [1]"), 'field "vpn" must be a mapping or null, got a list')
        self.check(self.base().replace("vpn: null", "vpn:\n    address: headscale\n    auth_key: k"), 'field "vpn.address" is "headscale"')

    def test_bad_rule(self):
        rules = "firewall_rules:\n    egress:\n        - protocol: icmp\n          ports: [1]\n          to: [0.0.0.0/0]"
        self.check(self.base().replace("firewall_rules: null", rules), 'field "firewall_rules.egress[0].protocol" is "icmp"')
        rules = "firewall_rules:\n    ingress:\n        - protocol: tcp\n          ports: [70000]\n          from: [0.0.0.0/0]"
        self.check(self.base().replace("firewall_rules: null", rules), 'field "firewall_rules.ingress[0].ports[0]" must be a port number')
        rules = "firewall_rules:\n    ingress:\n        - protocol: tcp\n          ports: [22]\n          to: [10.0.0.1/32]"
        self.check(self.base().replace("firewall_rules: null", rules), 'field "firewall_rules.ingress[0].from" is empty')


if __name__ == "__main__":
    unittest.main()
