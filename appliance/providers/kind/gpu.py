"""GPUs for kind nodes, the nvkind way.

With NVML GPUs and the NVIDIA container toolkit set up for volume-mount device selection,
GPU nodes get `/dev/null -> /var/run/nvidia-container-devices/<index>` mounts, so each node
container sees only its GPUs; after create, each such node gets the toolkit installed inside.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any, Callable

from appliance import host, paths
from appliance.errors import UserError

NVIDIA_DEVICES_DIR = "/var/run/nvidia-container-devices"
NVIDIA_RUNTIME_CONFIG = Path("/etc/nvidia-container-runtime/config.toml")
GPU_SETUP = paths.shipped("images", "node", "gpu-setup.sh")


def usable_gpus(mode: str, report: Callable[[str], None]) -> list[dict[str, Any]]:
    """GPUs (as [{index, uuid, name}]) that can be handed to kind nodes: [] with mode none,
    without NVML GPUs, or (said through `report`) without a toolkit set up for it."""
    if mode == "none":
        return []
    gpus = [{"index": g.index, "uuid": g.uuid, "name": g.name} for g in host.gpus().gpus]
    if not gpus:
        return []
    ok, why = nvidia_toolkit()
    if not ok:
        report(f"{len(gpus)} GPU(s) found but not handed to kind nodes: {why}")
        return []
    return gpus


def nvidia_toolkit() -> tuple[bool, str]:
    """Whether the NVIDIA container toolkit can hand GPUs to kind nodes through volume mounts."""
    if not (shutil.which("nvidia-ctk") or shutil.which("nvidia-container-runtime")):
        return False, "NVIDIA container toolkit not installed"
    try:
        text = NVIDIA_RUNTIME_CONFIG.read_text()
    except OSError:
        return False, f"{NVIDIA_RUNTIME_CONFIG} missing"
    for line in text.splitlines():
        k, _, v = line.partition("=")
        if k.strip() == "accept-nvidia-visible-devices-as-volume-mounts" and v.strip().lower() == "true":
            return True, ""
    return False, (
        "accept-nvidia-visible-devices-as-volume-mounts is off; run: nvidia-ctk config --in-place "
        "--set accept-nvidia-visible-devices-as-volume-mounts=true && nvidia-ctk runtime configure "
        "--runtime=docker --set-as-default && systemctl restart docker"
    )


def gpu_assignment(gpus: list[dict[str, Any]], control_planes: int, workers: int, mode: str = "auto") -> dict[int, list[int]]:
    """Node position (0-based, control planes first) -> GPU indexes it gets.

    auto: GPUs are split into contiguous, disjoint groups across the workers (the control
    plane gets them all when there are no workers); all: every GPU node sees every GPU;
    none: no GPUs.
    """
    if mode == "none" or not gpus:
        return {}
    idx = [g["index"] for g in gpus]
    targets = list(range(control_planes, control_planes + workers)) or [0]
    if mode == "all":
        return {t: list(idx) for t in targets}
    out: dict[int, list[int]] = {}
    n = len(targets)
    base, extra = divmod(len(idx), n)
    start = 0
    for i, t in enumerate(targets):
        size = base + (1 if i < extra else 0)
        if size:
            out[t] = idx[start : start + size]
        start += size
    return out


def gpu_mounts(indexes: list[int]) -> list[dict[str, Any]]:
    """extraMounts that make the toolkit inject exactly these GPUs into a node container."""
    return [{"hostPath": "/dev/null", "containerPath": f"{NVIDIA_DEVICES_DIR}/{i}"} for i in indexes]


def setup_nodes(names: list[str], nodes: list[dict[str, Any]], report: Callable[[str], None]) -> None:
    """What nvkind does after create, on each node that got GPU mounts: drop the toolkit's
    /proc/driver/nvidia mount (it would hide the driver from the in-node toolkit), then install
    the toolkit inside the node and make it containerd's default runtime (images/node/gpu-setup.sh).
    `names` are the node containers, in the order of the config's `nodes`."""
    script = GPU_SETUP.read_text()
    for name, node in zip(names, nodes, strict=False):
        if not any(m["containerPath"].startswith(NVIDIA_DEVICES_DIR) for m in node.get("extraMounts", [])):
            continue
        subprocess.run(["docker", "exec", name, "umount", "-R", "/proc/driver/nvidia"], capture_output=True)
        report(f"{name}: installing the NVIDIA container toolkit in the node")
        r = subprocess.run(["docker", "exec", "-i", name, "bash", "-s"], input=script, capture_output=True, text=True)
        if r.returncode != 0:
            raise UserError(f"GPU setup in node {name} failed: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
