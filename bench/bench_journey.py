#!/usr/bin/env python3
"""The journey on kind: wall time of the `journey` scenario (warm: images on the nodes, the cluster up), and
the stack's footprint while it runs, sampled every few seconds — pods, summed CPU and memory requests, and
resident memory (each pod's cgroup: memory.stat `anon` on cgroup v2, `total_rss` on v1, read on the kind
nodes) — of the stack (every namespace but the users') and, apart, of the users' workloads (peaks).
Targets for the stack: <= 3 GiB resident, <= 1.5 CPU requested (Kubeflow's own table: 4.4 CPU, 12.3 GiB).
JSON to bench/results/journey.json.

    python -m bench.bench_journey                    # its own cluster (bench-journey), deleted after
    python -m bench.bench_journey --cluster NAME     # a cluster `up` made with the ci profile's stack
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_stack import _cpu_m, _mem_mib  # noqa: E402
from bench.common import write  # noqa: E402

COMPONENTS = ("platform-base", "user-profiles", "training-operator", "kserve", "network-policy", "notebooks", "pipelines",
              "database", "tuning")
KUBERNETES = ("kube-system", "local-path-storage")
STACK_IN_KUBE_SYSTEM = ("kube-network-policies-",)   # the network-policy component's agents
#: each pod's cgroup memory.stat on a node: its path (holding the pod's uid) and its resident anonymous memory
CGROUPS = ("for f in $(find /sys/fs/cgroup -maxdepth 9 -name memory.stat -path '*pod*.slice/memory.stat'); do "
           "echo \"$f $(grep -E '^(total_rss|anon) ' $f | head -1)\"; done")


def resident_mib(nodes: list[str]) -> dict[str, float]:
    """Pod uid → resident MiB, from the pods' cgroups on each kind node."""
    out: dict[str, float] = {}
    for node in nodes:
        r = subprocess.run(["docker", "exec", node, "sh", "-c", CGROUPS], capture_output=True, text=True, timeout=60)
        for line in r.stdout.splitlines():
            m = re.search(r"pod([0-9a-f_]{32,36})\.slice/memory\.stat \S+ (\d+)$", line)
            if m:
                out[m.group(1).replace("_", "-")] = int(m.group(2)) / 2**20
    return out


def sample(kube, nodes: list[str]) -> dict[str, dict[str, float]]:
    """{"stack"|"kubernetes"|"users": {pods, cpu_m, memory_mib (requests), rss_mib}} now: the users' namespaces,
    Kubernetes' own (kube-system, the volume provisioner's) and the stack (the components' pods)."""
    from kubernetes import client

    rss = resident_mib(nodes)
    got = {k: {"pods": 0, "cpu_m": 0.0, "memory_mib": 0.0, "rss_mib": 0.0} for k in ("stack", "kubernetes", "users")}
    for p in client.CoreV1Api(kube.api).list_pod_for_all_namespaces().items:
        if p.status.phase not in ("Running", "Pending"):
            continue
        ns = p.metadata.namespace
        ours = not ns.startswith("user-") and (ns not in KUBERNETES or p.metadata.name.startswith(STACK_IN_KUBE_SYSTEM))
        g = got["stack" if ours else "users" if ns.startswith("user-") else "kubernetes"]
        g["pods"] += 1
        g["rss_mib"] += rss.get((p.metadata.annotations or {}).get("kubernetes.io/config.mirror", p.metadata.uid), 0.0)  # static pods: the kubelet's uid
        for c in p.spec.containers:
            req = (c.resources.requests or {}) if c.resources else {}
            g["cpu_m"] += _cpu_m(req.get("cpu", "0"))
            g["memory_mib"] += _mem_mib(req.get("memory", "0"))
    return got


def measure(kubeconfig: str, cluster: str) -> list[dict]:
    from appliance import e2e
    from appliance.kube import Kube

    kube = Kube(kubeconfig)
    nodes = [f"{cluster}-control-plane", f"{cluster}-worker"]
    peaks: dict[str, dict[str, float]] = {}
    done = threading.Event()

    def sampler():
        while not done.is_set():
            for group, values in sample(kube, nodes).items():
                peak = peaks.setdefault(group, dict.fromkeys(values, 0.0))
                for k, v in values.items():
                    peak[k] = max(peak[k], v)
            done.wait(5)

    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-journey-") as out:
        (r,) = e2e.run(kubeconfig, "kind", set(COMPONENTS), "journey", Path(out))
    seconds = time.monotonic() - t0
    done.set()
    thread.join()
    if not r.passed:
        raise SystemExit(f"journey failed: {[f'{s.name}: {s.message}' for s in r.steps if s.status == 'failed']}")
    stack, kubernetes, users = peaks["stack"], peaks["kubernetes"], peaks["users"]
    rows = [{"metric": "journey scenario, warm (kind)", "value": round(seconds, 1), "unit": "s"}]
    rows += [{"metric": f"step: {s.name}"[:60], "value": s.seconds, "unit": "s"} for s in r.steps]
    rows += [{"metric": "stack pods (peak)", "value": int(stack["pods"]), "unit": ""},
             {"metric": "stack CPU requested (peak)", "value": round(stack["cpu_m"]), "unit": "m", "target": 1500,
              "baseline": 4400, "ratio": round(stack["cpu_m"] / 4400, 2)},
             {"metric": "stack memory requested (peak)", "value": round(stack["memory_mib"]), "unit": "MiB",
              "baseline": round(12.3 * 1024), "ratio": round(stack["memory_mib"] / (12.3 * 1024), 2)},
             {"metric": "stack resident memory (peak)", "value": round(stack["rss_mib"]), "unit": "MiB", "target": 3072},
             {"metric": "Kubernetes' own resident memory (peak)", "value": round(kubernetes["rss_mib"]), "unit": "MiB"},
             {"metric": "users' pods (peak)", "value": int(users["pods"]), "unit": ""},
             {"metric": "users' CPU requested (peak)", "value": round(users["cpu_m"]), "unit": "m"},
             {"metric": "users' resident memory (peak)", "value": round(users["rss_mib"]), "unit": "MiB"}]
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cluster", help="an existing cluster (else bench-journey is made and deleted)")
    a = ap.parse_args()
    from appliance import orchestrator, paths, profiles, report

    if a.cluster:
        rows = measure(str(paths.state_dir(a.cluster) / "kubeconfig"), a.cluster)
    else:
        loaded = profiles.load("ci", ["cluster.name=bench-journey"], "kind")
        profile = loaded.profile.model_copy(update={"components": {k: v for k, v in loaded.profile.components.items() if k in COMPONENTS}})
        try:
            result = orchestrator.up(profile, "kind", report.make())
            rows = measure(result["kubeconfig"], "bench-journey")
        finally:
            orchestrator.down("bench-journey", report.make())
    write("journey", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
