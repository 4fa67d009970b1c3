#!/bin/bash
# Configuration of the metal-stack nvidia image's body: the NVIDIA Container Toolkit in CDI mode,
# containerd with the nvidia runtime as its default. Units (nvidia/image.yaml) and clean-up follow
# in the finalize stage. Fails the build on any check that does not hold.
set -euo pipefail
# shellcheck source=/dev/null
. /usr/local/lib/metal/metal.sh

# ---- NVIDIA Container Toolkit ------------------------------------------------------------------
chmod 0755 /usr/bin/nvidia-ctk /usr/bin/nvidia-container-runtime /usr/bin/nvidia-cdi-hook
nvidia-ctk --version | grep -q 'NVIDIA Container Toolkit CLI version' || die "nvidia-ctk does not run"
nvidia-cdi-hook --version >/dev/null || die "nvidia-cdi-hook does not run"

# No libnvidia-container here, so no legacy mode: the runtime injects what the CDI spec names.
# The spec is written at boot by nvidia-cdi-generate.service (it depends on the GPUs present).
mkdir -p /etc/nvidia-container-runtime /etc/cdi
nvidia-ctk config default --output=/etc/nvidia-container-runtime/config.toml
nvidia-ctk config --in-place --config=/etc/nvidia-container-runtime/config.toml --set nvidia-container-runtime.mode=cdi
grep -qx 'mode = "cdi"' /etc/nvidia-container-runtime/config.toml || die "the runtime is not in CDI mode"

# containerd: a runtime "nvidia" (runc v2 shim with nvidia-container-runtime as its runc binary),
# and the CRI default, as upstream's debian-nvidia image has it. Containers that request no GPU
# pass straight through to runc.
conf=/etc/containerd/config.toml
[ -s "$conf" ] || die "$conf is missing (the Debian base writes it)"
nvidia-ctk runtime configure --runtime=containerd --config="$conf" --set-as-default
grep -qE '^[[:space:]]*default_runtime_name = "nvidia"' "$conf" || die "containerd: nvidia is not the default runtime"
grep -qE '^[[:space:]]*BinaryName = "/usr/bin/nvidia-container-runtime"' "$conf" || die "containerd: no nvidia runtime binary"
grep -qE '^[[:space:]]*SystemdCgroup = true' "$conf" || die "containerd: SystemdCgroup got lost"
containerd --config "$conf" config dump >/dev/null || die "containerd cannot read $conf"

# ---- module loading ----------------------------------------------------------------------------
# The driver's alternatives link /etc/modules-load.d/nvidia.conf makes systemd-modules-load load
# nvidia-drm on every boot, which fails (and fails the unit) on a machine without an NVIDIA GPU.
# udev loads the modules by PCI alias where a GPU is present, so the list is replaced by a file
# (update-alternatives keeps a regular file instead of relinking it).
rm -f /etc/modules-load.d/nvidia.conf
printf '%s\n' '# metal-stack: empty on purpose; udev loads the NVIDIA modules for the GPUs present' \
  '# (modalias), nvidia-cdi-generate.service loads nvidia and nvidia-uvm before it writes the CDI spec.' \
  > /etc/modules-load.d/nvidia.conf
[ ! -L /etc/modules-load.d/nvidia.conf ] || die "/etc/modules-load.d/nvidia.conf is still a link"

log "done"
