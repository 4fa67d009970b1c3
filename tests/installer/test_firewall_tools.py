"""The firewall rendering checked by the tools that consume it, on this host:

- FRR's own parser: `vtysh --dryrun --inputfile` over the frr.conf of every firewall input, rendered
  for the FRR installed here (the installer renders for the image's FRR the same way);
- nft's parser and the kernel: `nft --check --file` over the rules of every input in every variant
  (forward policy drop and accept, DNS proxy on and off);
- what nft makes of them: ours and metal-networker's golden rules loaded into a network namespace
  of their own (`unshare --net`), and `nft list ruleset` of both compared, rule by rule.

A tool that is missing here makes its test skip with a message naming it and the command that
installs it; nothing is skipped silently. On Debian: apt-get install -y frr nftables (nft --check
and the namespaces need root: CAP_NET_ADMIN and CAP_SYS_ADMIN).
"""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "scripts", "installer"))
sys.path.insert(0, HERE)

from metal_installer import firewall, render  # noqa: E402
from reference import reference_file  # noqa: E402
from test_config import OS_YAML, fixture  # noqa: E402
from test_firewall_conformance import CASES  # noqa: E402
from test_reference_inputs import install_inputs, parse, role_of  # noqa: E402

from metal_installer.config import parse_install_yaml, parse_os_yaml  # noqa: E402

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def tool(name):
    return shutil.which(name, path=PATH)


def run(argv):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={"PATH": PATH, "LC_ALL": "C.UTF-8"})
    return p.returncode, p.stdout


def firewall_inputs():
    """(label, Install) of every firewall install.yaml: metal-networker's nine, the hammer's,
    upstream metal-images' test input and this project's fixture."""
    out = [(os.path.relpath(p, os.path.dirname(os.path.dirname(p))), parse(p)) for p in install_inputs() if role_of(p) == "firewall"]
    osd = parse_os_yaml(OS_YAML.replace("machine_type: machine", "machine_type: firewall"))
    out.append(("tests/fixtures/install/firewall.yaml", parse_install_yaml(fixture("firewall.yaml"), osd)))
    return out


def checked(argv_for, text, suffix):
    with tempfile.NamedTemporaryFile("w", suffix=suffix, delete=False) as f:
        f.write(text)
    try:
        return run(argv_for(f.name))
    finally:
        os.unlink(f.name)


def installed_frr_version():
    rc, out = run(["vtysh", "--help"])
    return render.parse_frr_version(out)


@unittest.skipIf(tool("vtysh") is None, "vtysh (FRR) is not installed here: apt-get install -y frr")
class Vtysh(unittest.TestCase):
    def test_every_input_passes_dryrun(self):
        version = installed_frr_version()
        self.assertTrue(version, "vtysh --help names no version")
        inputs = firewall_inputs()
        self.assertEqual(len(inputs), 12)
        for label, inst in inputs:
            with self.subTest(input=label, frr=version):
                rc, out = checked(lambda p: ["vtysh", "--dryrun", "--inputfile", p], firewall.frr_conf(inst, version), ".conf")
                self.assertEqual(rc, 0, out)

    def test_the_syntax_depends_on_the_version(self):
        """FRR 8 refuses what FRR 10 needs: the installer must render for the installed FRR."""
        version = installed_frr_version()
        if firewall.frr_version_parts(version)[0] >= 10:
            self.skipTest(f"FRR {version} here accepts the FRR 10 syntax; this check needs an older FRR")
        inst = parse(reference_file("metal-networker", "firewall.yaml"))
        rc, out = checked(lambda p: ["vtysh", "--dryrun", "--inputfile", p], firewall.frr_conf(inst, "10.1.5"), ".conf")
        self.assertNotEqual(rc, 0)
        self.assertIn("no bgp enforce-first-as", out)


def _nft_usable():
    if tool("nft") is None:
        return "nft is not installed here: apt-get install -y nftables"
    rc, out = checked(lambda p: ["nft", "--check", "--file", p], "table inet probe {\n\tchain c {\n\t}\n}\n", ".nft")
    if rc != 0:
        return f"nft --check does not work here (it needs CAP_NET_ADMIN, run as root): {out.strip()}"
    return None


NFT_PROBLEM = _nft_usable()


@unittest.skipIf(NFT_PROBLEM is not None, NFT_PROBLEM or "")
class NftCheck(unittest.TestCase):
    def test_every_input_and_variant_passes_check(self):
        for label, inst in firewall_inputs():
            for policy in ("drop", "accept"):
                for proxy in (False, True):
                    with self.subTest(input=label, forward_policy=policy, dns_proxy=proxy):
                        rc, out = checked(lambda p: ["nft", "--check", "--file", p], firewall.nftables_rules(inst, policy, proxy), ".nft")
                        self.assertEqual(rc, 0, out)

    def test_a_broken_ruleset_fails_the_check(self):
        inst = parse(reference_file("metal-networker", "firewall.yaml"))
        rc, out = checked(lambda p: ["nft", "--check", "--file", p], firewall.nftables_rules(inst).replace("masquerade random", "masquerade sideways", 1), ".nft")
        self.assertNotEqual(rc, 0, out)


def _netns_problem():
    if NFT_PROBLEM:
        return NFT_PROBLEM
    if tool("unshare") is None:
        return "unshare (util-linux) is not installed here: apt-get install -y util-linux"
    rc, out = run(["unshare", "--net", "--", "true"])
    if rc != 0:
        return f"unshare --net does not work here (needs CAP_SYS_ADMIN, run as root): {out.strip()}"
    return None


NETNS_PROBLEM = _netns_problem()


def loaded_ruleset(text):
    """`nft list ruleset` after loading the rules into a fresh network namespace (gone with the
    process): the rules as the kernel holds them and nft prints them back."""
    rc, out = checked(lambda p: ["unshare", "--net", "--", "sh", "-c", 'nft -f "$1" && nft list ruleset', "sh", p], text, ".nft")
    if rc != 0:
        raise AssertionError(f"nft -f failed: {out}")
    return out


@unittest.skipIf(NETNS_PROBLEM is not None, NETNS_PROBLEM or "")
class AsTheKernelHoldsThem(unittest.TestCase):
    def test_ours_and_metal_networkers_load_to_the_same_ruleset(self):
        cases = [c for c in CASES if c[2] == "nft"]
        self.assertEqual(len(cases), 8)
        for name, golden, _, options in cases:
            with self.subTest(input=name, golden=golden):
                inst = parse(reference_file("metal-networker", name + ".yaml"))
                ours = loaded_ruleset(firewall.nftables_rules(inst, options["forward_policy"], options["with_dns_proxy"]))
                with open(reference_file("metal-networker", golden), encoding="utf-8") as f:
                    theirs = loaded_ruleset(f.read())
                self.assertIn("table inet nat", ours)
                self.assertEqual(ours, theirs)


if __name__ == "__main__":
    unittest.main()
