#!/usr/bin/env bash
# Runs inside a GPU kind node after create (online path, as nvkind does): install the NVIDIA container
# toolkit from NVIDIA's repository and make it containerd's default runtime, so pods that the device
# plugin gives GPUs get the driver libraries and device nodes (and no others: see the toolkit's config below).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if ! command -v nvidia-ctk >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq curl gpg ca-certificates >/dev/null
  key=/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg
  curl -fsSL https://nvidia.github.io/libnvidia-container/gpgkey | gpg --dearmor --yes -o "$key"
  echo "deb [signed-by=$key] https://nvidia.github.io/libnvidia-container/stable/deb/\$(ARCH) /" \
    > /etc/apt/sources.list.d/nvidia-container-toolkit.list
  apt-get update -qq
  apt-get install -y -qq nvidia-container-toolkit >/dev/null
fi
nvidia-ctk runtime configure --runtime=containerd --set-as-default
# Pods get GPUs only as the device plugin hands them out (/dev/null mounts under /var/run/nvidia-container-devices):
# NVIDIA_VISIBLE_DEVICES, set by a pod or baked into its image, is ignored unless the container is privileged.
nvidia-ctk config --in-place \
  --set accept-nvidia-visible-devices-envvar-when-unprivileged=false \
  --set accept-nvidia-visible-devices-as-volume-mounts=true
systemctl restart containerd
