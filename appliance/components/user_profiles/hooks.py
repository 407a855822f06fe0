"""user-profiles: what data cannot say — names YAML would not read back as strings, the users it offers the
components that depend on it (the one list: the profile's), and the users who left (namespaces still
labelled with an owner the profile no longer lists), read from the cluster."""

from __future__ import annotations

from appliance.components.gpus import GPU, mig_share
from appliance.components.gpus import products as gpu_products
from appliance.components.kit import quantity_m, quantity_mi
from appliance.errors import ProfileError

OWNER = "appliance.dev/owner"
#: words YAML 1.1 reads as booleans or null: a name like these turns into `true`/`null` in any manifest or
#: config written without quotes (Kubernetes objects, Ansible, the hub's config)
YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}


def check(options) -> None:
    """Each user name is a string YAML reads back as itself, and unique; `--` is refused (the hub escapes
    names with it, so two users' servers could collide)."""
    seen: set[str] = set()
    for i, user in enumerate(options.users):
        where = f"components.user-profiles.options.users.{i}"
        if user in YAML_WORDS:
            raise ProfileError(f"user name '{user}' reads as a boolean or null in YAML", where, "pick another name")
        if "--" in user:
            raise ProfileError(f"user name '{user}' holds '--'", where, "use single dashes")
        if user in seen:
            raise ProfileError(f"user '{user}' is listed twice", where, "list each user once")
        seen.add(user)
    _check_ceilings(options)


def _check_ceilings(options) -> None:
    """No ceiling below its quota (the ResourceQuota would refuse what the quota allows)."""
    pairs = [("gpu", options.gpu_ceiling, options.gpu_quota, int),
             ("cpu", options.cpu_ceiling, options.cpu_quota, quantity_m),
             ("memory", options.memory_ceiling, options.memory_quota, quantity_mi)]
    for what, ceiling, quota, size in pairs:
        if ceiling is not None and quota is not None and size(ceiling) < size(quota):
            raise ProfileError(f"{what}_ceiling {ceiling} is below {what}_quota {quota}",
                               f"components.user-profiles.options.{what}_ceiling", f"set it to {quota} or more, or leave it out")


def offers(options) -> dict:
    """For the components that depend on this one: the users (the profile's list, their per-user objects) and
    each user's quota (nominal) and ceiling (the ResourceQuota: what queues lets them borrow up to)."""
    quota = {"gpu": options.gpu_quota, "cpu": options.cpu_quota, "memory": options.memory_quota}
    ceiling = {"gpu": options.gpu_quota if options.gpu_ceiling is None else options.gpu_ceiling,
               "cpu": options.cpu_ceiling or options.cpu_quota, "memory": options.memory_ceiling or options.memory_quota}
    return {"users": list(options.users), "quota": quota, "ceiling": ceiling}


def context(options, kube) -> dict:
    """`departed`: owners of kept user namespaces no longer in `users` (closed, not deleted); `api`: the API
    server's addresses and port as pods reach it (the `kubernetes` Service and its endpoints); `mig`: the
    ResourceQuota's bound on each MIG profile's instances (`nvidia.com/mig-<profile>`)."""
    return {"departed": _departed(kube, options.users), "api": _api_server(kube), "mig": _mig_ceilings(options, kube)}


def _mig_ceilings(options, kube) -> dict[str, int]:
    """Resource → instances a user may request at once: with a GPU quota, the share of each MIG profile's
    instances that the GPU ceiling is of all the cluster's GPUs (what queues lets them borrow up to); none
    without a GPU quota (GPUs are not bounded then either)."""
    if options.gpu_quota is None:
        return {}
    ceiling = options.gpu_quota if options.gpu_ceiling is None else options.gpu_ceiling
    found = gpu_products(kube)
    total = sum(p["count"] for p in found)
    instances: dict[str, int] = {}
    for p in found:
        for r, n in p["devices"].items():
            if r != GPU:
                instances[r] = instances.get(r, 0) + n
    return {r: mig_share(n, ceiling, total) for r, n in sorted(instances.items())}


def _departed(kube, users: list[str]) -> list[str]:
    """Owners of the user namespaces this component made whose user is no longer listed."""
    if kube is None:
        return []
    spaces = kube.list_labelled("v1", "Namespace", "appliance.dev/component=user-profiles")
    owners = {(o["metadata"].get("labels") or {}).get(OWNER) for o in spaces}
    return sorted(o for o in owners if o and o not in users)


def _api_server(kube) -> dict:
    """{"service": ClusterIP, "port": its port, "endpoints": [IP], "endpoint_port": port} of `default/kubernetes`
    (none without a cluster)."""
    if kube is None:
        return {"service": "", "port": 443, "endpoints": [], "endpoint_port": 6443}
    svc = kube.get("v1", "Service", "kubernetes", "default").to_dict()
    eps = (kube.get("v1", "Endpoints", "kubernetes", "default") or None)
    subsets = (eps.to_dict().get("subsets") or []) if eps is not None else []
    ips = sorted({a["ip"] for s in subsets for a in s.get("addresses") or []})
    ports = [p["port"] for s in subsets for p in s.get("ports") or []]
    return {"service": svc["spec"].get("clusterIP", ""), "port": svc["spec"]["ports"][0]["port"],
            "endpoints": ips, "endpoint_port": ports[0] if ports else 6443}
