#!/usr/bin/env python3
"""Katib at DGX scale on the simulator: an experiment of N 8-GPU trials, P at a time, on a simulated pod of
DGX H100 nodes, against the same N PyTorchJobs submitted P at a time without Katib (baseline, same run);
JSON to bench/results/tuning-sim.json.

    python -m bench.bench_tuning_sim [--nodes 16] [--trials 64] [--parallel 16] [--run-time 5s]

Ratio = the experiment's wall time / the baseline's: what Katib's loop (suggestions, trial controller,
metrics reported by the simulator, db-manager) adds to the same scheduling work. Overhead per trial = its
wall time (created -> completed) minus its job's (created -> succeeded), mean. The memory of Katib's and
PostgreSQL's host processes (proportional set size, without their supervisors) is read at the end.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import write  # noqa: E402

COMPONENTS = ("platform-base", "user-profiles", "training-operator", "database", "tuning")
KATIB = ("katib-controller", "katib-db-manager", "katib-suggestion", "katib-sim-results", "postgres")
NS = "user-alice"
GPU = "NVIDIA-H100-80GB-HBM3"


def _job_spec(run_time: str, args: list[str]) -> dict:
    pod = {"metadata": {"annotations": {"appliance.dev/sim-run-time": run_time}},
           "spec": {"nodeSelector": {"nvidia.com/gpu.product": GPU},
                    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                    "containers": [{"name": "pytorch", "image": "appliance.local/trainer:stub", "command": ["python3", "/app/stub_train.py"],
                                    "args": args, "resources": {"requests": {"nvidia.com/gpu": "8", "cpu": "16", "memory": "64Gi"},
                                                                "limits": {"nvidia.com/gpu": "8"}}}]}}
    return {"runPolicy": {"cleanPodPolicy": "None", "backoffLimit": 0},
            "pytorchReplicaSpecs": {"Master": {"replicas": 1, "restartPolicy": "Never", "template": pod}}}


def _done(job: dict) -> bool:
    return any(c["type"] in ("Succeeded", "Failed") and c["status"] == "True" for c in (job.get("status") or {}).get("conditions") or [])


def _t(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def baseline(crd, n: int, parallel: int, run_time: str) -> float:
    """N PyTorchJobs, at most `parallel` unfinished at once; wall seconds until the last succeeded."""
    t0, made = time.monotonic(), 0
    while True:
        jobs = crd.list_namespaced_custom_object("kubeflow.org", "v1", NS, "pytorchjobs", label_selector="bench=baseline")["items"]
        running = [j for j in jobs if not _done(j)]
        if made == n and not running:
            break
        for _ in range(min(parallel - len(running), n - made)):
            crd.create_namespaced_custom_object("kubeflow.org", "v1", NS, "pytorchjobs", {
                "apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob",
                "metadata": {"name": f"base-{made}", "namespace": NS, "labels": {"bench": "baseline"}},
                "spec": _job_spec(run_time, ["--lr=0.1", "--epochs=10"])})
            made += 1
        time.sleep(0.5)
    wall = time.monotonic() - t0
    assert all(any(c["type"] == "Succeeded" and c["status"] == "True" for c in j["status"]["conditions"]) for j in jobs)
    return wall


def experiment(crd, n: int, parallel: int, run_time: str) -> tuple[float, float]:
    """(wall seconds, mean Katib overhead per trial in seconds)."""
    spec = _job_spec(run_time, ["--lr=${trialParameters.lr}", "--epochs=${trialParameters.epochs}"])
    t0 = time.monotonic()
    crd.create_namespaced_custom_object("kubeflow.org", "v1beta1", NS, "experiments", {
        "apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment",
        "metadata": {"name": "bench", "namespace": NS,
                     "annotations": {"tuning.appliance.dev/simulated-metrics": '{"loss": "(log10(lr) + 1.3) ** 2 + 6 / epochs"}'}},
        "spec": {"objective": {"type": "minimize", "objectiveMetricName": "loss"}, "algorithm": {"algorithmName": "random"},
                 "parallelTrialCount": parallel, "maxTrialCount": n, "maxFailedTrialCount": 0,
                 "parameters": [{"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.005", "max": "0.4"}},
                                {"name": "epochs", "parameterType": "int", "feasibleSpace": {"min": "10", "max": "80"}}],
                 "metricsCollectorSpec": {"collector": {"kind": "StdOut"}},
                 "trialTemplate": {"primaryContainerName": "pytorch", "retain": True,
                                   "trialParameters": [{"name": "lr", "reference": "lr"}, {"name": "epochs", "reference": "epochs"}],
                                   "trialSpec": {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "spec": spec}}}})
    while True:
        exp = crd.get_namespaced_custom_object("kubeflow.org", "v1beta1", NS, "experiments", "bench")
        conds = {c["type"]: c["status"] for c in (exp.get("status") or {}).get("conditions") or []}
        if conds.get("Succeeded") == "True" or conds.get("Failed") == "True":
            break
        time.sleep(0.5)
    wall = time.monotonic() - t0
    assert conds.get("Succeeded") == "True" and exp["status"].get("trialsSucceeded") == n, exp["status"]
    overheads = []
    for t in crd.list_namespaced_custom_object("kubeflow.org", "v1beta1", NS, "trials", label_selector="katib.kubeflow.org/experiment=bench")["items"]:
        job = crd.get_namespaced_custom_object("kubeflow.org", "v1", NS, "pytorchjobs", t["metadata"]["name"])
        ok = next(c for c in job["status"]["conditions"] if c["type"] == "Succeeded")
        trial_s = _t(t["status"]["completionTime"]) - _t(t["metadata"]["creationTimestamp"])
        overheads.append(trial_s - (_t(ok["lastTransitionTime"]) - _t(job["metadata"]["creationTimestamp"])))
    return wall, sum(overheads) / len(overheads)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=16)
    ap.add_argument("--trials", type=int, default=64)
    ap.add_argument("--parallel", type=int, default=16)
    ap.add_argument("--run-time", default="5s")
    ap.add_argument("--keep", action="store_true", help="leave the cluster up")
    a = ap.parse_args(argv)
    from kubernetes import client, config

    from appliance.runtime import process
    from tests.integration.clusters import cluster

    sets = ["cluster.name=bench-tuning-sim", f"cluster.node_classes.0.count={a.nodes}",
            f"components.user-profiles.options.gpu_quota={8 * a.nodes}"]
    with cluster("sim-dgx-pod", "sim", sets, COMPONENTS) as (_, result):
        crd = client.CustomObjectsApi(config.new_client_from_config(result["kubeconfig"]))
        base = baseline(crd, a.trials, a.parallel, a.run_time)
        wall, overhead = experiment(crd, a.trials, a.parallel, a.run_time)
        folder = process.controllers_dir(result["kubeconfig"])
        rss = 0.0
        for name in KATIB:
            rec = process.HostProcess(folder, name).load()
            # the program and its children (PostgreSQL's backends), not the supervisor; PSS: shared pages counted once
            rss += sum(q.memory_full_info().pss for q in psutil.Process(rec.pid).children(recursive=True)) / 2**20
        write("tuning-sim", [
            {"metric": f"{a.trials} PyTorchJobs of 8 GPUs, {a.parallel} at a time, {a.nodes} DGX nodes (baseline)", "value": round(base, 1), "unit": "s"},
            {"metric": f"Katib experiment, the same {a.trials} trials", "value": round(wall, 1), "unit": "s",
             "baseline": round(base, 1), "ratio": round(wall / base, 2)},
            {"metric": "Katib overhead per trial (mean)", "value": round(overhead, 2), "unit": "s"},
            {"metric": "Katib + PostgreSQL host processes (PSS)", "value": round(rss), "unit": "MiB"},
        ])
        if a.keep:
            input("cluster kept; press Enter to take it down ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
