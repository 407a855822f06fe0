#!/usr/bin/env python3
"""Katib + PostgreSQL on kind: tune-stub's experiment (6 two-rank PyTorchJob trials, 2 at a time) timed warm,
the controller's overhead per trial, and the memory Katib and its database use; JSON to bench/results/tuning.json.

    python -m bench.bench_tuning [--keep]

Overhead per trial = the trial's wall time (created -> completed) minus its PyTorchJob's run (started ->
completed). Memory: working sets (the nodes' CRI stats) of the controller, db-manager, PostgreSQL, the
experiment's suggestion pod and the trials' metrics collector sidecars, sampled every 2 s while the
experiment runs (max of the sum) and once it is done (the resident part: controller + db-manager + database).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import write  # noqa: E402

COMPONENTS = ("platform-base", "user-profiles", "training-operator", "database", "tuning")
KATIB = {("katib", "katib-controller"), ("katib", "katib-db-manager"), ("database", "postgres")}


def _experiment() -> dict:
    steps = yaml.safe_load((ROOT / "e2e/scenarios/tune-stub.yaml").read_text())["steps"]
    return steps[0]["apply"]["objects"][0]


def _memory(nodes: list[str]) -> dict[tuple[str, str], float]:
    """(namespace, container) -> MiB summed over pods, from every node's CRI stats."""
    out: dict[tuple[str, str], float] = {}
    for node in nodes:
        stats = json.loads(subprocess.run(["docker", "exec", node, "crictl", "stats", "-o", "json"],
                                          capture_output=True, text=True, check=True).stdout)["stats"]
        for s in stats:
            if "memory" not in s:  # an exited container
                continue
            labels = s["attributes"]["labels"]
            key = (labels.get("io.kubernetes.pod.namespace", ""), labels.get("io.kubernetes.container.name", ""))
            out[key] = out.get(key, 0.0) + int(s["memory"]["workingSetBytes"]["value"]) / 2**20
    return out


def _katib_total(mem: dict[tuple[str, str], float]) -> float:
    """Katib's own pods plus, in users' namespaces, its suggestion pods and metrics collector sidecars."""
    return sum(v for (ns, c), v in mem.items() if (ns, c) in KATIB or (ns.startswith("user-") and c in ("suggestion", "metrics-logger-and-collector")))


def _ts(s: str) -> float:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def run(keep: bool) -> list[dict]:
    from kubernetes import client

    from appliance import orchestrator, profiles, report
    from appliance.kube import Kube

    loaded = profiles.load("laptop", ["cluster.name=bench-tuning", "components.database={}", "components.tuning={}"], "kind")
    profile = loaded.profile.model_copy(update={"components": {k: v for k, v in loaded.profile.components.items() if k in COMPONENTS}})
    try:
        result = orchestrator.up(profile, "kind", report.make())
        kube = Kube(result["kubeconfig"])
        crd = client.CustomObjectsApi(kube.api)
        nodes = [n.metadata.name for n in client.CoreV1Api(kube.api).list_node().items]
        exp = _experiment()
        # a name of its own: Katib would hand a just-deleted namesake's suggestion service to a new experiment
        exp["metadata"]["name"] = name = f"bench-{int(time.time())}"
        ns = exp["metadata"]["namespace"]
        exp["spec"]["trialTemplate"]["retain"] = True  # keep the trials' jobs: their run times are read after
        t0, peak = time.monotonic(), 0.0
        crd.create_namespaced_custom_object("kubeflow.org", "v1beta1", ns, "experiments", exp)
        while True:
            peak = max(peak, _katib_total(_memory(nodes)))
            conds = {c["type"]: c["status"] for c in (crd.get_namespaced_custom_object("kubeflow.org", "v1beta1", ns, "experiments", name)
                                                       .get("status") or {}).get("conditions") or []}
            if conds.get("Succeeded") == "True" or conds.get("Failed") == "True":
                break
            if time.monotonic() - t0 > 900:
                raise SystemExit("the experiment did not finish in 15 min")
            time.sleep(2)
        wall = time.monotonic() - t0
        trials = crd.list_namespaced_custom_object("kubeflow.org", "v1beta1", ns, "trials", label_selector=f"katib.kubeflow.org/experiment={name}")["items"]
        overhead = []
        for t in trials:
            job = crd.get_namespaced_custom_object("kubeflow.org", "v1", ns, "pytorchjobs", t["metadata"]["name"])["status"]
            trial_s = _ts(t["status"]["completionTime"]) - _ts(t["metadata"]["creationTimestamp"])
            overhead.append(trial_s - (_ts(job["completionTime"]) - _ts(job["startTime"])))
        time.sleep(10)  # the suggestion pod goes once the experiment is done
        idle = _katib_total(_memory(nodes))
        return [
            {"metric": f"tune-stub experiment ({len(trials)} trials, 2 at a time) {'Succeeded' if conds.get('Succeeded') == 'True' else 'FAILED'}",
             "value": round(wall, 1), "unit": "s"},
            {"metric": "controller overhead per trial (mean: trial wall - job run)", "value": round(sum(overhead) / len(overhead), 1), "unit": "s"},
            {"metric": "controller overhead per trial (max)", "value": round(max(overhead), 1), "unit": "s"},
            {"metric": "Katib + PostgreSQL memory while tuning (peak, with suggestion and collectors)", "value": round(peak), "unit": "MiB", "target": 250},
            {"metric": "Katib + PostgreSQL memory once done", "value": round(idle), "unit": "MiB", "target": 250},
        ]
    finally:
        if not keep:
            orchestrator.down(profile.cluster.name, report.make())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", action="store_true", help="leave the cluster up")
    write("tuning", run(ap.parse_args().keep))
    return 0


if __name__ == "__main__":
    sys.exit(main())
