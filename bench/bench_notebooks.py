#!/usr/bin/env python3
"""Notebooks on kind: seconds from the login click to a usable JupyterLab in a real browser (headless Debian
Chromium), with the user's server stopped (cold: the pod is created and the server starts; the image is on
the node since `up`) and running (warm); the memory of the hub and its proxy. Baseline, measured in the same
run: a bare pod of the same image in the same namespace going Running (what Kubernetes alone costs).
JSON to bench/results/notebooks.json; targets: warm <= 30 s, hub + proxy <= 300 MiB.

    python -m bench.bench_notebooks                  # its own cluster (bench-notebooks), deleted after
    python -m bench.bench_notebooks --cluster NAME   # a cluster `up` made with the notebooks component
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "e2e" / "notebooks")]

from bench.common import write  # noqa: E402

COMPONENTS = ("platform-base", "user-profiles", "network-policy", "notebooks")


#: a container's resident (anonymous) memory from its cgroup: `anon` (cgroup v2) or `total_rss` (v1)
RSS = ("import os\nfor p, k in (('/sys/fs/cgroup/memory.stat', 'anon'), ('/sys/fs/cgroup/memory/memory.stat', 'total_rss')):\n"
       "    if os.path.exists(p):\n        print(dict(l.split() for l in open(p))[k])\n        break\n")


def memory_mib(core, namespace: str, selector: str) -> float:
    """Resident memory of the pods' containers as their cgroups count it."""
    from kubernetes.stream import stream

    total = 0
    for pod in core.list_namespaced_pod(namespace, label_selector=selector).items:
        out = stream(core.connect_get_namespaced_pod_exec, pod.metadata.name, namespace, command=["python3", "-c", RSS],
                     stderr=True, stdout=True, stdin=False, tty=False)
        total += int(out.strip())
    return round(total / 2**20, 1)


def bare_pod_seconds(core, image: str) -> float:
    name = f"bench-bare-{int(time.time())}"
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {
        "restartPolicy": "Never", "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "c", "image": image, "imagePullPolicy": "IfNotPresent", "command": ["sleep", "60"],
                        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}]}}
    t0 = time.monotonic()
    core.create_namespaced_pod("user-alice", body)
    try:
        while core.read_namespaced_pod(name, "user-alice").status.phase != "Running":
            time.sleep(0.2)
        return time.monotonic() - t0
    finally:
        core.delete_namespaced_pod(name, "user-alice", grace_period_seconds=0)


def measure(cluster: str) -> list[dict]:
    import browser
    import hub
    from kubernetes import client

    from appliance import orchestrator
    from appliance.users import kubeconfig

    kube = orchestrator.cluster_kube(cluster)
    core = client.CoreV1Api(kube.api)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["E2E_ARTIFACTS"] = tmp
        hub.URL_FILE = Path(tmp, "hub-url")
        os.environ["KUBECONFIG"] = kube.kubeconfig
        hub.cmd_url(None)
        os.environ["KUBECONFIG"] = kubeconfig(cluster, "alice")["kubeconfig"]
        session = hub.login("alice", hub.password("alice"))
        hub.stop(session, "alice")
        cold, warm = browser.main("alice", ""), browser.main("alice", "")
        image = core.read_namespaced_pod("jupyter-alice", "user-alice").spec.containers[0].image
        hub.stop(session, "alice")
    base = bare_pod_seconds(core, image)
    return [
        {"metric": "login to JupyterLab, server stopped (cold)", "value": round(cold, 1), "unit": "s",
         "baseline": round(base, 1), "ratio": round(cold / base, 1)},
        {"metric": "login to JupyterLab, server running (warm)", "value": round(warm, 1), "unit": "s", "target": "<= 30"},
        {"metric": "bare pod of the notebook image Running (baseline)", "value": round(base, 1), "unit": "s"},
        {"metric": "hub + proxy resident memory (cgroup)", "value": memory_mib(core, "notebooks", "app in (hub, proxy)"), "unit": "MiB", "target": "<= 300"},
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cluster", help="measure this cluster instead of making one")
    a = p.parse_args()
    if a.cluster:
        write("notebooks", measure(a.cluster))
        return
    from tests.integration.clusters import cluster

    with cluster("ci", "kind", ["cluster.name=bench-notebooks"], COMPONENTS) as (profile, _):
        write("notebooks", measure(profile.cluster.name))


if __name__ == "__main__":
    main()
