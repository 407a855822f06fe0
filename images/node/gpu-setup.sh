#!/usr/bin/env bash
# Runs inside a GPU kind node after create (online path, as nvkind does): install the NVIDIA container
# toolkit from NVIDIA's repository and make it containerd's default runtime, so pods that the device
# plugin gives GPUs get the driver libraries and device nodes.
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
systemctl restart containerd
