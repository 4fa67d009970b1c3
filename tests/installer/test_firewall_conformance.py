"""Conformance of the firewall rendering (metal_installer/firewall.py) with metal-networker, the
library upstream's installer configured firewalls with: for each of its nine firewall inputs
(../shared/reference/metal-networker/firewall*.yaml), what we render carries the same objects and
statements as metal-networker's own output for it, paired as the reference README pairs them.

Both sides are parsed (tests/installer/netconf_parsers.py) and compared as their consumer reads
them: FRR by statement per block (VRFs and VNIs, interfaces, BGP instances and their
address-families, peer groups and neighbours, route-map entries, prefix-lists in evaluation order),
nftables by rule per chain in order, networkd and units by section and key per file. Comments,
blank lines and indentation do not count. What still differs is listed in DIFFERENCES below, each
with its reason; a difference that appears or disappears fails the test.

Run: python3 -m unittest discover -s tests/installer
"""
import glob
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "scripts", "installer"))
sys.path.insert(0, HERE)

from metal_installer import firewall  # noqa: E402
from netconf_parsers import diff_frr, diff_ini, diff_nft, parse_frr, parse_ini, parse_nft  # noqa: E402
from reference import reference_file  # noqa: E402
from test_reference_inputs import parse  # noqa: E402

# FRR as Debian 12 ships it: what the installer renders for on our images.
DEBIAN_FRR = "8.4.4"

# (input, golden, artifact, options) as the reference README pairs them.
CASES = [
    ("firewall", "frr.conf.firewall", "frr", {"frr_version": DEBIAN_FRR}),
    ("firewall", "frr.conf.firewall_frr-9", "frr", {"frr_version": "9.0.5"}),
    ("firewall", "frr.conf.firewall_frr-10", "frr", {"frr_version": "10.1.5"}),
    ("firewall_shared", "frr.conf.firewall_shared", "frr", {"frr_version": DEBIAN_FRR}),
    ("firewall_dmz", "frr.conf.firewall_dmz", "frr", {"frr_version": DEBIAN_FRR}),
    ("firewall_dmz_app", "frr.conf.firewall_dmz_app", "frr", {"frr_version": DEBIAN_FRR}),
    ("firewall_dmz_app_storage", "frr.conf.firewall_dmz_app_storage", "frr", {"frr_version": DEBIAN_FRR}),
    ("firewall_ipv6", "frr.conf.firewall_ipv6", "frr", {"frr_version": DEBIAN_FRR}),
    ("firewall_dualstack", "frr.conf.firewall_dualstack", "frr", {"frr_version": DEBIAN_FRR}),
    ("firewall", "nftrules", "nft", {"forward_policy": "drop", "with_dns_proxy": False}),
    ("firewall", "nftrules_accept_forwarding", "nft", {"forward_policy": "accept", "with_dns_proxy": False}),
    ("firewall_shared", "nftrules_shared", "nft", {"forward_policy": "drop", "with_dns_proxy": True}),
    ("firewall_dmz", "nftrules_dmz", "nft", {"forward_policy": "drop", "with_dns_proxy": True}),
    ("firewall_dmz_app", "nftrules_dmz_app", "nft", {"forward_policy": "drop", "with_dns_proxy": True}),
    ("firewall_ipv6", "nftrules_ipv6", "nft", {"forward_policy": "drop", "with_dns_proxy": True}),
    ("firewall_vpn", "nftrules_vpn", "nft", {"forward_policy": "drop", "with_dns_proxy": False}),
    ("firewall_with_rules", "nftrules_with_rules", "nft", {"forward_policy": "drop", "with_dns_proxy": False}),
    ("firewall", "networkd/firewall", "networkd", {}),
    ("firewall", "*.service", "units", {}),
]

_FRR_VERSION = (
    "metal-networker writes its constant `frr version 8.5` whatever FRR it renders for; we write the "
    "installed FRR's major.minor. FRR only records the line."
)
_SURICATA_UPDATE_ORDER = (
    "suricata-update downloads the rules: it waits for the network (network-online.target), which "
    "metal-networker's unit does not"
)
_SURICATA_UPDATE_RELOAD = (
    "the image's suricata-update.timer runs the update daily; a running suricata only uses the new "
    "rules once told to reload them ('-': no error when suricata is not running)"
)

# (golden, difference) -> reason. Everything not listed here is the same on both sides.
DIFFERENCES = {
    ("frr.conf.firewall", "global: only ours: frr version 8.4"): _FRR_VERSION,
    ("frr.conf.firewall", "global: only theirs: frr version 8.5"): _FRR_VERSION,
    ("frr.conf.firewall_frr-9", "global: only ours: frr version 9.0"): _FRR_VERSION,
    ("frr.conf.firewall_frr-9", "global: only theirs: frr version 8.5"): _FRR_VERSION,
    ("frr.conf.firewall_frr-10", "global: only ours: frr version 10.1"): _FRR_VERSION,
    ("frr.conf.firewall_frr-10", "global: only theirs: frr version 8.5"): _FRR_VERSION,
    **{
        (g, d): _FRR_VERSION
        for g in (
            "frr.conf.firewall_shared",
            "frr.conf.firewall_dmz",
            "frr.conf.firewall_dmz_app",
            "frr.conf.firewall_dmz_app_storage",
            "frr.conf.firewall_ipv6",
            "frr.conf.firewall_dualstack",
        )
        for d in ("global: only ours: frr version 8.4", "global: only theirs: frr version 8.5")
    },
    ("*.service", "suricata-update.service: only ours: [Unit] After=network-online.target Description=Suricata Intrusion Detection Service Rules Update Wants=network-online.target"): _SURICATA_UPDATE_ORDER,
    ("*.service", "suricata-update.service: only theirs: [Unit] Description=Suricata Intrusion Detection Service Rules Update"): _SURICATA_UPDATE_ORDER,
    (
        "*.service",
        "suricata-update.service: only ours: [Service] ExecStart=/bin/ip vrf exec vrf104009 /usr/bin/suricata-update "
        "ExecStartPost=-/usr/bin/suricatasc -c ruleset-reload-nonblocking Group=root LimitMEMLOCK=infinity Type=oneshot User=root",
    ): _SURICATA_UPDATE_RELOAD,
    (
        "*.service",
        "suricata-update.service: only theirs: [Service] ExecStart=/bin/ip vrf exec vrf104009 /usr/bin/suricata-update "
        "Group=root LimitMEMLOCK=infinity Type=oneshot User=root",
    ): _SURICATA_UPDATE_RELOAD,
}


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def render_and_diff(name, golden, artifact, options):
    """The differences between our rendering of input `name` and metal-networker's `golden`."""
    inst = parse(reference_file("metal-networker", name + ".yaml"))
    if artifact == "frr":
        return diff_frr(parse_frr(firewall.frr_conf(inst, options["frr_version"])), parse_frr(read(reference_file("metal-networker", golden))))
    if artifact == "nft":
        ours = firewall.nftables_rules(inst, options["forward_policy"], options["with_dns_proxy"])
        return diff_nft(parse_nft(ours), parse_nft(read(reference_file("metal-networker", golden))))
    if artifact == "networkd":
        ours = dict(firewall.networkd_files(inst))
        theirs = {os.path.basename(p): read(p) for p in glob.glob(reference_file("metal-networker", golden, "*"))}
        out = [f"{n}: only {'theirs' if n not in ours else 'ours'}" for n in sorted(set(ours) ^ set(theirs))]
        for n in sorted(set(ours) & set(theirs)):
            out += diff_ini(n, parse_ini(ours[n]), parse_ini(theirs[n]))
        return out
    if artifact == "units":
        ours = {u.name: u.text for u in firewall.units(inst)}
        theirs = {os.path.basename(p): read(p) for p in glob.glob(reference_file("metal-networker", golden))}
        out = [f"{n}: metal-networker has no unit of ours" for n in sorted(set(theirs) - set(ours))]
        for n in sorted(set(ours) & set(theirs)):
            out += diff_ini(n, parse_ini(ours[n]), parse_ini(theirs[n]))
        return out
    raise AssertionError(artifact)


class AgainstMetalNetworker(unittest.TestCase):
    def test_every_firewall_input_and_golden_is_covered(self):
        inputs = sorted(os.path.basename(p)[: -len(".yaml")] for p in glob.glob(reference_file("metal-networker", "firewall*.yaml")))
        self.assertEqual(len(inputs), 9, inputs)
        self.assertEqual(sorted({c[0] for c in CASES if c[2] in ("frr", "nft")}), inputs)
        goldens = sorted(
            os.path.basename(p) for pattern in ("frr.conf.firewall*", "nftrules*") for p in glob.glob(reference_file("metal-networker", pattern))
        )
        self.assertEqual(sorted(c[1] for c in CASES if c[2] in ("frr", "nft")), goldens)

    def test_conformance(self):
        table = []
        seen = set()
        for name, golden, artifact, options in CASES:
            with self.subTest(input=name, golden=golden):
                diffs = render_and_diff(name, golden, artifact, options)
                unexplained = [d for d in diffs if (golden, d) not in DIFFERENCES]
                seen.update((golden, d) for d in diffs)
                table.append(f"{name + '.yaml':32} {golden:30} " + ("equal" if not diffs else f"{len(diffs)} documented differences"))
                self.assertEqual(unexplained, [], f"{name} vs {golden}: differences without a reason in DIFFERENCES")
        self.assertEqual(sorted(set(DIFFERENCES) - seen), [], "DIFFERENCES lists differences that are gone")
        if os.environ.get("CONFORMANCE_TABLE"):
            print("\n" + "\n".join(table))


class TheComparisonSeesDifferences(unittest.TestCase):
    """The parsers must not make different configurations look equal."""

    def setUp(self):
        self.inst = parse(reference_file("metal-networker", "firewall.yaml"))

    def test_frr(self):
        theirs = read(reference_file("metal-networker", "frr.conf.firewall"))
        base = parse_frr(theirs)
        self.assertEqual(diff_frr(parse_frr(theirs), base), [])
        cases = {
            " vni 3982\n": " vni 3999\n",
            "  import vrf vrf104010\n": "",
            "route-map vrf3981-import-map permit 20\n": "route-map vrf3981-import-map deny 20\n",
            "seq 102 deny 185.1.2.3/32 le 32": "seq 108 deny 185.1.2.3/32 le 32",  # now after the permit of 185.1.2.0/24
            " neighbor FABRIC timers 2 8\n": " neighbor FABRIC timers 3 9\n",
            "  advertise-all-vni\n": "",
            " set community additive no-export\n": "\n",
        }
        for old, new in cases.items():
            with self.subTest(change=old.strip()):
                self.assertIn(old, theirs)
                self.assertNotEqual(diff_frr(parse_frr(theirs.replace(old, new, 1)), base), [])

    def test_nft(self):
        theirs = read(reference_file("metal-networker", "nftrules"))
        base = parse_nft(theirs)
        self.assertEqual(diff_nft(parse_nft(theirs), base), [])
        swapped = theirs.replace(
            '        ct state invalid counter drop comment "drop invalid packets from forwarding to prevent malicious activity"\n'
            '        ct state established,related counter accept comment "stateful forward"\n',
            '        ct state established,related counter accept comment "stateful forward"\n'
            '        ct state invalid counter drop comment "drop invalid packets from forwarding to prevent malicious activity"\n',
        )
        self.assertNotEqual(swapped, theirs)
        for changed in (swapped, theirs.replace("policy drop;", "policy accept;", 1), theirs.replace("masquerade random", "masquerade", 1)):
            self.assertNotEqual(diff_nft(parse_nft(changed), base), [])

    def test_ini(self):
        theirs = read(reference_file("metal-networker", "networkd", "firewall", "30-svi-3981.network"))
        self.assertEqual(diff_ini("x", parse_ini(theirs), parse_ini(theirs)), [])
        for old, new in (("VRF=vrf3981", "VRF=vrf3982"), ("MTUBytes=9000", "MTUBytes=1500"), ("Address=10.0.16.2/32", "")):
            self.assertNotEqual(diff_ini("x", parse_ini(theirs.replace(old, new)), parse_ini(theirs)), [])


if __name__ == "__main__":
    unittest.main()
