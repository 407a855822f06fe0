#!/usr/bin/env python3
"""Monitoring at scale on the simulator: N DGX nodes (8 GPUs each) with every GPU held by a pod, Prometheus and
the GPU exporter as host processes; JSON to bench/results/monitoring.json.

    python -m bench.bench_monitoring                 # 1,000 DGX nodes = 8,000 simulated GPUs
    python -m bench.bench_monitoring --nodes 50      # quick

Reports the exporter's scrape time as Prometheus measures it (target <= 2 s), the series Prometheus holds,
and the resident memory of Prometheus and of the exporter once every GPU has been scraped a few times.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import write  # noqa: E402


def run(nodes: int, scrapes: int) -> list[dict]:
    import psutil

    from appliance import orchestrator, report
    from appliance.components.prom import Prometheus, PrometheusError
    from appliance.kube import Kube
    from appliance.runtime import process

    sets = ["cluster.name=bench-monitoring", f"cluster.node_classes.0.count={nodes}",
            "components.monitoring.options.scrape_interval=10s"]
    profile = orchestrator.load_for("sim-dgx-pod", sets, "sim")[0].profile
    profile = profile.model_copy(update={"components": {n: c for n, c in profile.components.items() if n in ("platform-base", "monitoring")}})
    try:
        result = orchestrator.up(profile, "sim", report.make())
        kube = Kube(result["kubeconfig"])
        kube.apply([{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "gpu-fill", "namespace": "default"},
                     "spec": {"replicas": nodes, "selector": {"matchLabels": {"app": "gpu-fill"}},
                              "template": {"metadata": {"labels": {"app": "gpu-fill"}}, "spec": {
                                  "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
                                  "containers": [{"name": "c", "image": "x", "resources": {"limits": {"nvidia.com/gpu": "8"}}}]}}}}])
        prom, gpus, t0 = Prometheus(kube), nodes * 8, time.monotonic()
        while True:
            try:
                held = prom.query('count(DCGM_FI_DEV_GPU_UTIL{pod!=""})')
            except PrometheusError:
                held = []  # still starting
            if held and int(float(held[0]["value"][1])) == gpus:
                break
            if time.monotonic() - t0 > 1800:
                raise SystemExit(f"only {held} of {gpus} GPUs attributed after 30 min")
            time.sleep(5)
        fill_s = time.monotonic() - t0
        time.sleep(10 * scrapes)
        scrape = float(prom.query(f'max_over_time(scrape_duration_seconds{{job="gpu-exporter"}}[{10 * scrapes}s])')[0]["value"][1])
        series = int(float(prom.query("prometheus_tsdb_head_series")[0]["value"][1]))
        folder = process.controllers_dir(result["kubeconfig"])
        rss = {}
        for name in ("prometheus", "gpu-exporter"):
            sup = psutil.Process(process.HostProcess(folder, name).load().pid)
            rss[name] = max(p.memory_info().rss for p in sup.children(recursive=True)) / 2**20  # the program, not its supervisor
        return [
            {"metric": "simulated GPUs, all held by pods", "value": gpus, "unit": "GPUs"},
            {"metric": "every GPU attributed in Prometheus after the pods were created", "value": round(fill_s, 1), "unit": "s"},
            {"metric": "exporter scrape (max once every GPU is held)", "value": round(scrape, 2), "unit": "s", "target": 2.0},
            {"metric": "Prometheus head series", "value": series, "unit": "series"},
            {"metric": "Prometheus resident memory", "value": round(rss["prometheus"]), "unit": "MiB"},
            {"metric": "GPU exporter resident memory", "value": round(rss["gpu-exporter"]), "unit": "MiB"},
        ]
    finally:
        orchestrator.down(profile.cluster.name, report.make())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--scrapes", type=int, default=6, help="scrapes to wait once every GPU is attributed")
    a = ap.parse_args()
    write("monitoring", run(a.nodes, a.scrapes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
