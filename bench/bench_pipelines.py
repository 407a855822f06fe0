#!/usr/bin/env python3
"""Pipelines benchmark on kind: the 5-step train-serve pipeline from submit to Succeeded (warm: images
loaded), the engine's overhead per step (a chain of 5 trivial steps: each step's wall time in the workflow
minus its main container's run time, and the gap from one step's end to the next one's start), and the
working-set memory of the controller and the artifact store (the kubelet's summary API).

    python -m bench.bench_pipelines [--kubeconfig K]   # K: reuse a cluster with pipelines; default: up one

Target: ≤ 3 s of engine overhead per step. Writes bench/results/pipelines-kind.json."""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "e2e" / "pipelines"))

from bench.common import write  # noqa: E402

COMPONENTS = ("platform-base", "user-profiles", "training-operator", "kserve", "network-policy", "pipelines")
NS = "user-alice"


def _t(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def chain(n: int = 5) -> dict:
    """n sequential steps that do nothing; pods kept a while for their containers' times."""
    from hera.workflows import Steps, Workflow, script

    @script(image="appliance.local/trainer:stub", command=["python3"])
    def noop():
        pass

    with Workflow(generate_name="bench-chain-", namespace=NS, entrypoint="main") as w:
        with Steps(name="main"):
            for i in range(n):
                noop(name=f"s{i}")
    body = w.to_dict()
    body["spec"]["podGC"] = {"strategy": "OnWorkflowCompletion", "deleteDelayDuration": "300s"}
    return body


def overhead(kube, wf: dict) -> tuple[float, float]:
    """(mean step wall minus main-container run time, mean gap between consecutive steps) in seconds."""
    from kubernetes import client

    core = client.CoreV1Api(kube.api)
    pods = sorted((n for n in wf["status"]["nodes"].values() if n["type"] == "Pod"), key=lambda n: n["startedAt"])
    extra = []
    for n in pods:
        pod = next(p for p in core.list_namespaced_pod(NS, label_selector=f"workflows.argoproj.io/workflow={wf['metadata']['name']}").items
                   if p.metadata.annotations.get("workflows.argoproj.io/node-id") == n["id"])
        main = next(c.state.terminated for c in pod.status.container_statuses if c.name == "main")
        extra.append((_t(n["finishedAt"]) - _t(n["startedAt"])).total_seconds() - (main.finished_at - main.started_at).total_seconds())
    gaps = [(_t(b["startedAt"]) - _t(a["finishedAt"])).total_seconds() for a, b in zip(pods, pods[1:], strict=False)]
    return sum(extra) / len(extra), sum(gaps) / max(1, len(gaps))


def working_set_mib(kube, namespace: str) -> dict[str, float]:
    """Pod name prefix → working-set MiB, from every node's kubelet summary."""
    import json

    from kubernetes import client

    core = client.CoreV1Api(kube.api)
    out: dict[str, float] = {}
    for node in core.list_node().items:
        raw = core.connect_get_node_proxy_with_path(node.metadata.name, "stats/summary", _preload_content=False).data
        for pod in json.loads(raw)["pods"]:
            if pod["podRef"]["namespace"] == namespace:
                name = pod["podRef"]["name"].rsplit("-", 2)[0]
                out[name] = round(pod.get("memory", {}).get("workingSetBytes", 0) / 2**20, 1)
    return out


def run(kubeconfig: str) -> list[dict]:
    import submit
    import train_serve

    from appliance.kube import Kube

    os.environ["KUBECONFIG"] = kubeconfig
    kube = Kube(kubeconfig)
    rows = []
    t0 = time.monotonic()
    wf = submit.wait(submit.submit(train_serve.pipeline(NS), NS, "bench-train-serve"), 900, poll=1)
    rows.append({"metric": f"train-serve pipeline submit -> {wf['status']['phase']} (5 steps + volume)",
                 "value": round(time.monotonic() - t0, 1), "unit": "s"})
    t0 = time.monotonic()
    wf = submit.wait(submit.submit(chain(), NS), 300, poll=1)
    took = time.monotonic() - t0
    per_step, gap = overhead(kube, wf)
    rows += [{"metric": f"5 no-op steps submit -> {wf['status']['phase']}", "value": round(took, 1), "unit": "s"},
             {"metric": "engine overhead per step (step wall - container run)", "value": round(per_step, 2), "unit": "s", "target": "<= 3"},
             {"metric": "gap between consecutive steps", "value": round(gap, 2), "unit": "s"}]
    for name, mib in sorted(working_set_mib(kube, "argo").items()):
        rows.append({"metric": f"working set: {name}", "value": mib, "unit": "MiB"})
    objs = submit.api()
    for name in ("bench-train-serve", wf["metadata"]["name"]):
        objs.delete_namespaced_custom_object(submit.GROUP, submit.VERSION, NS, submit.PLURAL, name)
    kube.delete([{"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "metadata": {"name": "pipe-stub", "namespace": NS}},
                 {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "pipe-stub-model", "namespace": NS}}])
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kubeconfig", help="a cluster that has the pipelines stack (default: bring one up, take it down after)")
    a = ap.parse_args(argv)
    if a.kubeconfig:
        write("pipelines-kind", run(a.kubeconfig))
        return 0
    from appliance import orchestrator, paths, profiles, report

    loaded = profiles.load("ci", ["cluster.name=bench-pipelines"], "kind")
    profile = loaded.profile.model_copy(update={"components": {k: v for k, v in loaded.profile.components.items() if k in COMPONENTS}})
    try:
        t0 = time.monotonic()
        result = orchestrator.up(profile, "kind", report.make())
        rows = [{"metric": "up (ci profile, pipelines stack)", "value": round(time.monotonic() - t0, 1), "unit": "s"}]
        write("pipelines-kind", rows + run(result["kubeconfig"]))
    finally:
        if paths.state_dir(profile.cluster.name).exists():
            orchestrator.down(profile.cluster.name, report.make())
    return 0


if __name__ == "__main__":
    sys.exit(main())
