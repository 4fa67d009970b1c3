#!/bin/bash
# Configuration of the metal-stack firewall's body, on the Ubuntu or the Debian worker body. Runs
# once in the build, after the packages are installed and rootfs/ is copied over. Units
# (firewall/image.yaml) and clean-up follow in the finalize stage. Fails the build on any check
# that does not hold.
set -euo pipefail
# shellcheck source=/dev/null
. /usr/local/lib/metal/metal.sh

# ---- what a firewall does not run ---------------------------------------------------------------
# the worker's container runtime goes with its packages; its config and crictl stay behind otherwise
rm -rf /etc/containerd /etc/crictl.yaml /usr/local/bin/crictl

# ---- nftables: nftables.conf loads /etc/nftables/*, where the installer writes the rules --------
chmod 0755 /etc/nftables.conf
mkdir -p /etc/nftables
chmod 0755 /etc/nftables
# the ruleset cannot be loaded in a build container (no CAP_NET_ADMIN); check what can be checked
grep -qx 'include "/etc/nftables/\*"' /etc/nftables.conf || die "nftables.conf must include /etc/nftables/* (the installer's rules)"
nft --help >/dev/null || die "nft does not run"
# the firewall's own rules are nftables; iptables (the worker body's legacy backend) follows nft
update-alternatives --set iptables /usr/sbin/iptables-nft
update-alternatives --set ip6tables /usr/sbin/ip6tables-nft

# ---- FRR: watchfrr gives the startup load of frr.conf (its `vtysh -b` job) --restart-timeout
# seconds, 20 by default, then kills it. A firewall's frr.conf (EVPN, a BGP instance per VRF, route
# maps, metal-networker's debug logging) took longer than that on an emulated CPU in the rack:
# FRR came up with half its configuration (the fabric peers Idle, "No AFI/SAFI activated for peer",
# no VRF instances). Give it five minutes; a fast machine is done in a second either way.
sed -i -E 's|^#?watchfrr_options=.*|watchfrr_options="--restart-timeout 300"|' /etc/frr/daemons
grep -qx 'watchfrr_options="--restart-timeout 300"' /etc/frr/daemons || die "watchfrr_options not set in /etc/frr/daemons"

# ---- chrony: only as chrony@<vrf>.service ---------------------------------------------------------
chmod 0644 /etc/systemd/system/chrony@.service /etc/chrony/chrony.conf
chronyd -p -f /etc/chrony/chrony.conf >/dev/null || die "chrony.conf is invalid"
mkdir -p /etc/vrf

# ---- suricata: logs rotated, rules updated daily, started by the firewall-controller ------------
suricata -V >/dev/null || die "suricata does not run"
suricata-update --version >/dev/null || die "suricata-update does not run"
chmod 0644 /etc/logrotate.d/suricata
logrotate --debug /etc/logrotate.d/suricata >/dev/null 2>&1 || die "logrotate rejects /etc/logrotate.d/suricata"

# ---- exporters and VPN (their units are the installer's, in the right VRF) ----------------------
chmod 0755 /usr/bin/nftables-exporter /usr/local/bin/node_exporter /usr/local/bin/tailscale /usr/local/bin/tailscaled
chmod 0644 /etc/nftables_exporter.yaml
python3 -c 'import ast, sys; ast.parse(open(sys.argv[1]).read())' /usr/bin/nftables-exporter || die "nftables-exporter does not parse"
/usr/local/bin/node_exporter --version >/dev/null 2>&1 || die "node_exporter does not run"
/usr/local/bin/tailscale version >/dev/null || die "tailscale does not run"
/usr/local/bin/tailscaled --version >/dev/null || die "tailscaled does not run"
# where an operator drops the binaries that are not built here (firewall/image.yaml says why)
mkdir -p /etc/firewall-controller /etc/droptailer-client

chmod 0644 /etc/sysctl.d/50-metal-firewall.conf /etc/modules-load.d/metal-firewall.conf
log "done"
