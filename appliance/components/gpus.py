"""The GPUs of a cluster as the components that share them out read them (queues' flavors and quotas,
user-profiles' ResourceQuota): each GPU product's whole GPUs and MIG instances, and a user's share of a MIG
profile's instances."""

from __future__ import annotations

GPU = "nvidia.com/gpu"
#: the resource prefix of MIG instances under the device plugin's mixed strategy
MIG = "nvidia.com/mig-"
PRODUCT = "nvidia.com/gpu.product"


def products(kube) -> list[dict]:
    """[{product, flavor, devices: {resource: count}, count, tolerations}] of the nodes that advertise GPUs or
    MIG instances (`nvidia.com/mig-<profile>`, mixed strategy), by product; `count`: GPU feature discovery's
    GPU count (a MIG node's physical GPUs). None without a cluster."""
    found: dict[str, dict] = {}
    for node in kube.list_labelled("v1", "Node", PRODUCT) if kube is not None else []:
        alloc = (node.get("status") or {}).get("allocatable") or {}
        devices = {r: int(n) for r, n in alloc.items() if (r == GPU or r.startswith(MIG)) and int(n or 0)}
        labels = node["metadata"].get("labels") or {}
        product = labels.get(PRODUCT)
        if not devices or not product:
            continue
        p = found.setdefault(product, {"product": product, "flavor": "gpu-" + product.lower().replace("_", "-").replace(".", "-"),
                                       "devices": {}, "count": 0, "tolerations": []})
        for r, n in devices.items():
            p["devices"][r] = p["devices"].get(r, 0) + n
        p["count"] += int(labels.get("nvidia.com/gpu.count") or devices.get(GPU, 0))
        for t in (node.get("spec") or {}).get("taints") or []:
            tol = {"key": t["key"], "operator": "Exists", "effect": t["effect"]}
            if tol not in p["tolerations"]:
                p["tolerations"].append(tol)
    return [found[k] for k in sorted(found)]


def mig_share(instances: int, gpus: int, total: int) -> int:
    """A user's share of a MIG profile's `instances`: the part `gpus` (their GPU quota or ceiling) is of the
    cluster's `total` GPUs, rounded down."""
    return instances * gpus // max(total, 1)
