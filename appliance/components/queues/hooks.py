"""queues: what data cannot say — the GPU products of the nodes (a ResourceFlavor each, with those nodes'
taints tolerated), each user's quota per flavor and what they may borrow (user-profiles' quota and ceiling),
the fair-sharing weights; for `status`, each user's queue."""

from __future__ import annotations

from appliance.components.gpus import GPU, MIG, mig_share
from appliance.components.gpus import products as gpu_products
from appliance.components.kit import quantity_m, quantity_mi
from appliance.errors import ProfileError

KUEUE = "kueue.x-k8s.io/v1beta2"
#: the kinds whose objects Kueue puts its finalizers on
FINALIZED = ("Workload", "ClusterQueue", "LocalQueue", "ResourceFlavor", "AdmissionCheck")


def check(options) -> None:
    """Each weight is given once per user."""
    seen = [w.split("=", 1)[0] for w in options.weights]
    if dupes := sorted({u for u in seen if seen.count(u) > 1}):
        raise ProfileError(f"weight of {', '.join(dupes)} given twice", "components.queues.options.weights", "give each user one weight")


def _split(total: int, shares: list[int]) -> list[int]:
    """`total` split by `shares` (largest remainders first); nothing to split by: zeros."""
    whole = sum(shares)
    if not whole:
        return [0] * len(shares)
    exact = [total * s / whole for s in shares]
    out = [int(x) for x in exact]
    for i in sorted(range(len(exact)), key=lambda i: out[i] - exact[i])[: total - sum(out)]:
        out[i] += 1
    return out


def _covered(products: list[dict]) -> list[str]:
    """The GPU resources the queues account: nvidia.com/gpu, then each MIG profile present."""
    return [GPU, *sorted({r for p in products for r in p["devices"] if r != GPU})]


def _gpu_quotas(products: list[dict], quota: dict, ceiling: dict) -> list[dict]:
    """Per product {flavor, resources: [{name, nominalQuota, borrowingLimit}] for each covered resource}: whole
    GPUs are user-profiles' GPU quota and ceiling split by the products' shares of them; a MIG profile's
    instances, the share of them that quota and ceiling are of all GPUs. Without a GPU quota, everything a product
    has and no borrowing."""
    covered, gpus = _covered(products), [p["devices"].get(GPU, 0) for p in products]
    if quota["gpu"] is not None:
        nominal, top = _split(quota["gpu"], gpus), _split(ceiling["gpu"], gpus)
        total = sum(p["count"] for p in products)
    out = []
    for i, p in enumerate(products):
        res = []
        for r in covered:
            have = p["devices"].get(r, 0)
            if quota["gpu"] is None:
                n, b = have, 0
            elif r == GPU:
                n, b = nominal[i], max(top[i] - nominal[i], 0)
            else:
                n = mig_share(have, quota["gpu"], total)
                b = max(mig_share(have, ceiling["gpu"], total) - n, 0)
            res.append({"name": r, "nominalQuota": n, "borrowingLimit": b})
        out.append({"flavor": p["flavor"], "resources": res})
    return out


def _pool(products: list[dict], gpu: list[dict], users: int) -> list[dict]:
    """Per product {flavor, resources: [{name, nominalQuota}]}: its GPUs (and MIG instances) that are no user's
    nominal quota (the cohort's own, lent by fair-sharing weight), for the products that have any."""
    pool = [{"flavor": g["flavor"], "resources": [{"name": r["name"], "nominalQuota": max(p["devices"].get(r["name"], 0) - users * r["nominalQuota"], 0)}
                                                  for r in g["resources"]]}
            for p, g in zip(products, gpu, strict=True)]
    return [p for p in pool if any(r["nominalQuota"] for r in p["resources"])]


def context(options, kube, users=(), quota=None, ceiling=None) -> dict:
    """`users`, `flavors` (the GPU products), `gpu` (each flavor's nominal and borrowing limit of each `covered`
    resource: GPUs, MIG instances), `pool` (what is left over, the cohort's), `cpu` and `memory` ({nominal, borrowing}: up to user-profiles' ceiling, so a
    job Kueue admits is never refused its pods by the ResourceQuota), `weights` (user → weight)."""
    quota = quota or {"gpu": None, "cpu": "1", "memory": "1Gi"}
    ceiling = ceiling or quota
    products = gpu_products(kube)
    weights = dict(w.split("=", 1) for w in options.weights)
    gpu = _gpu_quotas(products, quota, ceiling)
    return {"users": sorted(users), "flavors": products, "gpu": gpu, "covered": _covered(products), "pool": _pool(products, gpu, len(users)),
            "cpu": {"nominal": quota["cpu"], "borrowing": f"{quantity_m(ceiling['cpu']) - quantity_m(quota['cpu'])}m"},
            "memory": {"nominal": quota["memory"], "borrowing": f"{quantity_mi(ceiling['memory']) - quantity_mi(quota['memory'])}Mi"},
            "weights": {u: weights.get(u, "1") for u in users}}


def notes(options, kube) -> list[str]:
    """For `status`, the three questions of a team sharing GPUs: per user's ClusterQueue, how many GPUs they may
    use (quota, and how many more they may borrow), who is borrowing (in use, borrowed), jobs pending and
    admitted (after the cohort's own GPUs, lent by weight); then each waiting job with Kueue's reason."""
    out, cqs = [], kube.list_labelled(KUEUE, "ClusterQueue", "appliance.dev/component=queues")
    weights = ", ".join(f"{cq['metadata']['name']} {cq['spec'].get('fairSharing', {}).get('weight', '1')}" for cq in cqs)
    for co in kube.list_labelled(KUEUE, "Cohort", "appliance.dev/component=queues"):
        res = [r for g in co.get("spec", {}).get("resourceGroups") or [] for f in g.get("flavors") or [] for r in f.get("resources") or []]
        gpus, mig = (sum(int(r.get("nominalQuota", 0)) for r in res if test(r["name"])) for test in (GPU.__eq__, lambda n: n.startswith(MIG)))
        out.append(f"cohort {co['metadata']['name']}: {gpus} GPUs{f' and {mig} MIG instances' if mig else ''} in no user's quota, "
                   f"lent by fair-sharing weight ({weights})")
    for cq in cqs:
        st = cq.get("status") or {}
        limits = [r for g in cq.get("spec", {}).get("resourceGroups") or [] for f in g.get("flavors") or [] for r in f.get("resources") or []
                  if r["name"] == GPU]
        gpus = [r for f in st.get("flavorsUsage") or [] for r in f.get("resources") or [] if r["name"] == GPU]
        quota, borrowable = (sum(int(r.get(k, 0)) for r in limits) for k in ("nominalQuota", "borrowingLimit"))
        used, borrowed = (sum(int(r.get(k, 0)) for r in gpus) for k in ("total", "borrowed"))
        out.append(f"{cq['metadata']['name']}: {used} GPUs in use ({borrowed} borrowed) of a quota of {quota} (+{borrowable} "
                   f"borrowable); {st.get('pendingWorkloads', 0)} pending, {st.get('admittedWorkloads', 0)} admitted")
    for wl in kube.list_labelled(KUEUE, "Workload", ""):
        conds = {c["type"]: c for c in (wl.get("status") or {}).get("conditions") or []}
        if any(conds.get(t, {}).get("status") == "True" for t in ("QuotaReserved", "Finished")):
            continue
        meta, owner = wl["metadata"], next(iter(wl["metadata"].get("ownerReferences") or []), {})
        why = (conds.get("QuotaReserved") or conds.get("Pending") or {}).get("message") or "not yet considered by Kueue"
        out.append(f"waiting: {meta['namespace']}/{owner.get('name', meta['name'])} ({owner.get('kind', 'Workload')}): {why}")
    return out or ["no queues"]


def after_remove(options, kube) -> None:
    """Kueue's finalizers, which its stopped manager will not take off, are dropped from its objects (all
    going with their CRDs: the users' Workloads too), so that they and the CRDs go."""
    for kind in FINALIZED:
        for o in kube.list_labelled(KUEUE, kind, ""):
            meta = o["metadata"]
            if meta.get("finalizers"):
                kube.dynamic.resources.get(api_version=KUEUE, kind=kind).patch(
                    name=meta["name"], namespace=meta.get("namespace"), body={"metadata": {"finalizers": None}},
                    content_type="application/merge-patch+json")
