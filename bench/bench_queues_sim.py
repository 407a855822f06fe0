#!/usr/bin/env python3
"""Kueue at DGX-pod scale on the simulator: J Jobs of P one-GPU pods on N DGX H100 nodes, more than fit,
submitted at once, without and with Kueue in the same run; JSON to bench/results/queues-sim.json.

    python -m bench.bench_queues_sim [--nodes 1000] [--jobs 1250] [--pods-per-job 8]

Without Kueue (namespace `bench-free`, no user's: Kueue leaves it alone) every Job makes its pods at once, the
scheduler places what fits and the rest pend as pods; with Kueue (alice's namespace, her queue holding every
GPU) the Jobs over capacity wait suspended, without pods. For each: seconds from the first Job created until
every GPU is held by a running pod; with Kueue also the admission latency (Workload created -> quota reserved,
mean and p95), the Workloads left waiting, and Kueue's memory (PSS) and CPU seconds over its run. Ratio: with
Kueue / without (the same scheduling work, plus queueing).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import write  # noqa: E402

COMPONENTS = ("platform-base", "user-profiles", "training-operator", "queues")
KUEUE = ("kueue.x-k8s.io", "v1beta2")
FREE, QUEUED = "bench-free", "user-alice"
GPU = "NVIDIA-H100-80GB-HBM3"


def _job(name: str, ns: str, pods: int) -> dict:
    pod = {"metadata": {"annotations": {"appliance.dev/sim-keep-running": "true"}},
           "spec": {"restartPolicy": "Never", "nodeSelector": {"nvidia.com/gpu.product": GPU},
                    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                    "containers": [{"name": "train", "image": "appliance.local/trainer:stub",
                                    "resources": {"requests": {"nvidia.com/gpu": "1", "cpu": "1", "memory": "1Gi"},
                                                  "limits": {"nvidia.com/gpu": "1"}}}]}}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": ns, "labels": {"bench": "queues"}},
            "spec": {"parallelism": pods, "completions": pods, "backoffLimit": 0, "template": pod}}


def _running_gpus(core, ns: str) -> int:
    """GPUs held by running pods of `ns` (one each)."""
    resp = core.list_namespaced_pod(ns, field_selector="status.phase=Running", resource_version="0", _preload_content=False)
    try:
        return sum(1 for p in json.loads(resp.data)["items"] if p["spec"].get("nodeName"))
    finally:
        resp.release_conn()


def fill(core, batch, ns: str, jobs: int, pods: int, gpus: int, timeout: float) -> float:
    """Create the Jobs, then wait until `gpus` GPUs are held by running pods; seconds from the first create."""
    t0 = time.monotonic()
    for i in range(jobs):
        batch.create_namespaced_job(ns, _job(f"q-{i}", ns, pods))
    while _running_gpus(core, ns) < gpus:
        if time.monotonic() - t0 > timeout:
            raise SystemExit(f"{ns}: {_running_gpus(core, ns)} of {gpus} GPUs running after {timeout:.0f}s")
        time.sleep(0.5)
    return time.monotonic() - t0


def clear(core, batch, ns: str, timeout: float) -> None:
    """Delete the benchmark's Jobs of `ns` and wait until their pods are gone (their GPUs free)."""
    batch.delete_collection_namespaced_job(ns, label_selector="bench=queues", propagation_policy="Background")
    deadline = time.monotonic() + timeout
    while core.list_namespaced_pod(ns, label_selector="batch.kubernetes.io/job-name", limit=1).items:
        if time.monotonic() > deadline:
            raise SystemExit(f"{ns}: pods left after {timeout:.0f}s")
        time.sleep(1)


def _t(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def admission(crd, ns: str) -> tuple[list[float], int]:
    """(seconds from each admitted Workload's creation to its quota reserved, Workloads still waiting)."""
    lat, waiting = [], 0
    for w in crd.list_namespaced_custom_object(*KUEUE, ns, "workloads")["items"]:
        conds = {c["type"]: c for c in (w.get("status") or {}).get("conditions") or []}
        if conds.get("QuotaReserved", {}).get("status") == "True":
            lat.append(_t(conds["QuotaReserved"]["lastTransitionTime"]) - _t(w["metadata"]["creationTimestamp"]))
        else:
            waiting += 1
    return sorted(lat), waiting


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=1000, help="DGX H100 nodes (8 GPUs each)")
    ap.add_argument("--jobs", type=int, default=1250, help="Jobs submitted at once (more GPUs than the nodes hold)")
    ap.add_argument("--pods-per-job", type=int, default=8, help="one-GPU pods per Job")
    ap.add_argument("--timeout", type=float, default=1800)
    a = ap.parse_args(argv)
    from kubernetes import client, config

    from appliance.runtime import process
    from tests.integration.clusters import cluster

    gpus, asked = 8 * a.nodes, a.jobs * a.pods_per_job
    if asked <= gpus:
        ap.error(f"{a.jobs} jobs x {a.pods_per_job} GPUs fit in {gpus}: ask for more than the nodes hold")
    pods = asked + 10
    sets = ["cluster.name=bench-queues-sim", f"cluster.node_classes.0.count={a.nodes}", "cluster.node_classes.1.count=1",
            "components.user-profiles.options.users=[alice]", f"components.user-profiles.options.pod_quota={pods}",
            *(f"components.user-profiles.options.{k}_{level}={v}" for k, v in (("gpu", gpus), ("cpu", f'"{pods}"'), ("memory", f"{pods}Gi"))
              for level in ("quota", "ceiling"))]
    with cluster("sim-dgx-pod", "sim", sets, COMPONENTS) as (_, result):
        api = config.new_client_from_config(result["kubeconfig"])
        core, batch, crd = client.CoreV1Api(api), client.BatchV1Api(api), client.CustomObjectsApi(api)
        core.create_namespace({"metadata": {"name": FREE}})
        free = fill(core, batch, FREE, a.jobs, a.pods_per_job, gpus, a.timeout)
        pending = len(core.list_namespaced_pod(FREE, field_selector="status.phase=Pending").items)
        clear(core, batch, FREE, a.timeout)
        kueue = psutil.Process(process.HostProcess(process.controllers_dir(result["kubeconfig"]), "kueue-controller-manager").load().pid)
        kueue = next((c for c in kueue.children(recursive=True) if "kueue" in " ".join(c.cmdline())), kueue)  # the program, not its supervisor
        cpu0 = sum(kueue.cpu_times()[:2])
        queued = fill(core, batch, QUEUED, a.jobs, a.pods_per_job, gpus, a.timeout)
        cpu = sum(kueue.cpu_times()[:2]) - cpu0
        lat, waiting = admission(crd, QUEUED)
        pss = kueue.memory_full_info().pss / 2**20
        size = f"{a.jobs} Jobs x {a.pods_per_job} one-GPU pods on {a.nodes} DGX nodes ({gpus} GPUs)"
        write("queues-sim", [
            {"metric": f"{size}: every GPU running, no Kueue (baseline)", "value": round(free, 1), "unit": "s"},
            {"metric": "pods left pending without Kueue", "value": pending, "unit": "pods"},
            {"metric": f"{size}: every GPU running, through Kueue", "value": round(queued, 1), "unit": "s",
             "baseline": round(free, 1), "ratio": round(queued / free, 2)},
            {"metric": "Workloads waiting in the queue, without pods", "value": waiting, "unit": "jobs"},
            {"metric": "admission latency (Workload created -> quota reserved; the API's 1 s stamps), mean", "value": round(sum(lat) / len(lat), 2), "unit": "s"},
            {"metric": "admission latency, p95", "value": round(lat[int(0.95 * (len(lat) - 1))], 2), "unit": "s"},
            {"metric": "Kueue CPU over its run", "value": round(cpu, 1), "unit": "s"},
            {"metric": "Kueue memory (PSS) at the end", "value": round(pss), "unit": "MiB", "target": 512},
        ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
