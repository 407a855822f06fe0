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

Then, on the same cluster and Kueue, Kueue's own scheduler performance test (its module's
test/performance/scheduler runner, built here from the pinned module): its baseline mix, written here as data
(MIX: 5 cohorts x 6 ClusterQueues, each fed 350 small, 100 medium and 50 large Workloads, 15,000 in all, made
directly and finished by the runner after their run time), scaled by --mix (0 skips it). Reported against the
bounds its CI holds the mix to (BOUNDS): wall time, mean time to admission per class, ClusterQueues' usage.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
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
#: Kueue's baseline mix: cohorts x ClusterQueues (nominal and borrowing CPU), and per ClusterQueue the sets of
#: Workloads (class, count, ms between creations, run ms, priority, CPUs)
MIX = {"cohorts": 5, "queues": 6, "nominal": 20, "borrowing": 100,
       "sets": [("small", 350, 100, 200, 50, 1), ("medium", 100, 500, 500, 100, 5), ("large", 50, 1200, 1000, 200, 20)]}
#: the bounds Kueue's CI holds that mix to (its rangespec): wall, mean time to admission per class, usage
BOUNDS = {"wall_s": 425, "admission_s": {"large": 23, "medium": 90, "small": 260}, "usage_pct": 50}


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


def mix_config(scale: float) -> dict:
    """The runner's generator configuration of MIX, each set's count scaled (at least 1)."""
    sets = [{"count": max(1, round(n * scale)), "creationIntervalMs": every,
             "workloads": [{"className": cls, "runtimeMs": run, "priority": prio, "request": str(cpus)}]}
            for cls, n, every, run, prio, cpus in MIX["sets"]]
    return {"cohorts": [{"className": "cohort", "count": MIX["cohorts"], "queuesSets": [
        {"className": "cq", "count": MIX["queues"], "nominalQuota": str(MIX["nominal"]), "borrowingLimit": str(MIX["borrowing"]),
         "reclaimWithinCohort": "Any", "withinClusterQueue": "LowerPriority", "workloadsSets": sets}]}]}


def baseline_mix(kubeconfig: str, scale: float, kueue: psutil.Process, timeout: float) -> list[dict]:
    """Kueue's scheduler performance runner with MIX scaled by `scale` on the cluster; the results' rows."""
    import yaml

    from appliance.components import CATALOG
    from appliance.images import builds

    go = CATALOG["queues"].decl.images["kueue"].go
    runner = builds.go_binary(go.module, go.version, "test/performance/scheduler/runner", "kueue-perf-runner", report=print)
    cfg = mix_config(scale)
    total = MIX["cohorts"] * MIX["queues"] * sum(s["count"] for s in cfg["cohorts"][0]["queuesSets"][0]["workloadsSets"])
    with tempfile.TemporaryDirectory(prefix="kueue-mix-") as out:
        Path(out, "generator.yaml").write_text(yaml.safe_dump(cfg))
        cpu0, t0 = sum(kueue.cpu_times()[:2]), time.monotonic()
        r = subprocess.run([str(runner), f"--generatorConfig={out}/generator.yaml", f"--o={out}", "--qps=1000", "--burst=2000",
                            f"--timeout={int(timeout)}s"], env={**os.environ, "KUBECONFIG": kubeconfig}, capture_output=True, text=True,
                           timeout=timeout + 120)
        wall, cpu = time.monotonic() - t0, sum(kueue.cpu_times()[:2]) - cpu0
        if r.returncode != 0 or not Path(out, "summary.yaml").exists():
            raise SystemExit(f"Kueue's performance runner failed ({r.returncode}): {r.stderr[-2000:]}")
        summary = yaml.safe_load(Path(out, "summary.yaml").read_text())
    what = f"Kueue's baseline mix x{scale:g} ({MIX['cohorts']} cohorts x {MIX['queues']} ClusterQueues, {total:,} Workloads)"
    rows = [{"metric": f"{what}: wall, created to all finished", "value": round(wall, 1), "unit": "s", "target": BOUNDS["wall_s"]}]
    ours = {cls for cls, *_ in MIX["sets"]}  # the runner counts every Workload it sees: the users' queues' too
    for cls, s in sorted((summary.get("workloadClasses") or {}).items()):
        if cls not in ours:
            continue
        rows.append({"metric": f"{what}: {cls} Workloads ({s['count']}), mean time to admission", "unit": "s",
                     "value": round(s["averageTimeToAdmissionMs"] / 1000, 1), "target": BOUNDS["admission_s"].get(cls)})
    for cls, s in sorted((summary.get("clusterQueueClasses") or {}).items()):
        if cls != "cq":
            continue
        elapsed = (_t(s["lastEventTime"]) - _t(s["firstEventTime"])) * 1000
        usage = 100 * s["cpuUsed"] / (s["nominalQuota"] * elapsed) if s["nominalQuota"] and elapsed else 0.0
        rows.append({"metric": f"{what}: ClusterQueues '{cls}' usage of their nominal quota", "value": round(usage, 1), "unit": "%",
                     "target": BOUNDS["usage_pct"]})
    rows.append({"metric": f"{what}: Kueue CPU", "value": round(cpu, 1), "unit": "s"})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=1000, help="DGX H100 nodes (8 GPUs each)")
    ap.add_argument("--jobs", type=int, default=1250, help="Jobs submitted at once (more GPUs than the nodes hold)")
    ap.add_argument("--pods-per-job", type=int, default=8, help="one-GPU pods per Job")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--mix", type=float, default=1.0, help="scale of Kueue's baseline mix (1: its 15,000 Workloads; 0: skip it)")
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
        clear(core, batch, QUEUED, a.timeout)
        mix = baseline_mix(result["kubeconfig"], a.mix, kueue, a.timeout) if a.mix else []
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
            *mix,
        ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
