#!/bin/bash
# Configure where the NVIDIA driver packages come from. Used by both build stages.
#   apt-source.sh debian            Debian's non-free archive (already in the base's apt sources)
#   apt-source.sh nvidia <repo-url> NVIDIA's CUDA repository for Debian 12 (same package names,
#                                   newer drivers), pinned above Debian's packages of the driver
set -euo pipefail

source="${1:-}"
repo="${2:-}"
case "$source" in
  debian)
    grep -rqE '(^|[[:space:]])non-free([[:space:]]|$)' /etc/apt/sources.list.d/ \
      || { echo "apt-source: the base image's apt sources lack the non-free component" >&2; exit 1; }
    ;;
  nvidia)
    [ -n "$repo" ] || { echo "apt-source: NVIDIA_REPO is empty" >&2; exit 1; }
    keyring=/usr/share/keyrings/cuda-archive-keyring.gpg
    if ! curl -fsSL --retry 2 --max-time 60 "$repo/cuda-keyring_1.1-1_all.deb" -o /tmp/cuda-keyring.deb; then
      echo "apt-source: NVIDIA's repository $repo is not reachable from this build; build with NVIDIA_SOURCE=debian" >&2
      exit 1
    fi
    dpkg -i /tmp/cuda-keyring.deb
    rm -f /tmp/cuda-keyring.deb /etc/apt/sources.list.d/cuda-debian12-x86_64.list
    printf '%s\n' "Types: deb" "URIs: $repo/" "Suites: /" "Signed-By: $keyring" > /etc/apt/sources.list.d/nvidia-cuda.sources
    host="${repo#*://}"
    host="${host%%/*}"
    printf '%s\n' "Package: *nvidia* libcuda* libnvidia* firmware-nvidia*" "Pin: origin $host" "Pin-Priority: 600" \
      > /etc/apt/preferences.d/nvidia-cuda
    ;;
  *)
    echo "apt-source: NVIDIA_SOURCE must be debian or nvidia, got \"$source\"" >&2
    exit 1
    ;;
esac
