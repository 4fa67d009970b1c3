#!/bin/bash
# iptables on the legacy backend, as upstream's worker images set it: kube-proxy and CNI plugins
# of the Kubernetes versions metal-stack runs expect it (the firewall body switches back to nft).
set -euo pipefail
# shellcheck source=/dev/null
. /usr/local/lib/metal/metal.sh

update-alternatives --set iptables /usr/sbin/iptables-legacy
update-alternatives --set ip6tables /usr/sbin/ip6tables-legacy
iptables --version | grep -q legacy || die "iptables is not on the legacy backend"
