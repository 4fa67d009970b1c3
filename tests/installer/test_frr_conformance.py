"""A machine's frr.conf against metal-networker's (../shared/reference/metal-networker: machine.yaml
in, frr.conf.machine out, read in place). Both files are parsed into their FRR blocks (top level,
interface, router bgp, its address families, route-maps, line) and compared statement by statement.
The only differences allowed are the ones listed below, each with its reason; anything else, a
missing listen range or a changed timer, fails with the list of differing statements.
"""
import os
import sys
import unittest
from collections import Counter
from typing import List, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts", "installer"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from metal_installer import render  # noqa: E402
from reference import reference_file  # noqa: E402
from test_reference_inputs import parse  # noqa: E402

# metal-networker's statements the installer leaves out
ONLY_UPSTREAM = {
    ("", "frr version 8.5"): "FRR writes its own version when it saves the configuration",
    ("", "log syslog debugging"): "debug logging floods a production node's journal; informational instead",
    ("", "debug bgp updates"): "(same)",
    ("", "debug bgp nht"): "(same)",
    ("", "debug bgp update-groups"): "(same)",
    ("", "debug bgp zebra"): "(same)",
}
# the installer's statements metal-networker has not
ONLY_OURS = {
    ("", "log syslog informational"): "see log syslog debugging",
    ("", "service integrated-vtysh-config"): "one frr.conf for all daemons, as Debian's vtysh.conf says too",
    ("", "line vty"): "an empty vty block, FRR's own default",
}

# lines that open a block at the top level, and inside `router bgp`
OPENERS = ("interface ", "router ", "route-map ", "line ", "vrf ")
NESTED_OPENERS = ("address-family ",)


def statements(text: str) -> List[Tuple[str, str]]:
    """(block, statement) of every statement; block is "" at the top level, else the opening line
    (nested: "router bgp 1 / address-family ipv4 unicast"). Comments, `!` and indentation dropped,
    inner whitespace collapsed."""
    out: List[Tuple[str, str]] = []
    block = nested = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("!") or stripped.startswith("#"):
            continue
        stmt = " ".join(stripped.split())
        indented = raw[:1].isspace()
        if not indented:
            nested = ""
            block = ""
            out.append(("", stmt))
            if stmt.startswith(OPENERS):
                block = stmt
            continue
        if stmt == "exit-address-family":
            nested = ""
            continue
        if block and stmt.startswith(NESTED_OPENERS):
            out.append((block, stmt))
            nested = stmt
            continue
        out.append((f"{block} / {nested}" if nested else block, stmt))
    return out


def diff(ours: str, upstream: str) -> Tuple[List[Tuple[str, str]], List[Tuple[str, str]]]:
    a, b = Counter(statements(ours)), Counter(statements(upstream))
    return sorted((a - b).elements()), sorted((b - a).elements())


class MachineFrrAsMetalNetworker(unittest.TestCase):
    def setUp(self):
        with open(reference_file("metal-networker", "frr.conf.machine"), encoding="utf-8") as f:
            self.upstream = f.read()
        self.ours = render.frr_conf(parse(reference_file("metal-networker", "machine.yaml")))

    def test_same_statements_per_block(self):
        only_ours, only_upstream = diff(self.ours, self.upstream)
        report = "\n".join([f"+ {b or '(top)'}: {s}" for b, s in only_ours] + [f"- {b or '(top)'}: {s}" for b, s in only_upstream])
        self.assertEqual(set(only_upstream), set(ONLY_UPSTREAM), "statements of frr.conf.machine the installer lacks (-) / adds (+):\n" + report)
        self.assertEqual(set(only_ours), set(ONLY_OURS), "statements of frr.conf.machine the installer lacks (-) / adds (+):\n" + report)
        if os.environ.get("SHOW_FRR_DIFF"):
            print("\n" + report)

    def test_the_parts_issue_14_names(self):
        got = set(statements(self.ours))
        for want in [
            ("router bgp 4200003073", "neighbor LOCAL remote-as internal"),
            ("router bgp 4200003073", "neighbor LOCAL route-map local-in in"),
            ("router bgp 4200003073", "bgp listen range 0.0.0.0/0 peer-group LOCAL"),
            ("router bgp 4200003073", "bgp bestpath as-path multipath-relax"),
            ("route-map local-in permit 10", "set weight 32768"),
            ("interface lan0", "no ipv6 nd suppress-ra"),
            ("interface lan1", "ipv6 nd ra-interval 6"),
            ("router bgp 4200003073 / address-family ipv6 unicast", "neighbor TOR activate"),
            ("", "no zebra nexthop kernel enable"),
        ]:
            self.assertIn(want, got)

    def test_the_parser_sees_blocks(self):
        # a statement moved to another block is a difference, not a match
        moved = self.upstream.replace(" neighbor TOR activate\n exit-address-family", " exit-address-family\n neighbor TOR activate")
        only_ours, only_upstream = diff(moved, self.upstream)
        self.assertEqual(only_ours, [("router bgp 4200003073", "neighbor TOR activate")])
        self.assertEqual(only_upstream, [("router bgp 4200003073 / address-family ipv6 unicast", "neighbor TOR activate")])


if __name__ == "__main__":
    unittest.main()
