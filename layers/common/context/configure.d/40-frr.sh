#!/bin/bash
# FRR: zebra and bgpd (machines speak BGP to the leaves); the installer writes the real frr.conf,
# the placeholder must pass FRR's own check.
set -euo pipefail
# shellcheck source=/dev/null
. /usr/local/lib/metal/metal.sh

daemons=/etc/frr/daemons
sed -i -E 's/^bgpd=.*/bgpd=yes/' "$daemons"
# FRR always starts zebra; the line makes that explicit where the daemons file leaves it out
if grep -q '^zebra=' "$daemons"; then
  sed -i -E 's/^zebra=.*/zebra=yes/' "$daemons"
else
  sed -i -E '0,/^bgpd=/s//zebra=yes\nbgpd=/' "$daemons"
fi
if ! grep -qx 'zebra=yes' "$daemons" || ! grep -qx 'bgpd=yes' "$daemons"; then die "frr daemons not enabled"; fi
# watchfrr gives its startup load of frr.conf (`vtysh -b`) --restart-timeout seconds, 20 by
# default, then kills it and restarts the daemons: on a slow or loaded CPU (the rack's emulated
# one) FRR then came up without the configuration (fabric peers Idle, nothing listening on 179).
# Five minutes; a real server is done in a second either way.
if grep -qE '^#?watchfrr_options=' "$daemons"; then
  sed -i -E 's|^#?watchfrr_options=.*|watchfrr_options="--restart-timeout 300"|' "$daemons"
else
  echo 'watchfrr_options="--restart-timeout 300"' >>"$daemons"
fi
grep -qx 'watchfrr_options="--restart-timeout 300"' "$daemons" || die "watchfrr_options not set in $daemons"
chown frr:frr /etc/frr/frr.conf /etc/frr/daemons
chmod 0640 /etc/frr/frr.conf
vtysh --dryrun --inputfile /etc/frr/frr.conf >/dev/null || die "frr.conf placeholder is invalid"
