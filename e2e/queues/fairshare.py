"""Fair sharing of a cohort's GPUs, as Kueue admits them: `watch SECONDS` samples, every half second and in the
background, the GPUs admitted (all Workloads) and the GPUs of pods on nodes against the nodes' GPUs, into
$E2E_ARTIFACTS/capacity.json; `shares TIMEOUT user=GPUS…` waits until each user's admitted GPUs are within one
of the given share and stay there 5 s; `preempted NS TIMEOUT` waits until a Workload of NS was preempted and
waits again in its queue; `withdraw NS` deletes the PyTorchJobs of NS still waiting (suspended), as their
owner; `capacity` stops the watcher and fails if the admitted or placed GPUs ever exceeded the nodes'."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from jobs import KUEUE, _usage
from kubernetes import client, config

GPU = "nvidia.com/gpu"
OUT = Path(os.environ.get("E2E_ARTIFACTS", "."))


def _admitted(crd) -> int:
    """GPUs of every Workload holding quota now."""
    total = 0
    for wl in crd.list_cluster_custom_object(*KUEUE, "workloads")["items"]:
        st = wl.get("status") or {}
        conds = {c["type"]: c["status"] for c in st.get("conditions") or []}
        if conds.get("QuotaReserved") == "True" and conds.get("Finished") != "True":
            total += sum(int(a.get("resourceUsage", {}).get(GPU, 0)) for a in (st.get("admission") or {}).get("podSetAssignments") or [])
    return total


def _placed(core) -> int:
    """GPUs requested by the pods bound to a node and not done."""
    pods = core.list_pod_for_all_namespaces(field_selector="status.phase!=Succeeded,status.phase!=Failed").items
    return sum(int((c.resources.requests or {}).get(GPU, 0)) for p in pods if p.spec.node_name for c in p.spec.containers)


def watch(seconds: float) -> None:
    core, crd = client.CoreV1Api(), client.CustomObjectsApi()
    capacity = sum(int((n.status.allocatable or {}).get(GPU, 0)) for n in core.list_node().items)
    seen = {"capacity": capacity, "samples": 0, "peak_admitted": 0, "peak_placed": 0, "over": [], "started": time.time()}
    stop, end = OUT / "capacity.stop", time.monotonic() + seconds
    while not stop.exists() and time.monotonic() < end:
        admitted, placed = _admitted(crd), _placed(core)
        seen["samples"] += 1
        seen["peak_admitted"], seen["peak_placed"] = max(seen["peak_admitted"], admitted), max(seen["peak_placed"], placed)
        if max(admitted, placed) > capacity:
            seen["over"].append({"t": round(time.time() - seen["started"], 1), "admitted": admitted, "placed": placed})
        seen["seconds"] = round(time.time() - seen["started"], 1)
        (OUT / "capacity.tmp").write_text(json.dumps(seen))
        (OUT / "capacity.tmp").replace(OUT / "capacity.json")
        time.sleep(0.5)


def shares(timeout: float, targets: dict[str, int]) -> None:
    start, held, got = time.monotonic(), None, {}
    while True:
        got = {u: _usage(f"user-{u}")[0] for u in targets}
        if all(abs(got[u] - t) <= 1 for u, t in targets.items()):
            held = held or time.monotonic()
            if time.monotonic() - held >= 5:
                print(f"shares reached in {held - start:.0f}s and held 5s: " + " ".join(f"{u}={g}" for u, g in got.items()))
                return
        else:
            held = None
        if time.monotonic() - start > timeout:
            sys.exit(f"shares not reached in {timeout:.0f}s: {got}, wanted {targets}")
        time.sleep(0.5)


def preempted(ns: str, timeout: float) -> None:
    crd, start = client.CustomObjectsApi(), time.monotonic()
    while True:
        for wl in crd.list_namespaced_custom_object(*KUEUE, ns, "workloads")["items"]:
            conds = {c["type"]: c for c in (wl.get("status") or {}).get("conditions") or []}
            if conds.get("Preempted", {}).get("status") == "True" and conds.get("QuotaReserved", {}).get("status") == "False":
                print(f"{ns}/{wl['metadata']['name']} preempted ({conds['Preempted'].get('reason')}) and queued again "
                      f"in {time.monotonic() - start:.0f}s: {conds['QuotaReserved'].get('message', '')[:160]}")
                return
        if time.monotonic() - start > timeout:
            sys.exit(f"no Workload of {ns} preempted and queued again in {timeout:.0f}s")
        time.sleep(0.5)


def withdraw(ns: str) -> None:
    crd = client.CustomObjectsApi()
    jobs = crd.list_namespaced_custom_object("kubeflow.org", "v1", ns, "pytorchjobs")["items"]
    waiting = [j["metadata"]["name"] for j in jobs if (j["spec"].get("runPolicy") or {}).get("suspend")]
    for name in waiting:
        crd.delete_namespaced_custom_object("kubeflow.org", "v1", ns, "pytorchjobs", name)
    print(f"withdrew {len(waiting)} waiting of {len(jobs)}: {', '.join(waiting)}")


def capacity() -> None:
    (OUT / "capacity.stop").touch()
    time.sleep(1.5)  # the watcher's last sample
    seen = json.loads((OUT / "capacity.json").read_text())
    assert seen["samples"] >= seen["seconds"] / 2, f"the watcher sampled too rarely to tell: {seen}"
    assert not seen["over"], f"more GPUs admitted or placed than the nodes have: {seen['over'][:5]}"
    print(f"never over capacity: peak admitted {seen['peak_admitted']}, placed {seen['peak_placed']} of {seen['capacity']} GPUs "
          f"over {seen['samples']} samples in {seen['seconds']:.0f}s")


def main() -> None:
    config.load_kube_config()
    cmd, *args = sys.argv[1:]
    if cmd == "watch":
        watch(float(args[0]))
    elif cmd == "shares":
        shares(float(args[0]), {u: int(g) for u, g in (a.split("=") for a in args[1:])})
    elif cmd == "preempted":
        preempted(args[0], float(args[1]))
    elif cmd == "withdraw":
        withdraw(args[0])
    else:
        capacity()


if __name__ == "__main__":
    main()
