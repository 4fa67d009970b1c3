"""Unit tests of the firewall rendering (scripts/installer/metal_installer/firewall.py) on this
project's fixture (tests/fixtures/install/firewall.yaml: private primary vrf3981, internet
vrf104009 with nat, underlay), with the expected texts worked out by hand from the rules in
firewall.py's docstrings. The comparison with metal-networker's outputs for its nine inputs is
test_firewall_conformance.py; the checks by vtysh and nft are test_firewall_tools.py.
"""
import fnmatch
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "scripts", "installer"))
sys.path.insert(0, HERE)

from metal_installer import firewall  # noqa: E402
from metal_installer.config import InputError, parse_install_yaml, parse_os_yaml  # noqa: E402
from metal_installer.render import HEADER as H  # noqa: E402
from reference import reference_file  # noqa: E402
from test_config import OS_YAML, fixture  # noqa: E402
from test_reference_inputs import parse  # noqa: E402

OSD = parse_os_yaml(OS_YAML.replace("machine_type: machine", "machine_type: firewall"))


def load(text):
    return parse_install_yaml(text, OSD)


FIXTURE = fixture("firewall.yaml")
WITH_VPN = FIXTURE + "vpn:\n  address: https://headscale.example.org\n  auth_key: tskey-fixture\n  connected: false\n"


class Check(unittest.TestCase):
    def error(self, text):
        with self.assertRaises(InputError) as c:
            firewall.check(load(text), "install.yaml")
        return str(c.exception)

    def test_the_fixture_passes(self):
        firewall.check(load(FIXTURE))

    def test_what_a_firewall_cannot_do_without(self):
        self.assertEqual(
            self.error(FIXTURE.replace("    vrf: 3981\n", "    vrf: 0\n")),
            "install.yaml: network bc830818-2df1-4904-8c40-4322296d393d has vrf 0: every network but the underlay needs its VRF id (it is the VNI)",
        )
        self.assertEqual(
            self.error(FIXTURE.replace("    vrf: 3981\n", "    vrf: 104009\n")),
            "install.yaml: networks bc830818-2df1-4904-8c40-4322296d393d and internet both have vrf 104009",
        )
        self.assertEqual(
            self.error(FIXTURE.replace("destinationprefixes:\n        - 0.0.0.0/0\n", "destinationprefixes: []\n")),
            'install.yaml: external network internet has no "destinationprefixes": nothing would be routed into it',
        )
        no_external = FIXTURE.replace("    networktype: external\n", "    networktype: privatesecondaryshared\n").replace(
            "      - 0.0.0.0/0\n", "      - 10.9.0.0/16\n"
        )
        self.assertEqual(
            self.error(no_external),
            "install.yaml: no external network and no shared network with a default route: a firewall routes the tenant network somewhere",
        )
        self.assertEqual(
            self.error(FIXTURE.replace("prefixes:\n        - 10.0.16.0/22\n", "prefixes: []\n")),
            'install.yaml: a network has "nat: true", but the private primary network has no "prefixes" to translate',
        )
        two = FIXTURE.replace("networktype: external\n", "networktype: underlay\n").replace("underlay: false\n      vrf: 104009\n", "underlay: true\n      vrf: 104009\n")
        self.assertEqual(self.error(two), "install.yaml: 2 underlay networks: a firewall needs exactly one (its VTEP address and BGP AS)")


class Networkd(unittest.TestCase):
    def setUp(self):
        self.files = dict(firewall.networkd_files(load(FIXTURE)))

    def test_files(self):
        self.assertEqual(
            list(self.files),
            ["00-lo.network", "10-lan0.link", "10-lan0.network", "11-lan1.link", "11-lan1.network", "20-bridge.netdev", "20-bridge.network"]
            + [f"{n}-{kind}-{vrf}.{ext}" for n, vrf in ((30, 3981), (31, 104009)) for kind in ("vrf", "svi", "vxlan") for ext in ("netdev", "network")],
        )

    def test_underlay_and_lan(self):
        self.assertEqual(self.files["00-lo.network"], f"{H}\n# networkid: underlay\n[Match]\nName=lo\n\n[Address]\nAddress=127.0.0.1/8\n\n[Address]\nAddress=10.1.0.1/32\n")
        self.assertEqual(self.files["10-lan0.link"], f"{H}\n[Match]\nPermanentMACAddress=00:03:00:22:11:01\n\n[Link]\nName=lan0\nNamePolicy=\nMTUBytes=9216\n")
        self.assertEqual(self.files["11-lan1.network"], f"{H}\n[Match]\nName=lan1\n\n[Network]\nIPv6AcceptRA=no\nVXLAN=vni3981\nVXLAN=vni104009\n")

    def test_bridge_and_one_network(self):
        # the internet network is the second in install.yaml: VLAN and table 1001
        self.assertEqual(self.files["20-bridge.network"], f"{H}\n[Match]\nName=bridge\n\n[Network]\nVLAN=vlan3981\nVLAN=vlan104009\n\n[BridgeVLAN]\nVLAN=1000\n\n[BridgeVLAN]\nVLAN=1001\n")
        self.assertEqual(self.files["31-vrf-104009.netdev"], f"{H}\n# vrf (networkid: internet)\n[NetDev]\nName=vrf104009\nKind=vrf\n\n[VRF]\nTable=1001\n")
        self.assertEqual(
            self.files["31-svi-104009.network"],
            f"{H}\n# svi (networkid: internet)\n[Match]\nName=vlan104009\n\n[Link]\nMTUBytes=9000\n\n[Network]\nVRF=vrf104009\nAddress=185.1.2.4/32\n",
        )
        self.assertEqual(
            self.files["31-vxlan-104009.netdev"],
            f"{H}\n# vxlan (networkid: internet)\n[NetDev]\nName=vni104009\nKind=vxlan\n\n[VXLAN]\nVNI=104009\nLocal=10.1.0.1\nUDPChecksum=true\nMacLearning=false\nDestinationPort=4789\n",
        )
        self.assertEqual(
            self.files["31-vxlan-104009.network"],
            f"{H}\n# vxlan (networkid: internet)\n[Match]\nName=vni104009\n\n[Link]\nMTUBytes=9000\n\n[Network]\nBridge=bridge\n\n[BridgeVLAN]\nPVID=1001\nEgressUntagged=1001\n",
        )

    def test_stale_files_of_another_layout_are_matched(self):
        for name in ("20-bridge.netdev", "33-vrf-104010.network", "30-svi-3981.netdev", "35-vxlan-7.network"):
            self.assertTrue(any(fnmatch.fnmatch(name, g) for g in firewall.NETWORKD_GLOBS), name)
        self.assertFalse(any(fnmatch.fnmatch("10-lan0.link", g) for g in firewall.NETWORKD_GLOBS))


class Frr(unittest.TestCase):
    def setUp(self):
        self.inst = load(FIXTURE)
        self.conf = firewall.frr_conf(self.inst, "8.4.4")

    def test_vrfs_evpn_and_underlay(self):
        self.assertTrue(self.conf.startswith(f"! {H[2:]}\nfrr version 8.4\nfrr defaults datacenter\nhostname firewall-fixture\n!\n"))
        self.assertIn("\n!\nvrf vrf3981\n vni 3981\n exit-vrf\n!\nvrf vrf104009\n vni 104009\n exit-vrf\n!\ninterface lan0\n", self.conf)
        self.assertIn(
            "\nrouter bgp 4210000001\n bgp router-id 10.1.0.1\n bgp bestpath as-path multipath-relax\n neighbor FABRIC peer-group\n"
            " neighbor FABRIC remote-as external\n neighbor FABRIC timers 2 8\n neighbor lan0 interface peer-group FABRIC\n neighbor lan1 interface peer-group FABRIC\n",
            self.conf,
        )
        self.assertIn(" address-family l2vpn evpn\n  neighbor FABRIC activate\n  advertise-all-vni\n exit-address-family\n", self.conf)
        self.assertNotIn("enforce-first-as", self.conf)

    def test_the_tenant_vrf_reaches_the_internet_but_not_the_firewalls_own_address(self):
        self.assertIn(
            "\nrouter bgp 4210000001 vrf vrf3981\n bgp router-id 10.1.0.1\n bgp bestpath as-path multipath-relax\n !\n"
            " address-family ipv4 unicast\n  redistribute connected\n  import vrf vrf104009\n  import vrf route-map vrf3981-import-map\n exit-address-family\n",
            self.conf,
        )
        self.assertIn(
            "\nip prefix-list vrf3981-import-from-vrf104009 permit 0.0.0.0/0\n"
            "ip prefix-list vrf3981-import-from-vrf104009 seq 101 deny 185.1.2.4/32 le 32\n"
            "ip prefix-list vrf3981-import-from-vrf104009 seq 102 permit 185.1.2.0/24 le 32\n"
            "route-map vrf3981-import-map permit 10\n match source-vrf vrf104009\n match ip address prefix-list vrf3981-import-from-vrf104009\n"
            "route-map vrf3981-import-map deny 20\n!\n",
            self.conf,
        )

    def test_the_internet_vrf_gets_the_tenant_prefix_for_the_return_traffic_no_export(self):
        self.assertIn(
            "\nip prefix-list vrf104009-import-from-vrf3981-no-export seq 100 permit 10.0.16.0/22 le 32\n"
            "ip prefix-list vrf104009-import-from-vrf3981 seq 101 permit 185.1.2.0/24 le 32\n"
            "route-map vrf104009-import-map permit 10\n match source-vrf vrf3981\n match ip address prefix-list vrf104009-import-from-vrf3981-no-export\n"
            " set community additive no-export\n"
            "route-map vrf104009-import-map permit 20\n match source-vrf vrf3981\n match ip address prefix-list vrf104009-import-from-vrf3981\n"
            "route-map vrf104009-import-map deny 30\n!\n",
            self.conf,
        )
        self.assertTrue(self.conf.endswith("route-map LOOPBACKS permit 10\n match interface lo\n!\nbgp as-path access-list SELF permit ^$\n!\nline vty\n!\n"))

    def test_frr_10(self):
        conf = firewall.frr_conf(self.inst, "10.1.5")
        self.assertIn("\nfrr version 10.1\n", conf)
        self.assertEqual(conf.count(" no bgp enforce-first-as\n"), 2)  # in the two VRF instances
        self.assertIn("\nrouter bgp 4210000001 vrf vrf3981\n bgp router-id 10.1.0.1\n no bgp enforce-first-as\n", conf)

    def test_versions(self):
        self.assertEqual(firewall.frr_version_parts("8.4.4"), (8, 4))
        self.assertEqual(firewall.frr_version_parts("10.1"), (10, 1))
        with self.assertRaises(ValueError):
            firewall.frr_version_parts("")

    def test_a_dmz_is_the_way_out_without_an_external_network(self):
        inst = parse(reference_file("metal-networker", "firewall_dmz_app.yaml"))
        self.assertEqual(firewall.default_route_vrf(inst), "vrf3983")


class Nftables(unittest.TestCase):
    def setUp(self):
        self.inst = load(FIXTURE)
        self.rules = firewall.nftables_rules(self.inst)

    def test_layout(self):
        self.assertTrue(self.rules.startswith(f"{H}\ntable inet metal {{\n    chain input {{\n        type filter hook input priority 0; policy drop;\n"))
        self.assertIn('\n        iifname "lan1" ip saddr 10.0.0.0/8 udp dport 4789 counter accept comment "incoming VXLAN lan1"\n', self.rules)
        self.assertIn('\n        tcp dport ssh ct state new counter accept comment "SSH incoming connections"\n', self.rules)
        self.assertIn(
            '\n        iifname "vrf3981" tcp dport 9100 counter accept comment "node metrics"\n'
            '        iifname "vrf3981" tcp dport 9630 counter accept comment "nftables metrics"\n\n',
            self.rules,
        )
        self.assertNotIn('"vrf104009" tcp dport 9100', self.rules)  # not from the internet
        self.assertIn(
            "    chain forward {\n        type filter hook forward priority 0; policy drop;\n"
            '        ct state invalid counter drop comment "drop invalid packets from forwarding to prevent malicious activity"\n'
            '        ct state established,related counter accept comment "stateful forward"\n'
            '        tcp dport bgp ct state new counter jump refuse comment "block bgp forward to machines"\n'
            '        limit rate 2/minute counter log prefix "nftables-metal-dropped: "\n    }\n',
            self.rules,
        )
        self.assertIn('    chain refuse {\n        limit rate 2/minute counter log prefix "nftables-metal-dropped: "\n        counter drop\n    }\n}\ntable inet nat {\n', self.rules)
        self.assertIn(
            "    chain postrouting {\n        type nat hook postrouting priority 0; policy accept;\n"
            '        oifname "vlan104009" ip saddr 10.0.16.0/22 counter masquerade random comment "snat (networkid: internet)"\n    }\n}\n',
            self.rules,
        )
        self.assertNotIn("dnat", self.rules)

    def test_forward_accept_does_not_log(self):
        rules = firewall.nftables_rules(self.inst, "accept")
        self.assertIn("type filter hook forward priority 0; policy accept;\n", rules)
        self.assertEqual(rules.count("nftables-metal-dropped"), 1)  # the refuse chain's
        with self.assertRaises(ValueError):
            firewall.nftables_rules(self.inst, "reject")

    def test_dns_proxy(self):
        rules = firewall.nftables_rules(self.inst, with_dns_proxy=True)
        self.assertIn('\n        ip saddr 10.0.0.0/8 udp dport domain ip daddr 185.1.2.4 accept comment "dnat to dns proxy"\n', rules)
        self.assertIn('\n        ip daddr @proxy_dns_servers iifname "vlan3981" udp dport domain dnat ip to 185.1.2.4 comment "dnat to dns proxy"\n', rules)
        self.assertIn('\n        oifname "vlan3981" tcp sport domain ct zone set 3\n', rules)
        self.assertIn('oifname "vlan104009" ip saddr 10.0.16.0/22 ip daddr != 185.1.2.4 counter masquerade random', rules)

    def test_vpn_replaces_ssh_from_anywhere(self):
        rules = firewall.nftables_rules(load(WITH_VPN))
        self.assertIn('\n        iifname "tailscale*" accept comment "Accept tailscale traffic"\n', rules)
        self.assertNotIn("SSH incoming connections", rules)

    def test_firewall_rules(self):
        text = FIXTURE + (
            "firewall_rules:\n"
            "  egress:\n"
            '    - {comment: "say \\"hi\\"", protocol: UDP, ports: [53, 123], to: [0.0.0.0/0, "::/0"]}\n'
            "  ingress:\n"
            "    - {comment: web, protocol: tcp, ports: [443], from: [192.0.2.0/24, 2001:db8::/32], to: [185.1.2.4/32]}\n"
            "    - {comment: into the tenant, protocol: tcp, ports: [22], from: [198.51.100.7/32]}\n"
        )
        self.assertEqual(
            firewall.firewall_rules(load(text)),
            [
                "# egress rules specified during firewall creation",
                'iifname { "vrf3981" } ip daddr 0.0.0.0/0 udp dport { 53,123 } counter accept comment "say hi"',
                'iifname { "vrf3981" } ip6 daddr ::/0 udp dport { 53,123 } counter accept comment "say hi"',
                "# ingress rules specified during firewall creation",
                # the IPv6 source has no IPv6 destination: no rule for it
                'ip daddr { 185.1.2.4/32 } ip saddr 192.0.2.0/24 tcp dport { 443 } counter accept comment "web"',
                'oifname { "vrf3981", "vni3981", "vlan3981" } ip saddr 198.51.100.7/32 tcp dport { 22 } counter accept comment "into the tenant"',
            ],
        )
        rules = firewall.nftables_rules(load(text))
        self.assertIn('"block bgp forward to machines"\n        # egress rules specified during firewall creation\n', rules)
        self.assertIn('comment "into the tenant"\n        limit rate 2/minute counter log prefix', rules)

    def test_includes(self):
        upstream = '#!/usr/sbin/nft -f\n\nflush ruleset\n\ninclude "/etc/nftables/*"\n'
        self.assertTrue(any(fnmatch.fnmatch(firewall.RULES_PATH, p) for p in firewall.nftables_includes(upstream)))
        self.assertEqual(firewall.nftables_includes('flush ruleset\n  include "/etc/nftables/rules"\n# include "/x"\n'), ["/etc/nftables/rules"])
        debian = "#!/usr/sbin/nft -f\n\nflush ruleset\n\ntable inet filter {\n\tchain input {\n\t\ttype filter hook input priority filter;\n\t}\n}\n"
        self.assertEqual(firewall.nftables_includes(debian), [])


class Units(unittest.TestCase):
    def units(self, text):
        return {u.name: u for u in firewall.units(load(text))}

    def exec_start(self, unit):
        return [line for line in unit.text.splitlines() if line.startswith("ExecStart=")]

    def test_each_in_its_vrf(self):
        u = self.units(FIXTURE)
        self.assertEqual(list(u), ["node-exporter.service", "nftables-exporter.service", "droptailer.service", "firewall-controller.service", "suricata-update.service", "suricata.service"])
        self.assertEqual(self.exec_start(u["node-exporter.service"]), ["ExecStart=/usr/local/bin/node_exporter --collector.tcpstat"])
        self.assertEqual(self.exec_start(u["droptailer.service"]), ["ExecStart=/bin/ip vrf exec vrf3981 /usr/local/bin/droptailer-client"])
        self.assertEqual(self.exec_start(u["firewall-controller.service"]), ["ExecStart=/bin/ip vrf exec vrf104009 /usr/local/bin/firewall-controller"])
        self.assertEqual(self.exec_start(u["suricata-update.service"]), ["ExecStart=/bin/ip vrf exec vrf104009 /usr/bin/suricata-update"])
        self.assertEqual(self.exec_start(u["suricata.service"]), ["ExecStart=/usr/bin/suricata -c /etc/suricata/suricata.yaml --pidfile /run/suricata.pid --af-packet=vlan104009"])
        self.assertIn("\nBindsTo=sys-subsystem-net-devices-vlan104009.device\n", u["suricata.service"].text)
        self.assertIn("\nWantedBy=multi-user.target\nWantedBy=sys-subsystem-net-devices-vlan104009.device\n", u["suricata.service"].text)
        self.assertEqual({n for n, x in u.items() if not x.enable}, {"droptailer.service", "firewall-controller.service"})
        self.assertEqual(firewall.extra_files(load(FIXTURE)), [])

    def test_they_start_disabled_unless_enabled_by_the_installer_or_ignition(self):
        units = firewall.units(load(FIXTURE))
        self.assertEqual(
            firewall.units_preset(units),
            f"{H}\n# the installer enables those of these units whose programs the image has, after the presets\n"
            + "".join(f"disable {u.name}\n" for u in units),
        )
        # Ignition's presets (20-ignition.preset) come first, the distribution's "enable *" later
        name = os.path.basename(firewall.UNITS_PRESET)
        self.assertLess("20-ignition.preset", name)
        self.assertLess(name, "90-systemd.preset")

    def test_vpn(self):
        u = self.units(WITH_VPN)
        self.assertEqual(
            self.exec_start(u["tailscaled.service"]), ["ExecStart=/bin/ip vrf exec vrf104009 /usr/local/bin/tailscaled --port 41641"]
        )
        self.assertEqual(
            self.exec_start(u["tailscale.service"]),
            [
                "ExecStart=/bin/ip vrf exec vrf104009 /usr/local/bin/tailscale up --hostname 2b6e2a4c-8f0d-4a1e-b7c3-5d9e0f1a2b3c "
                "--auth-key file:/etc/tailscale/auth-key --login-server https://headscale.example.org"
            ],
        )
        self.assertFalse(any("tskey-fixture" in x.text for x in u.values()))
        self.assertEqual(firewall.extra_files(load(WITH_VPN)), [firewall.ExtraFile("/etc/tailscale/auth-key", "tskey-fixture\n", 0o600)])

    def test_without_a_default_route_nothing_goes_to_the_internet(self):
        text = FIXTURE.replace("      - 0.0.0.0/0\n", "      - 203.0.113.0/24\n")
        self.assertIsNone(firewall.default_route_vrf(load(text)))
        self.assertEqual(list(self.units(text)), ["node-exporter.service", "nftables-exporter.service", "droptailer.service"])


if __name__ == "__main__":
    unittest.main()
