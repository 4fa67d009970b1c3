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

# ---- nftables: base ruleset with forward policy drop -------------------------------------------
chmod 0755 /etc/nftables.conf
# the ruleset cannot be loaded in a build container (no CAP_NET_ADMIN); check what can be checked
grep -qE '^[[:space:]]*type filter hook forward priority filter; policy drop;' /etc/nftables.conf \
  || die "nftables.conf: the forward chain must have policy drop"
nft --help >/dev/null || die "nft does not run"

# ---- chrony: only as chrony@<vrf>.service ---------------------------------------------------------
chmod 0644 /etc/systemd/system/chrony@.service /etc/chrony/chrony.conf
chronyd -p -f /etc/chrony/chrony.conf >/dev/null || die "chrony.conf is invalid"
mkdir -p /etc/vrf

# ---- suricata: logs rotated, rules updated daily, started by the firewall-controller ------------
suricata -V >/dev/null || die "suricata does not run"
suricata-update --version >/dev/null || die "suricata-update does not run"
chmod 0644 /etc/logrotate.d/suricata
logrotate --debug /etc/logrotate.d/suricata >/dev/null 2>&1 || die "logrotate rejects /etc/logrotate.d/suricata"

# ---- exporters ---------------------------------------------------------------------------------
chmod 0755 /usr/local/sbin/nftables-textfile-exporter
python3 -m py_compile /usr/local/sbin/nftables-textfile-exporter
rm -rf /usr/local/sbin/__pycache__
command -v prometheus-node-exporter >/dev/null || die "prometheus-node-exporter is missing"
mkdir -p /var/lib/prometheus/node-exporter

chmod 0644 /etc/sysctl.d/50-metal-firewall.conf /etc/modules-load.d/metal-firewall.conf
log "done"
