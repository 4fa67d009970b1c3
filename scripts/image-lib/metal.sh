# Shell helpers for the scripts that run inside image builds. The pipeline stages this file into
# every build context as lib/metal.sh (scripts/steps/build.ts); the Dockerfiles copy lib/ to
# /usr/local/lib/metal/ and the scripts source it:
#   . /usr/local/lib/metal/metal.sh
# shellcheck shell=bash

# log/die name the script that called them: "configure: ...".
metal_name="$(basename "${0%.sh}")"
log() { echo "${metal_name}: $*"; }
die() { echo "${metal_name}: ERROR: $*" >&2; exit 1; }

# The one kernel of the image (docs/contract.md §3: exactly one /boot/System.map-<k>, keyed the way the
# installer and the contract lint key it). Prints its version; dies on none or several.
metal_kernel_version() {
  local maps=(/boot/System.map-*)
  [ -e "${maps[0]}" ] || die "no kernel: /boot/System.map-<version> is missing"
  [ "${#maps[@]}" -eq 1 ] || die "expected exactly one kernel, found ${#maps[@]}: ${maps[*]}"
  local k="${maps[0]#/boot/System.map-}"
  [ -d "/lib/modules/${k}" ] || die "kernel ${k} has no /lib/modules/${k}"
  echo "$k"
}

# Is a Debian or RPM package installed? (no output either way)
metal_installed() {
  if command -v dpkg-query >/dev/null; then
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'
  else
    rpm -q "$1" >/dev/null 2>&1
  fi
}

# Run every *.sh of a hook dir in name order (the staged layers and the OS folder all put theirs
# there; a later layer's file of the same name replaces an earlier one's when staged).
metal_run_hooks() {
  local dir="$1" hook
  [ -d "$dir" ] || return 0
  for hook in "$dir"/*.sh; do
    [ -e "$hook" ] || continue
    log "hook ${hook##*/}"
    bash "$hook"
  done
}

# apt's downloads and indexes across builds. The Dockerfiles mount BuildKit cache mounts on
# /var/cache/apt and /var/lib/apt/lists (RUN --mount=type=cache,...,sharing=locked): what apt
# writes there stays in the builder's cache and never reaches a layer, so a rebuild after a package
# list changed fetches only what is new. `metal_apt_cache on` at the start of such a RUN makes apt
# keep what it downloaded (official Debian and Ubuntu images ship docker-clean, which deletes the
# .debs after every install), `metal_apt_cache off` at its end restores the image's apt config, so
# no layer differs from what an uncached build gives. Refuses when the cache mounts are not there:
# the downloads would then land in the image.
metal_apt_cache() {
  local keep=/etc/apt/apt.conf.d/00metal-keep-cache clean=/etc/apt/apt.conf.d/docker-clean aside=/etc/apt/docker-clean.metal-cache
  case "$1" in
    on)
      mountpoint -q /var/cache/apt && mountpoint -q /var/lib/apt/lists \
        || die "metal_apt_cache on: /var/cache/apt and /var/lib/apt/lists must be cache mounts of this RUN"
      if [ -e "$clean" ]; then mv "$clean" "$aside"; fi
      printf '%s\n' 'APT::Keep-Downloaded-Packages "true";' 'Binary::apt::APT::Keep-Downloaded-Packages "true";' > "$keep"
      ;;
    off)
      rm -f "$keep" /var/cache/apt/*.bin
      if [ -e "$aside" ]; then mv "$aside" "$clean"; fi
      ;;
    *) die "metal_apt_cache: on or off, not \"$1\"" ;;
  esac
}
