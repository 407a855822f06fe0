"""The kind Cluster config written from a profile's `cluster` section."""

from __future__ import annotations

from typing import Any

from appliance.images.delivery import node_mirrors
from appliance.providers.base import ADMISSION_PLUGINS
from appliance.providers.kind.gpu import gpu_assignment, gpu_mounts

KIND_API = "kind.x-k8s.io/v1alpha4"

_PORT_KEYS = {"container_port": "containerPort", "host_port": "hostPort", "listen_address": "listenAddress"}
_MOUNT_KEYS = {
    "host_path": "hostPath", "container_path": "containerPath", "read_only": "readOnly",
    "selinux_relabel": "selinuxRelabel",
}  # fmt: skip


def _camel(d: dict[str, Any], keys: dict[str, str]) -> dict[str, Any]:
    return {keys.get(k, k): v for k, v in d.items()}


def kind_config(spec: Any, image: str, gpus: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The kind Cluster config for a profile's `cluster` section."""
    k = spec.kind
    mode = getattr(k, "gpus", "auto")
    assign = gpu_assignment(gpus or [], spec.control_planes, spec.workers, mode)
    mounts = [_camel(m, _MOUNT_KEYS) for m in k.extra_mounts]
    ports = [_camel(p, _PORT_KEYS) for p in k.port_mappings]
    nodes: list[dict[str, Any]] = []
    roles = ["control-plane"] * spec.control_planes + ["worker"] * spec.workers
    for pos, role in enumerate(roles):
        node: dict[str, Any] = {"role": role, "image": image}
        mine = [dict(p) for p in ports if p.get("role", "control-plane") == role]
        first_of_role = pos == roles.index(role)
        if mine and first_of_role:
            node["extraPortMappings"] = [{kk: vv for kk, vv in p.items() if kk != "role"} for p in mine]
        node_mounts = list(mounts) + gpu_mounts(assign.get(pos, []))
        if node_mounts:
            node["extraMounts"] = node_mounts
        if assign.get(pos):
            node["labels"] = {"nvidia.com/gpu.present": "true"}
        nodes.append(node)
    cfg: dict[str, Any] = {"kind": "Cluster", "apiVersion": KIND_API, "name": spec.name, "nodes": nodes,
                           "kubeadmConfigPatches": KUBEADM_PATCHES}
    mirrors = node_mirrors(spec.images)
    if mirrors:
        cfg["containerdConfigPatches"] = [containerd_mirrors(mirrors)]
    if k.feature_gates:
        cfg["featureGates"] = dict(k.feature_gates)
    return cfg


#: kubeadm (v1beta3, what kind writes for these Kubernetes versions): the API server's admission plugins, and
#: every container without a seccomp profile of its own gets the runtime's default one (kubelet seccompDefault).
KUBEADM_PATCHES = [
    "kind: ClusterConfiguration\napiServer:\n  extraArgs:\n    enable-admission-plugins: " + ",".join(ADMISSION_PLUGINS) + "\n",
    "kind: KubeletConfiguration\nseccompDefault: true\n",
]


def containerd_mirrors(mirrors: dict[str, str]) -> str:
    """containerd (config v2, CRI) lines sending pulls of each registry host to its mirror endpoint."""
    lines = []
    for host, url in sorted(mirrors.items()):
        lines += [f'[plugins."io.containerd.grpc.v1.cri".registry.mirrors."{host}"]', f'  endpoint = ["{url}"]']
    return "\n".join(lines) + "\n"


def node_names(name: str, control_planes: int, workers: int) -> list[str]:
    """The container names kind gives the nodes."""
    cps = [f"{name}-control-plane"] + [f"{name}-control-plane{i}" for i in range(2, control_planes + 1)]
    ws = ([f"{name}-worker"] if workers else []) + [f"{name}-worker{i}" for i in range(2, workers + 1)]
    return cps + ws
