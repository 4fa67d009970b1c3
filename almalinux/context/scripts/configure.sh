#!/bin/bash
# Final configuration of the metal-stack Almalinux worker image. Runs once in the build, after the
# packages are installed and the config files of rootfs/ are copied over. Fails the build on any
# check that does not hold.
set -euo pipefail

log() { echo "configure: $*"; }
die() { echo "configure: ERROR: $*" >&2; exit 1; }

# ---- SELinux disabled (rootfs/etc/selinux/config) ------------------------------------------------
grep -qx 'SELINUX=disabled' /etc/selinux/config || die "SELinux is not disabled"

# ---- permissions of the hardened config files --------------------------------------------------
chmod 0600 /etc/ssh/sshd_config
chmod 0440 /etc/sudoers.d/metal
chmod 0644 /etc/sysctl.d/*.conf /etc/modprobe.d/*.conf /etc/systemd/journald.conf.d/*.conf
chmod 0755 /usr/local/bin/ignition
visudo -c >/dev/null || die "sudoers is invalid"

# sshd: our sshd_config is the whole configuration (the distribution's drop-in would re-enable
# X11 forwarding and override the algorithms); validate it with throw-away host keys
rm -f /etc/ssh/sshd_config.d/50-redhat.conf
ssh-keygen -A >/dev/null
sshd -t || die "sshd_config is invalid"
rm -f /etc/ssh/ssh_host_*

# su only for members of group wheel
sed -i -E 's/^#[[:space:]]*(auth[[:space:]]+required[[:space:]]+pam_wheel\.so use_uid)$/\1/' /etc/pam.d/su
grep -qE '^auth[[:space:]]+required[[:space:]]+pam_wheel\.so use_uid' /etc/pam.d/su || die "could not restrict su to group wheel"

# ---- users: group wheel for the installer's user "metal", whose uid 1000 must be free ----------
getent group wheel >/dev/null || die "group wheel is missing"
if u="$(getent passwd 1000)"; then die "uid 1000 is taken: $u"; fi

# ---- FRR: zebra and bgpd; the installer writes the real frr.conf -------------------------------
daemons=/etc/frr/daemons
sed -i -E 's/^bgpd=.*/bgpd=yes/' "$daemons"
# FRR always starts zebra; the line makes that explicit where the daemons file leaves it out
if grep -q '^zebra=' "$daemons"; then
  sed -i -E 's/^zebra=.*/zebra=yes/' "$daemons"
else
  sed -i -E '0,/^bgpd=/s//zebra=yes\nbgpd=/' "$daemons"
fi
if ! grep -qx 'zebra=yes' "$daemons" || ! grep -qx 'bgpd=yes' "$daemons"; then die "frr daemons not enabled"; fi
chown frr:frr /etc/frr/frr.conf /etc/frr/daemons
chmod 0640 /etc/frr/frr.conf
vtysh --dryrun --inputfile /etc/frr/frr.conf >/dev/null || die "frr.conf placeholder is invalid"

# ---- ignition smoke test -----------------------------------------------------------------------
/usr/local/bin/ignition -version >/dev/null 2>&1 || /usr/local/bin/ignition --version >/dev/null 2>&1 \
  || die "ignition does not run"

# ---- systemd units -----------------------------------------------------------------------------
systemctl set-default multi-user.target
systemctl mask console-getty.service
systemctl preset-all
units="sshd.service frr.service lldpd.service systemd-networkd.service chronyd.service
  watchdog.service serial-getty@ttyS1.service logrotate.timer"
for u in $units; do
  [ "$(systemctl is-enabled "$u")" = enabled ] || die "$u is not enabled"
done
[ "$(systemctl is-enabled console-getty.service || true)" = masked ] || die "console-getty not masked"

# ---- kernel ------------------------------------------------------------------------------------
kver="$(ls /lib/modules)"
[ "$(echo "$kver" | wc -w)" -eq 1 ] || die "expected exactly one kernel, got: $kver"
test -s "/boot/initramfs-${kver}.img" || die "no /boot/initramfs-${kver}.img"

# ---- clean-up ----------------------------------------------------------------------------------
: > /etc/machine-id
rm -f /var/lib/systemd/random-seed /etc/ssh/ssh_host_* /root/.bash_history
dnf clean all >/dev/null
rm -rf /var/cache/dnf/* /var/lib/dnf/history* /tmp/* /var/tmp/*
find /var/log -type f \( -name '*.log' -o -name '*.gz' -o -name '*-[0-9]*' \) -delete
log "done"
