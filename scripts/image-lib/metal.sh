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
