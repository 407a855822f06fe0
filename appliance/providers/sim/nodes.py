"""Simulated nodes: Node objects for each profile node class, GPU nodes labelled like NVIDIA GFD does;
created, listed and awaited through the API server.

Taint default: GPU nodes are NOT tainted unless the node class lists the taint
(e.g. `taints: ["nvidia.com/gpu=present:NoSchedule"]`). Most on-prem DGX
clusters leave GPU nodes untainted; cloud GPU pools taint them. Profiles that
want the cloud behaviour say so explicitly.
"""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import yaml

from appliance.errors import ProfileError, UserError
from appliance.toolchain.pins import KUBERNETES
from appliance.util import wait

KWOK_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
CLASS_LABEL = "appliance.dev/node-class"
SIM_LABEL = "appliance.dev/sim"
GPU = "nvidia.com/gpu"

#: product -> (memory MiB, family, compute capability, MIG capable), from gpu-products.yaml beside this module
GPU_PRODUCTS: dict[str, tuple[int, str, str, bool]] = {
    k: tuple(v) for k, v in yaml.safe_load((Path(__file__).resolve().parent / "gpu-products.yaml").read_text()).items()}
#: product -> {"profiles": {profile: [most per GPU, memory MiB, compute slices]}, "balanced": {profile: n}}
MIG_PROFILES: dict[str, dict] = yaml.safe_load((Path(__file__).resolve().parent / "mig-profiles.yaml").read_text())
#: the MIG layout of a simulated node's GPUs ("8x1g.10gb=2,2g.20gb=1"), for the GPU exporter's per-instance series
MIG_ANNOTATION = "appliance.dev/sim-mig"
DEFAULT_PRODUCT = "NVIDIA-H100-80GB-HBM3"
DEFAULT_DRIVER = "550.90.07"
# driver major -> highest CUDA runtime it supports (what GFD reports as cuda.runtime)
_CUDA_FOR_DRIVER = [(570, "12.8"), (565, "12.7"), (560, "12.6"), (555, "12.5"), (550, "12.4"), (545, "12.3"),
                    (535, "12.2"), (530, "12.1"), (525, "12.0"), (520, "11.8"), (515, "11.7"), (470, "11.4")]
_FAMILY_CC = {"hopper": "9.0", "ampere": "8.0", "ada-lovelace": "8.9", "blackwell": "10.0", "volta": "7.0", "turing": "7.5"}
_TAINT = re.compile(r"^([A-Za-z0-9./_-]+)(?:=([A-Za-z0-9._-]*))?:(NoSchedule|PreferNoSchedule|NoExecute)$")


def parse_taint(s: str, where: str = "") -> dict[str, str]:
    """'key=value:Effect' or 'key:Effect' -> a Node taint."""
    m = _TAINT.match(s.strip())
    if not m:
        raise ProfileError(f"taint '{s}' is not key[=value]:NoSchedule|PreferNoSchedule|NoExecute", where,
                           "write it like nvidia.com/gpu=present:NoSchedule")
    t = {"key": m.group(1), "effect": m.group(3)}
    if m.group(2):
        t["value"] = m.group(2)
    return t


def mig_layout(nc: Any) -> dict[str, int]:
    """Instances per GPU by MIG profile of node class `nc` ({} without MIG); one line for a layout that cannot be."""
    if not nc.mig_config:
        return {}
    where = f"cluster.node_classes[{nc.name}].mig_config"
    product = nc.gpu_product or DEFAULT_PRODUCT
    known = MIG_PROFILES.get(product)
    if not nc.gpus or known is None:
        raise ProfileError(f"node class '{nc.name}' has no MIG-capable GPU ({product if nc.gpus else 'no GPUs'})", where,
                           f"use a product of {', '.join(MIG_PROFILES)} or leave mig_config out")
    if nc.mig_strategy == "none":
        raise ProfileError(f"mig_config '{nc.mig_config}' with mig_strategy none", where, "set mig_strategy to single or mixed")
    cfg = nc.mig_config
    if cfg == "all-balanced":
        layout = dict(known["balanced"])
    elif cfg.startswith("all-"):
        layout = {cfg[4:]: known["profiles"].get(cfg[4:], [0])[0]}
    else:
        try:
            layout = {p.strip(): int(n) for p, _, n in (part.partition("=") for part in cfg.split(","))}
        except ValueError:
            raise ProfileError(f"mig_config '{cfg}' is not <profile>=<count>,…", where, "write e.g. 1g.10gb=2,2g.20gb=1,3g.40gb=1") from None
    bad = sorted(p for p in layout if p not in known["profiles"])
    if bad or not all(n > 0 for n in layout.values()):
        raise ProfileError(f"MIG profile(s) {', '.join(bad) or cfg} not on {product}", where, f"use {', '.join(known['profiles'])}")
    if sum(known["profiles"][p][2] * n for p, n in layout.items()) > 7 or any(n > known["profiles"][p][0] for p, n in layout.items()):
        raise ProfileError(f"mig_config '{cfg}' needs more than one {product}", where, "use fewer or smaller instances per GPU")
    if nc.mig_strategy == "single" and len(layout) > 1:
        raise ProfileError(f"mig_strategy single with mixed profiles ({cfg})", where, "use mig_strategy mixed, or one profile")
    return layout


def gpu_resources(nc: Any, layout: dict[str, int]) -> dict[str, int]:
    """The GPU resources a node of class `nc` (its MIG `layout`) advertises: nvidia.com/gpu, or with MIG (as
    NVIDIA's device plugin does) the instances: as nvidia.com/gpu under strategy single, as
    nvidia.com/mig-<profile> under mixed."""
    if not layout:
        return {GPU: nc.gpus} if nc.gpus else {}
    if nc.mig_strategy == "single":
        return {GPU: nc.gpus * next(iter(layout.values()))}
    return {f"nvidia.com/mig-{p}": nc.gpus * n for p, n in layout.items()}


def _mig_labels(nc: Any, product: str, layout: dict[str, int]) -> dict[str, str]:
    """The labels GPU feature discovery adds for MIG: the config and, per profile, count, memory and slices."""
    known = MIG_PROFILES[product]["profiles"]
    out = {"nvidia.com/mig.config": nc.mig_config, "nvidia.com/mig.config.state": "success"}
    if nc.mig_strategy == "single":
        (p, n), = layout.items()
        return out | {"nvidia.com/gpu.product": f"{product}-MIG-{p}", "nvidia.com/gpu.count": str(nc.gpus * n),
                      "nvidia.com/gpu.memory": str(known[p][1]), "nvidia.com/gpu.slices.gi": str(known[p][2]),
                      "nvidia.com/gpu.slices.ci": str(known[p][2])}
    for p, n in layout.items():
        out |= {f"nvidia.com/mig-{p}.count": str(nc.gpus * n), f"nvidia.com/mig-{p}.memory": str(known[p][1]),
                f"nvidia.com/mig-{p}.slices.gi": str(known[p][2]), f"nvidia.com/mig-{p}.slices.ci": str(known[p][2])}
    return out


def gpu_labels(nc: Any, layout: dict[str, int]) -> dict[str, str]:
    """The labels NVIDIA GPU feature discovery (and NFD) put on a node with `nc.gpus` GPUs, cut as `layout` says."""
    if not nc.gpus:
        return {}
    product = nc.gpu_product or DEFAULT_PRODUCT
    mem, family, cc, mig = GPU_PRODUCTS.get(product, (0, "", "", False))
    mem = nc.gpu_memory_mib or mem
    family = nc.gpu_family or family or "unknown"
    cc = cc or _FAMILY_CC.get(family, "")
    driver = nc.cuda_driver_version or DEFAULT_DRIVER
    parts = (driver.split(".") + ["0", "0"])[:3]
    dmaj = int(parts[0]) if parts[0].isdigit() else 0
    cuda = next((c for d, c in _CUDA_FOR_DRIVER if dmaj >= d), "12.4")
    cmaj, cmin = cuda.split(".")
    labels = {
        "feature.node.kubernetes.io/pci-10de.present": "true",
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.deploy.device-plugin": "true",
        "nvidia.com/gpu.product": product,
        "nvidia.com/gpu.count": str(nc.gpus),
        "nvidia.com/gpu.memory": str(mem),
        "nvidia.com/gpu.family": family,
        "nvidia.com/gpu.machine": nc.name,
        "nvidia.com/gpu.replicas": "1",
        "nvidia.com/gpu.sharing-strategy": "none",
        "nvidia.com/mig.capable": "true" if mig else "false",
        "nvidia.com/mig.strategy": nc.mig_strategy,
        "nvidia.com/cuda.driver.major": parts[0],
        "nvidia.com/cuda.driver.minor": parts[1],
        "nvidia.com/cuda.driver.rev": parts[2],
        "nvidia.com/cuda.driver-version.major": parts[0],
        "nvidia.com/cuda.driver-version.minor": parts[1],
        "nvidia.com/cuda.driver-version.revision": parts[2],
        "nvidia.com/cuda.driver-version.full": driver,
        "nvidia.com/cuda.runtime.major": cmaj,
        "nvidia.com/cuda.runtime.minor": cmin,
        "nvidia.com/cuda.runtime-version.major": cmaj,
        "nvidia.com/cuda.runtime-version.minor": cmin,
        "nvidia.com/cuda.runtime-version.full": cuda,
        "nvidia.com/gfd.timestamp": str(int(time.time())),
    }
    if cc:
        labels["nvidia.com/gpu.compute.major"], labels["nvidia.com/gpu.compute.minor"] = cc.split(".")
    if layout:
        labels.update(_mig_labels(nc, product, layout))
    return labels


def node_name(nc: Any, i: int) -> str:
    return f"{nc.name}-{i}"


def node_manifest(nc: Any, i: int, cluster: str) -> dict[str, Any]:
    """One Node object (with status, which the API keeps on create) for node `i` of class `nc`."""
    name = node_name(nc, i)
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": nc.name,
        "type": "kwok",
        CLASS_LABEL: nc.name,
        SIM_LABEL: cluster,
    }
    layout = mig_layout(nc)
    labels.update(gpu_labels(nc, layout))
    labels.update(nc.labels)
    capacity = {"cpu": nc.cpu, "memory": nc.memory, "pods": str(nc.pods), "ephemeral-storage": "1Ti"}
    capacity |= {r: str(n) for r, n in gpu_resources(nc, layout).items()}
    taints = [parse_taint(t, f"cluster.node_classes[{nc.name}].taints") for t in nc.taints]
    annotations = {KWOK_ANNOTATION[0]: KWOK_ANNOTATION[1], "node.alpha.kubernetes.io/ttl": "0"}
    if layout:
        annotations[MIG_ANNOTATION] = f"{nc.gpus}x" + ",".join(f"{p}={n}" for p, n in layout.items())
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "spec": {"taints": taints} if taints else {},
        "status": {
            "capacity": capacity,
            "allocatable": dict(capacity),
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "kubeletVersion": KUBERNETES,
                "kubeProxyVersion": KUBERNETES,
                "containerRuntimeVersion": "kwok",
                "kernelVersion": "kwok",
                "osImage": "appliance simulated node",
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
            },
            "phase": "Pending",
        },
    }


def node_manifests(node_classes: list[Any], cluster: str) -> list[dict[str, Any]]:
    out = []
    seen = set()
    for nc in node_classes:
        if nc.name in seen:
            raise ProfileError(f"node class '{nc.name}' is listed twice", "cluster.node_classes", "give each class its own name")
        seen.add(nc.name)
        out += [node_manifest(nc, i, cluster) for i in range(nc.count)]
    return out


# ------------------------------------------------------------------ through the API


def list_nodes(api, cluster: str) -> list[dict]:
    """This cluster's simulated nodes as plain JSON dicts (no client-model decoding: 1,000 nodes stay cheap)."""
    from kubernetes import client

    resp = client.CoreV1Api(api).list_node(label_selector=f"{SIM_LABEL}={cluster}", resource_version="0",
                                           _preload_content=False)
    try:
        return json.loads(resp.data)["items"]
    finally:
        resp.release_conn()


def create_nodes(api, manifests: list[dict], cluster: str, report: Callable[[str], None]) -> None:
    """Create the Nodes of `manifests` that do not exist yet, 16 at a time."""
    existing = {n["metadata"]["name"] for n in list_nodes(api, cluster)}
    todo = [m for m in manifests if m["metadata"]["name"] not in existing]
    if todo:
        report(f"creating {len(todo)} simulated nodes")

    pool, url = api.rest_client.pool_manager, api.configuration.host + "/api/v1/nodes"
    headers = {"Content-Type": "application/json", "Accept": "application/json"}

    def one(m):
        # straight through the client's TLS pool: the generated client's (de)serialisation costs more
        # CPU than the API server spends on the request, and at 1,000 nodes CPU is what we lack
        body = json.dumps(m).encode()
        for attempt in range(5):
            try:
                r = pool.request("POST", url, body=body, headers=headers, timeout=60)
            except Exception as e:  # noqa: BLE001 - connection trouble: retry, then say so
                if attempt < 4:
                    time.sleep(0.2 * (attempt + 1))
                    continue
                raise UserError(f"creating node {m['metadata']['name']} failed: {e}", "sim",
                                "see logs/kube-apiserver.log in the state dir") from e
            if r.status < 300 or r.status == 409:
                return
            if r.status in (429, 500, 503) and attempt < 4:
                time.sleep(0.2 * (attempt + 1))
                continue
            raise UserError(f"creating node {m['metadata']['name']} failed: HTTP {r.status} "
                            f"{r.data[:200].decode(errors='replace')}", "sim", "see logs/kube-apiserver.log in the state dir")

    with ThreadPoolExecutor(max_workers=16) as ex:
        list(ex.map(one, todo))
    if todo:
        report(f"{len(todo)} nodes created; waiting for them to be Ready")


def wait_ready(api, cluster: str, names: set[str], timeout: float, check_alive: Callable[[], None], log: str) -> list[dict]:
    """Poll the API until every named node is Ready; return the nodes (JSON dicts). `check_alive` raises
    when a process the nodes need died; `log` is where to look when they never become Ready."""
    named: list[dict] = []

    def ready() -> tuple[bool, str]:
        named[:] = [n for n in list_nodes(api, cluster) if n["metadata"]["name"] in names]
        n_ready = sum(map(is_ready, named))
        return n_ready >= len(names), f"{n_ready}/{len(names)}"

    ok, counts = wait.within(ready, timeout, interval=0.1, factor=1.5, cap=1.0, alive=check_alive)
    if not ok:
        raise UserError(f"only {counts} simulated nodes became Ready within {timeout:.0f}s", "sim", f"see {log}")
    return named


def summary(nodes: list[dict]) -> list[dict]:
    """One row per node (class, readiness, allocatable CPU, memory, GPUs), in natural name order."""
    out = []
    for n in nodes:
        alloc = n.get("status", {}).get("allocatable") or {}
        labels = n["metadata"].get("labels") or {}
        out.append({
            "name": n["metadata"]["name"],
            "node_class": labels.get(CLASS_LABEL, ""),
            "ready": is_ready(n),
            "cpu": alloc.get("cpu", ""),
            "memory": alloc.get("memory", ""),
            "gpus": int(alloc.get(GPU, "0")),
            "gpu_product": labels.get("nvidia.com/gpu.product", ""),
        })
    return sorted(out, key=lambda d: _natural(d["name"]))


def is_ready(n: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in (n.get("status", {}).get("conditions") or []))


def _natural(s: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]
