"""What Kueue made of a Job, polled until it holds: `queued` (suspended, no pods, its Workload waiting with
Kueue's reason), `admitted` (unsuspended, its Workload admitted, its pods running: the nodes' GPU products printed), `succeeded`; `usage CQ GPUS BORROWED` waits
for a ClusterQueue's GPU usage; `attack` tries, as the caller, to change or read another user's Workload (must be 403)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from kubernetes import client, config
from kubernetes.client.rest import ApiException

KUEUE = ("kueue.x-k8s.io", "v1beta2")


def _workload(crd, ns: str, job: str) -> dict | None:
    """The Workload Kueue made for Job `job` (owned by it)."""
    items = crd.list_namespaced_custom_object(*KUEUE, ns, "workloads")["items"]
    return next((w for w in items if any(r["kind"] == "Job" and r["name"] == job for r in w["metadata"].get("ownerReferences") or [])), None)


def _state(ns: str, job: str) -> tuple[str, str]:
    """(queued | admitted | succeeded | other, what was seen)."""
    batch, core, crd = client.BatchV1Api(), client.CoreV1Api(), client.CustomObjectsApi()
    j = batch.read_namespaced_job(job, ns)
    pods = core.list_namespaced_pod(ns, label_selector=f"job-name={job}").items
    wl = _workload(crd, ns, job)
    running = [p for p in pods if p.status.phase == "Running" and p.spec.node_name]
    products = sorted({(core.read_node(p.spec.node_name).metadata.labels or {}).get("nvidia.com/gpu.product", "none") for p in running})
    conds = {c["type"]: c for c in ((wl or {}).get("status") or {}).get("conditions") or []}
    reserved = conds.get("QuotaReserved", {})
    seen = (f"suspend={j.spec.suspend} queue={(j.metadata.labels or {}).get('kueue.x-k8s.io/queue-name')} pods={len(pods)} "
            f"running={len(running)} on {','.join(products) or '-'} "
            f"workload={wl and wl['metadata']['name']} QuotaReserved={reserved.get('status')} ({reserved.get('message', '')})")
    if j.status.succeeded and j.status.succeeded >= (j.spec.completions or 1):
        return "succeeded", seen
    if j.spec.suspend and not pods and wl and reserved.get("status") == "False" and reserved.get("reason") == "Pending":
        return "queued", seen
    if not j.spec.suspend and conds.get("Admitted", {}).get("status") == "True" and len(running) == j.spec.parallelism:
        return "admitted", seen
    return "other", seen


def _keep(job: str, ns: str) -> None:
    """Keep the name of the Job's Workload for a later step (the attack)."""
    if wl := _workload(client.CustomObjectsApi(), ns, job):
        Path(os.environ["E2E_ARTIFACTS"], f"{job}.workload").write_text(wl["metadata"]["name"])


def _usage(cq: str) -> tuple[int, int]:
    """(GPUs in use, borrowed) of ClusterQueue `cq`."""
    st = client.CustomObjectsApi().get_cluster_custom_object(*KUEUE, "clusterqueues", cq).get("status") or {}
    gpus = [r for f in st.get("flavorsUsage") or [] for r in f.get("resources") or [] if r["name"] == "nvidia.com/gpu"]
    return sum(int(r.get("total", 0)) for r in gpus), sum(int(r.get("borrowed", 0)) for r in gpus)


def _attack(ns: str, job: str) -> None:
    """As the caller (another user): patching and reading the Workload of `job` (its name kept by a step
    before, as admin) are refused."""
    name = Path(os.environ["E2E_ARTIFACTS"], f"{job}.workload").read_text()
    crd = client.CustomObjectsApi()
    for what, call in (("patch", lambda: crd.patch_namespaced_custom_object(*KUEUE, ns, "workloads", name, {"spec": {"active": False}})),
                       ("get", lambda: crd.get_namespaced_custom_object(*KUEUE, ns, "workloads", name))):
        try:
            call()
        except ApiException as e:
            assert e.status == 403, (what, e.status)
            print(f"{what} of {name}: 403")
            continue
        raise AssertionError(f"{what} of {ns}/{name} was allowed")


def main() -> None:
    config.load_kube_config()
    cmd, *args = sys.argv[1:]
    if cmd == "attack":
        _attack(args[0], args[1])
        return
    deadline = time.monotonic() + float(args[-1])
    while True:
        if cmd == "usage":
            got = _usage(args[0])
            ok, seen = got == (int(args[1]), int(args[2])), f"in use, borrowed: {got}"
        else:
            state, seen = _state(args[0], args[1])
            ok = state == cmd
        if ok:
            print(f"{cmd} ok: {seen}")
            if cmd != "usage" and "E2E_ARTIFACTS" in os.environ:
                _keep(args[1], args[0])
            return
        if time.monotonic() > deadline:
            sys.exit(f"not {cmd} in {args[-1]}s: {seen}")
        time.sleep(1)


if __name__ == "__main__":
    main()
