#!/bin/bash
# Generic finishing of every image (see Dockerfile beside it). The data comes from image.yaml,
# rendered by the pipeline into meta/: the unit preset, the units that must end up enabled,
# disabled and masked, the default target, and build.yaml with the commit's values left open.
set -euo pipefail
here=/usr/local/lib/metal-finalize
# shellcheck source=/dev/null
. "$here/metal.sh"

lines() { grep -v '^[[:space:]]*$' "$1" || true; }

# ---- the installer's contract: user "metal" gets uid 1000 and the sudo group ------------------
group="${SUDO_GROUP:?build arg SUDO_GROUP is empty (contract.sudo_group)}"
getent group "$group" >/dev/null || die "group ${group} (contract.sudo_group) is missing"
if u="$(getent passwd 1000)"; then die "uid 1000 is taken: $u (the installer creates user metal with it)"; fi

# ---- units: image.yaml's units, as a preset the installer's "systemctl preset-all" keeps -------
install -m 0644 -D "$here/10-metal.preset" /etc/systemd/system-preset/10-metal.preset
systemctl set-default "$(cat "$here/default-target")"
systemctl preset-all
# a masked unit is disabled first, so no link of an earlier enablement (a package's) stays behind
while read -r u; do
  systemctl disable "$u" 2>/dev/null || true
  systemctl mask "$u"
done < <(lines "$here/units-masked")
while read -r u; do
  [ "$(systemctl is-enabled "$u" 2>/dev/null || true)" = enabled ] || die "$u is not enabled (image.yaml units.enable)"
done < <(lines "$here/units-enabled")
while read -r u; do
  state="$(systemctl is-enabled "$u" 2>/dev/null || true)"
  [ "$state" != enabled ] || die "$u must not be enabled (image.yaml units.disable)"
done < <(lines "$here/units-disabled")
while read -r u; do
  [ "$(systemctl is-enabled "$u" 2>/dev/null || true)" = masked ] || die "$u is not masked (image.yaml units.mask)"
done < <(lines "$here/units-masked")

# ---- clean-up ----------------------------------------------------------------------------------
rm -f /usr/sbin/policy-rc.d
# files of the base image that the package managers' path excludes would not have installed
if [ -d /usr/share/doc ]; then
  find /usr/share/doc -mindepth 1 ! -type d ! -name copyright -delete
  find /usr/share/doc -mindepth 1 -type d -empty -delete
fi
rm -rf /usr/share/man/* /usr/share/info/* /usr/share/groff/* /usr/share/lintian/*
if [ -d /usr/share/locale ]; then
  find /usr/share/locale -mindepth 1 -maxdepth 1 -type d ! -name 'en' ! -name 'en_US' -exec rm -rf {} +
fi
# identity of the build container: every machine gets its own
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id /var/lib/systemd/random-seed /etc/ssh/ssh_host_*
rm -f /root/.bash_history /root/.lesshst /root/.viminfo
# caches, logs and leftovers of the package installation
if command -v apt-get >/dev/null; then
  apt-get clean
  rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old /var/lib/dpkg/*-old
fi
if command -v dnf >/dev/null; then
  dnf clean all >/dev/null
  rm -rf /var/cache/dnf/* /var/lib/dnf/history*
fi
rm -rf /var/cache/ldconfig/aux-cache /tmp/* /var/tmp/*
find /var/log -type f \( -path '/var/log/apt/*' -o -name '*.log' -o -name '*.gz' -o -name '*.xz' -o -name '*.[0-9]' -o -name '*-[0-9]*' \) -delete

# ---- build metadata: everything but the commit's values (the last layer fills those in) -------
kver="$(metal_kernel_version)"
mkdir -p /etc/metal
sed -e "s|@KERNEL_VERSION@|${kver}|" "$here/build.yaml.in" > /etc/metal/build.yaml
while IFS=$'\t' read -r key command; do
  [ -n "$key" ] || continue
  value="$(bash -c "$command")" || die "build metadata ${key}: \`${command}\` failed (image.yaml build_meta)"
  printf '%s: "%s"\n' "$key" "$value" >> /etc/metal/build.yaml
done < <(sed -e "s|@KERNEL_VERSION@|${kver}|g" "$here/build-meta.tsv")
chmod 0644 /etc/metal/build.yaml
log "done"
