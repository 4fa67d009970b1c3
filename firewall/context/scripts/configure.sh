#!/bin/bash
# Final configuration of the metal-stack firewall layer, on the Ubuntu or the Debian worker image.
# Runs once in the build, after the packages are installed and rootfs/ is copied over. Fails the
# build on any check that does not hold.
set -euo pipefail

log() { echo "configure: $*"; }
die() { echo "configure: ERROR: $*" >&2; exit 1; }

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
# the installer enables chrony@<vrf>; the plain unit must never run beside it
systemctl disable chrony.service 2>/dev/null || true
systemctl mask chrony.service

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

# ---- units: the firewall presets (05-metal-firewall.preset) win over the worker's ------------
chmod 0644 /etc/sysctl.d/50-metal-firewall.conf /etc/modules-load.d/metal-firewall.conf
systemctl preset-all
for u in nftables.service prometheus-node-exporter.service nftables-textfile-exporter.service suricata-update.timer \
         ssh.service frr.service systemd-networkd.service; do
  [ "$(systemctl is-enabled "$u")" = enabled ] || die "$u is not enabled"
done
for u in suricata.service chrony-wait.service systemd-timesyncd.service containerd.service; do
  [ "$(systemctl is-enabled "$u" 2>/dev/null || true)" != enabled ] || die "$u must not be enabled"
done
[ "$(systemctl is-enabled chrony.service || true)" = masked ] || die "chrony.service is not masked"

# ---- clean-up ----------------------------------------------------------------------------------
rm -f /usr/sbin/policy-rc.d
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id /etc/ssh/ssh_host_*
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old /var/lib/dpkg/*-old /tmp/* /var/tmp/*
find /var/log -type f \( -path '/var/log/apt/*' -o -name '*.log' -o -name '*.gz' \) -delete
log "done"
