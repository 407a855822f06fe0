#!/usr/bin/env python3
"""Stack benchmark: `up` of a profile (default laptop) to ready, then its e2e scenarios.

    python -m bench.bench_stack [--profile laptop] [--provider kind|sim] [--set k=v ...] [--keep] [--no-scenarios]

Reports: wall time of `up` (cold caches build the training operator / KServe / images first: their
build times are reported from the cache's build records), number of pods, the sum of the pods' CPU
and memory requests, measured resident memory (kind: the node containers, `docker stats`; sim: the
control-plane and host-controller processes), and each fitting scenario's wall time.
Writes bench/results/stack-<provider>.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import write  # noqa: E402


def _cpu_m(q: str) -> float:
    return float(q[:-1]) if q.endswith("m") else float(q) * 1000


def _mem_mib(q: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "Ti": 1024**2, "k": 1e3 / 2**20, "M": 1e6 / 2**20, "G": 1e9 / 2**20}
    for u, f in units.items():
        if q.endswith(u):
            return float(q[: -len(u)]) * f
    return float(q) / 2**20


def pod_requests(kube) -> tuple[int, float, float]:
    from kubernetes import client

    pods = [p for p in client.CoreV1Api(kube.api).list_pod_for_all_namespaces().items if p.status.phase in ("Running", "Pending")]
    cpu = mem = 0.0
    for p in pods:
        for c in p.spec.containers:
            req = (c.resources.requests or {}) if c.resources else {}
            cpu += _cpu_m(req.get("cpu", "0"))
            mem += _mem_mib(req.get("memory", "0"))
    return len(pods), cpu, mem


def _docker_mem_mib(text: str) -> float:
    used = text.split("/")[0].strip()
    for u, f in (("GiB", 1024), ("MiB", 1), ("KiB", 1 / 1024), ("B", 1 / 2**20)):
        if used.endswith(u):
            return float(used[: -len(u)]) * f
    return 0.0


def measured_rss_mib(provider: str, cluster: str, kubeconfig: str) -> float:
    if provider == "kind":
        r = subprocess.run(["docker", "stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}"], capture_output=True, text=True, timeout=60)
        return sum(_docker_mem_mib(m) for n, _, m in (ln.partition("\t") for ln in r.stdout.splitlines()) if n.startswith(f"{cluster}-"))
    import psutil

    from appliance import paths

    total = 0
    state = paths.state_dir(cluster)
    records = []
    sim = state / "sim.json"
    if sim.exists():
        records += list(json.loads(sim.read_text()).get("procs", {}).values())
    for f in (state / "controllers").glob("*.json"):
        records.append(json.loads(f.read_text()))
    for rec in records:
        try:
            p = psutil.Process(rec["pid"])
            total += sum(x.memory_info().rss for x in [p] + p.children(recursive=True))
        except (psutil.Error, KeyError):
            pass
    return total / 2**20


def build_records() -> list[dict]:
    """Build times the component caches recorded (go builds, controller-gen, images)."""
    from appliance import paths

    rows = []
    base = paths.cache_dir("components")
    for f in sorted(base.glob("go/*/*/*.json")):
        d = json.loads(f.read_text())
        rows.append({"metric": f"build: {f.stem} {d.get('version', '')}", "value": d.get("seconds"), "unit": "s"})
    for f in sorted(base.glob("images/*/*/build.json")):
        d = json.loads(f.read_text())
        rows.append({"metric": f"build: image {d['ref'].split('/')[-1][:40]}", "value": d.get("seconds"), "unit": "s"})
        rows.append({"metric": f"size: image {d['ref'].split('/')[-1][:40]}", "value": round(d.get("bytes", 0) / 2**20, 1), "unit": "MiB"})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="laptop")
    ap.add_argument("--provider", default=None)
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--keep", action="store_true", help="leave the cluster up")
    ap.add_argument("--no-scenarios", action="store_true")
    a = ap.parse_args(argv)

    from appliance import e2e, orchestrator, report
    from appliance.kube import Kube

    loaded, provider, why = orchestrator.load_for(a.profile, ["cluster.name=bench-stack", *a.set], a.provider)
    profile = loaded.profile
    print(f"profile {profile.name} on {provider} ({why})", flush=True)
    rows: list[dict] = []
    t0 = time.monotonic()
    try:
        result = orchestrator.up(profile, provider, report.make())
        rows.append({"metric": f"up {profile.name} to ready ({provider})", "value": round(time.monotonic() - t0, 1), "unit": "s"})
        kube = Kube(result["kubeconfig"])
        again = time.monotonic()
        orchestrator.up(profile, provider, report.make())
        rows.append({"metric": "up again (no-op check)", "value": round(time.monotonic() - again, 1), "unit": "s"})
        n, cpu, mem = pod_requests(kube)
        rows += [{"metric": "pods", "value": n, "unit": ""},
                 {"metric": "summed CPU requests", "value": round(cpu), "unit": "m"},
                 {"metric": "summed memory requests", "value": round(mem), "unit": "MiB"},
                 {"metric": "measured RSS (nodes / processes)", "value": round(measured_rss_mib(provider, profile.cluster.name, result["kubeconfig"])), "unit": "MiB"}]
        if not a.no_scenarios:
            enabled = {n for n, s in profile.components.items() if s.enabled}
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    results = e2e.run(result["kubeconfig"], provider, enabled, None, Path(tmp))
                except Exception as e:  # noqa: BLE001 - no fitting scenario is not a bench failure
                    print(f"scenarios: {e}", flush=True)
                    results = []
                for r in results:
                    rows.append({"metric": f"scenario {r.name} ({'passed' if r.passed else 'FAILED'})", "value": r.seconds, "unit": "s"})
        rows += build_records()
    finally:
        if not a.keep:
            from appliance import paths

            if paths.state_dir(profile.cluster.name).exists():
                orchestrator.down(profile.cluster.name, report.make())
    write(f"stack-{provider}", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
