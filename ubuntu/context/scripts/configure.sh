#!/bin/bash
# Final configuration of the metal-stack Ubuntu worker image. Runs once in the build, after the
# packages are installed and the config files of rootfs/ are copied over. Fails the build on any
# check that does not hold.
set -euo pipefail

log() { echo "configure: $*"; }
die() { echo "configure: ERROR: $*" >&2; exit 1; }

# ---- uid 1000 belongs to the installer's user "metal" -------------------------------------------
# Ubuntu's cloud and container images ship a user "ubuntu" with uid 1000.
if getent passwd ubuntu >/dev/null; then userdel --remove ubuntu 2>/dev/null || userdel ubuntu; fi
if getent group ubuntu >/dev/null; then groupdel ubuntu; fi
if u="$(getent passwd 1000)"; then die "uid 1000 is taken: $u"; fi
getent group sudo >/dev/null || die "group sudo is missing"

# ---- permissions of the hardened config files (COPY keeps only the git modes) -------------------
chmod 0600 /etc/ssh/sshd_config
chmod 0440 /etc/sudoers
chmod 0644 /etc/sysctl.d/*.conf /etc/modprobe.d/*.conf /etc/systemd/journald.conf.d/*.conf
chmod 0755 /usr/local/bin/ignition /usr/local/bin/crictl
visudo -c -f /etc/sudoers >/dev/null || die "sudoers is invalid"

# sshd: validate the config with throw-away host keys
ssh-keygen -A >/dev/null
mkdir -p /run/sshd
sshd -t || die "sshd_config is invalid"
rm -f /etc/ssh/ssh_host_*

# su only for members of group sudo (root keeps it through pam_rootok)
sed -i -E 's/^#[[:space:]]*(auth[[:space:]]+required[[:space:]]+pam_wheel\.so)$/\1 use_uid group=sudo/' /etc/pam.d/su
grep -qE '^auth[[:space:]]+required[[:space:]]+pam_wheel\.so use_uid group=sudo' /etc/pam.d/su \
  || die "could not restrict su to group sudo"

# ---- FRR: zebra and bgpd; the installer writes the real frr.conf -------------------------------
daemons=/etc/frr/daemons
sed -i -E 's/^bgpd=.*/bgpd=yes/' "$daemons"
if grep -q '^zebra=' "$daemons"; then
  sed -i -E 's/^zebra=.*/zebra=yes/' "$daemons"
else
  sed -i -E '0,/^bgpd=/s//zebra=yes\nbgpd=/' "$daemons"
fi
if ! grep -qx 'zebra=yes' "$daemons" || ! grep -qx 'bgpd=yes' "$daemons"; then die "frr daemons not enabled"; fi
chown frr:frr /etc/frr/frr.conf /etc/frr/daemons
chmod 0640 /etc/frr/frr.conf
vtysh --dryrun --inputfile /etc/frr/frr.conf >/dev/null || die "frr.conf placeholder is invalid"

# ---- containerd: the upstream default config, with the systemd cgroup driver -------------------
mkdir -p /etc/containerd
containerd config default > /etc/containerd/config.toml
sed -i -E 's/^([[:space:]]*SystemdCgroup[[:space:]]*=[[:space:]]*)false/\1true/' /etc/containerd/config.toml
grep -qE '^[[:space:]]*SystemdCgroup = true' /etc/containerd/config.toml || die "containerd: SystemdCgroup not set"

# ---- ignition / crictl smoke test --------------------------------------------------------------
/usr/local/bin/ignition -version >/dev/null 2>&1 || /usr/local/bin/ignition --version >/dev/null 2>&1 \
  || die "ignition does not run"
/usr/local/bin/crictl --version >/dev/null || die "crictl does not run"

# ---- network: systemd-networkd and FRR; systemd-resolved answers DNS --------------------------
for p in netplan.io isc-dhcp-client ifupdown; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then die "$p is installed"; fi
done
rm -rf /etc/netplan /etc/network/interfaces /etc/network/interfaces.d

# ---- systemd units -----------------------------------------------------------------------------
systemctl set-default multi-user.target
systemctl mask console-getty.service
# the preset file (rootfs/etc/systemd/system-preset/10-metal.preset) is the single source of truth
# for enablement; apply it now so that an installer running "systemctl preset-all" changes nothing
systemctl preset-all
units="ssh.service ssh-host-keys.service frr.service lldpd.service containerd.service
  systemd-networkd.service systemd-resolved.service systemd-timesyncd.service watchdog.service
  serial-getty@ttyS1.service logrotate.timer"
for u in $units; do
  [ "$(systemctl is-enabled "$u")" = enabled ] || die "$u is not enabled"
done
for u in ssh.socket wd_keepalive.service; do
  [ "$(systemctl is-enabled "$u" 2>/dev/null || true)" != enabled ] || die "$u must not be enabled"
done
[ "$(systemctl is-enabled console-getty.service || true)" = masked ] || die "console-getty not masked"

# ---- kernel modules: every module must find its dependencies (some driver trees are excluded) --
kver="$(ls /lib/modules)"
[ "$(echo "$kver" | wc -w)" -eq 1 ] || die "expected exactly one kernel, got: $kver"
depmod -a "$kver"
missing="$(awk -F': ' '{ n=split($2, d, " "); for (i=1; i<=n; i++) print d[i] }' "/lib/modules/$kver/modules.dep" \
  | sort -u | while read -r m; do [ -e "/lib/modules/$kver/$m" ] || echo "$m"; done)"
[ -z "$missing" ] || die "modules depend on excluded modules: $missing"

# ---- clean-up ----------------------------------------------------------------------------------
rm -f /usr/sbin/policy-rc.d
find /usr/share/doc -mindepth 1 ! -type d ! -name copyright -delete
find /usr/share/doc -mindepth 1 -type d -empty -delete
rm -rf /usr/share/man/* /usr/share/info/* /usr/share/groff/* /usr/share/lintian/*
find /usr/share/locale -mindepth 1 -maxdepth 1 -type d ! -name 'en' ! -name 'en_US' -exec rm -rf {} +
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id /var/lib/systemd/random-seed /etc/ssh/ssh_host_*
rm -f /root/.bash_history /root/.lesshst /root/.viminfo
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old /var/lib/dpkg/*-old \
  /var/cache/ldconfig/aux-cache /tmp/* /var/tmp/*
find /var/log -type f \( -path '/var/log/apt/*' -o -name '*.log' -o -name '*.gz' -o -name '*.xz' -o -name '*.[0-9]' \) -delete
log "done"
