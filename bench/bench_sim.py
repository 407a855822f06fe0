#!/usr/bin/env python3
"""Simulator benchmark: cold start, then N DGX nodes and M pods; JSON to bench/results/sim.json.

    python bench/bench_sim.py                       # 1,000 DGX nodes (8,000 GPUs), 10,000 pods
    python bench/bench_sim.py --nodes 50 --pods 500 # quick

1,000 DGX nodes hold 8,000 GPUs, so of the 10,000 pods 8,000 ask for one GPU
(filling every GPU) and the rest are CPU-only; a pod asking for a GPU that does
not exist would stay Pending by design. --gpu-pods changes the split.

Timeline (sampled every second): pods created (ReplicaSet controller), pods
scheduled (scheduler metrics), pods Ready (Deployment status) -> shows which
component the time goes to. Control-plane RSS is sampled throughout (peak reported).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance.providers.sim import SimProvider  # noqa: E402
from appliance.schema import ClusterSpec, NodeClass, SimSpec  # noqa: E402
from bench.common import RESULTS, machine  # noqa: E402

#: every pod Running within this, at the default size (1,000 nodes, 10,000 pods) on 2 cores
TARGET_S = 60
DGX = dict(name="dgx-h100", cpu="224", memory="2Ti", pods=110, gpus=8, gpu_product="NVIDIA-H100-80GB-HBM3",
           gpu_family="hopper", cuda_driver_version="550.90.07")


class RSSSampler(threading.Thread):
    """Peak RSS of each of the simulator's processes and of their sum; `rss` ({name: bytes}) samples others'."""

    def __init__(self, provider: SimProvider | None = None, every: float = 0.5,
                 rss: Callable[[], dict[str, int]] | None = None):
        super().__init__(daemon=True)
        self.p, self.every = provider, every
        self.rss = rss or (lambda: {name: pr.rss() for name, pr in (self.p.record.load() or {}).get("procs", {}).items()})
        self.peak: dict[str, int] = {}
        self.peak_total = 0
        self.stop_evt = threading.Event()

    def run(self):
        while not self.stop_evt.is_set():
            try:
                now = self.rss()
                for name, r in now.items():
                    self.peak[name] = max(self.peak.get(name, 0), r)
                self.peak_total = max(self.peak_total, sum(now.values()))
            except Exception:  # noqa: BLE001
                pass
            self.stop_evt.wait(self.every)


class PodWatch(threading.Thread):
    """Follows one namespace's pods through a raw watch: when each was created, bound, Running."""

    def __init__(self, api_client, namespace: str, total: int):
        super().__init__(daemon=True)
        from kubernetes import client

        self.core = client.CoreV1Api(api_client)
        self.ns, self.total = namespace, total
        self.created: set[str] = set()
        self.scheduled: set[str] = set()
        self.running: set[str] = set()
        self.t_all: dict[str, float] = {}
        self.t0 = time.monotonic()
        self.error = ""
        self.stop_evt = threading.Event()
        resp = self.core.list_namespaced_pod(namespace, limit=1, _preload_content=False)
        self.rv = json.loads(resp.data)["metadata"]["resourceVersion"]
        resp.release_conn()

    def _event(self, ev: dict) -> None:
        obj = ev.get("object") or {}
        uid = (obj.get("metadata") or {}).get("uid")
        if not uid or ev.get("type") not in ("ADDED", "MODIFIED"):
            return
        self.created.add(uid)
        if (obj.get("spec") or {}).get("nodeName"):
            self.scheduled.add(uid)
        if (obj.get("status") or {}).get("phase") == "Running":
            self.running.add(uid)
        now = time.monotonic() - self.t0
        for key, s in (("created", self.created), ("scheduled", self.scheduled), ("running", self.running)):
            if key not in self.t_all and len(s) >= self.total:
                self.t_all[key] = now

    def run(self):
        while not self.stop_evt.is_set() and len(self.t_all) < 3:
            try:
                resp = self.core.list_namespaced_pod(self.ns, watch=True, resource_version=self.rv, timeout_seconds=600,
                                                     allow_watch_bookmarks=True, _preload_content=False)
                buf = b""
                for chunk in resp.stream(1 << 16):
                    buf += chunk
                    *lines, buf = buf.split(b"\n")
                    for ln in lines:
                        if ln.strip():
                            ev = json.loads(ln)
                            rv = ((ev.get("object") or {}).get("metadata") or {}).get("resourceVersion")
                            if rv:
                                self.rv = rv
                            self._event(ev)
                    if self.stop_evt.is_set() or len(self.t_all) == 3:
                        break
                resp.close()  # never back to the pool: the stream may be half read
            except Exception as e:  # noqa: BLE001 - reconnect from the last resourceVersion
                self.error = str(e).splitlines()[0]
                time.sleep(0.5)

    def counts(self) -> dict:
        return {"created": len(self.created), "scheduled": len(self.scheduled), "running": len(self.running)}


def scheduler_scheduled(p: SimProvider) -> int | None:
    """scheduler_schedule_attempts_total{result="scheduled"} from the scheduler's /metrics."""
    import ssl
    import urllib.request

    st = p.record.load()
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    pki = p.state_dir / "pki"
    ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    try:
        with urllib.request.urlopen(f"https://127.0.0.1:{st['ports']['kube-scheduler']}/metrics", context=ctx, timeout=5) as r:
            for ln in r.read().decode().splitlines():
                if ln.startswith("scheduler_schedule_attempts_total") and 'result="scheduled"' in ln:
                    return int(float(ln.rsplit(" ", 1)[1]))
    except Exception:  # noqa: BLE001
        return None
    return 0


def deployment(name: str, replicas: int, gpus: int) -> dict:
    res = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {}}
    if gpus:
        res["requests"]["nvidia.com/gpu"] = str(gpus)
        res["limits"]["nvidia.com/gpu"] = str(gpus)
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"type": "Recreate"},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"automountServiceAccountToken": False,
                                  "containers": [{"name": "w", "image": "registry.local/worker:1", "resources": res}]}},
        },
    }


def start_workers(api_client, gpu_pods: int, cpu_pods: int) -> PodWatch:
    """The two Deployments (one GPU a pod, CPU only), after a watch on namespace default whose t0 is their create."""
    from kubernetes import client

    watch = PodWatch(api_client, "default", gpu_pods + cpu_pods)
    watch.start()
    watch.t0 = time.monotonic()
    apps = client.AppsV1Api(api_client)
    if gpu_pods:
        apps.create_namespaced_deployment("default", deployment("gpu-workers", gpu_pods, 1))
    if cpu_pods:
        apps.create_namespaced_deployment("default", deployment("cpu-workers", cpu_pods, 0))
    return watch


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--pods", type=int, default=10000)
    ap.add_argument("--gpu-pods", type=int, default=None, help="pods asking one GPU (default: min(pods, 8*nodes))")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--out", default=str(RESULTS / "sim.json"))
    ap.add_argument("--skip-cold", action="store_true")
    args = ap.parse_args()
    gpu_pods = min(args.pods, args.nodes * 8) if args.gpu_pods is None else args.gpu_pods
    cpu_pods = args.pods - gpu_pods

    import signal

    from kubernetes import client

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` tears the clusters down

    tmp = Path(tempfile.mkdtemp(prefix="bench-sim-"))
    result: dict = {"machine": machine(), "params": {"nodes": args.nodes, "gpus": args.nodes * 8, "pods": args.pods,
                                                     "gpu_pods": gpu_pods, "cpu_pods": cpu_pods}}
    log = lambda m: print(f"[{time.strftime('%H:%M:%S')}] {m}", flush=True)  # noqa: E731
    try:
        # 1. cold start (binaries cached): control plane + one node, Ready
        if not args.skip_cold:
            spec = ClusterSpec(name="bench-cold", node_classes=[NodeClass(count=1, **DGX)])
            p = SimProvider(spec, tmp / "cold")
            t0 = time.monotonic()
            p.create()
            result["cold_start_s"] = round(time.monotonic() - t0, 2)
            t0 = time.monotonic()
            p.delete()
            result["delete_s"] = round(time.monotonic() - t0, 2)
            log(f"cold start {result['cold_start_s']}s, delete {result['delete_s']}s")

        # 2. big cluster
        marks: dict[str, float] = {}
        spec = ClusterSpec(name="bench", node_classes=[NodeClass(count=args.nodes, **DGX)], sim=SimSpec(pod_run_seconds=60))

        def report(m: str):
            if m.startswith("creating") and "nodes" in m:
                marks["nodes_create_start"] = time.monotonic()
            if "nodes created" in m:
                marks["nodes_created"] = time.monotonic()
            log(m)

        p = SimProvider(spec, tmp / "big", report=report)
        sampler = RSSSampler(p)
        sampler.start()
        t0 = time.monotonic()
        p.create()
        t_nodes = time.monotonic()
        result["control_plane_up_s"] = round(marks.get("nodes_create_start", t0) - t0, 2)
        result["nodes_ready_s"] = round(t_nodes - marks.get("nodes_create_start", t0), 2)
        result["create_total_s"] = round(t_nodes - t0, 2)
        if "nodes_created" in marks:
            result["nodes_api_create_s"] = round(marks["nodes_created"] - marks["nodes_create_start"], 2)
        log(f"{args.nodes} nodes Ready in {result['nodes_ready_s']}s (control plane {result['control_plane_up_s']}s)")

        sched0 = scheduler_scheduled(p) or 0
        watch = start_workers(p.api(), gpu_pods, cpu_pods)
        t0 = watch.t0
        timeline = []
        while True:
            time.sleep(1.0)
            now = time.monotonic() - t0
            c = watch.counts()
            s = scheduler_scheduled(p)
            c["scheduler_metric"] = (s - sched0) if s is not None else None
            timeline.append({"t": round(now, 1), **c})
            log(f"t={now:6.1f}s created={c['created']} scheduled={c['scheduled']} running={c['running']}")
            if "running" in watch.t_all or now > args.timeout:
                break
            p._check_alive()
        watch.stop_evt.set()
        t_all_created = watch.t_all.get("created")
        t_all_sched = watch.t_all.get("scheduled")
        t_all_ready = watch.t_all.get("running")
        # confirm from the pods themselves (one full list)
        core = client.CoreV1Api(p.api())
        resp = core.list_namespaced_pod("default", resource_version="0", _preload_content=False)
        running = sum(1 for x in json.loads(resp.data)["items"] if x["status"].get("phase") == "Running")
        result.update({
            "pods_all_created_s": t_all_created and round(t_all_created, 1),
            "pods_all_scheduled_s": t_all_sched and round(t_all_sched, 1),
            "pods_all_running_s": t_all_ready and round(t_all_ready, 1),
            "pods_running_listed": running,
            "pods_per_s": t_all_ready and round(args.pods / t_all_ready, 1),
            "target_met": bool(t_all_ready and t_all_ready <= TARGET_S),
            "timeline": timeline,
        })
        st = p.status()
        result["process_cpu_seconds"] = {x["name"]: x.get("cpu_seconds") for x in st["processes"]}
        # CPU the control plane burnt (nodes + pods): on a shared host wall time says more about the
        # neighbours than about us; this is what a quiet machine would have to supply
        result["control_plane_cpu_seconds"] = round(sum(v or 0 for v in result["process_cpu_seconds"].values()), 1)
        result["cpu_ms_per_pod"] = round(1000 * result["control_plane_cpu_seconds"] / max(args.pods, 1), 1)
        result["load_avg_at_end"] = os.getloadavg()
        sampler.stop_evt.set()
        sampler.join()
        result["peak_rss_mib"] = {k: round(v / 2**20) for k, v in sampler.peak.items()}
        result["peak_rss_total_mib"] = round(sampler.peak_total / 2**20)
        result["settings"] = {**dataclasses.asdict(p.sizing),
                              "percentage_of_nodes_to_score": p.control_plane.percentage_of_nodes_to_score,
                              "node_lease_seconds": p.control_plane.lease_seconds,
                              "kwok_client": "unthrottled (kwok uses no client rate limiter)"}
        p.delete()
    finally:
        for d in (tmp / "cold", tmp / "big"):
            if (d / "sim.json").exists():
                SimProvider(ClusterSpec(name="x"), d).delete()
        shutil.rmtree(tmp, ignore_errors=True)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    rows = [
        ("cold start (1 node Ready)", f"{result.get('cold_start_s', '-')} s"),
        ("control plane up", f"{result['control_plane_up_s']} s"),
        (f"{args.nodes} nodes Ready", f"{result['nodes_ready_s']} s"),
        (f"{args.pods} pods created", f"{result['pods_all_created_s']} s"),
        (f"{args.pods} pods scheduled", f"{result['pods_all_scheduled_s']} s"),
        (f"{args.pods} pods Running", f"{result['pods_all_running_s']} s  (target {TARGET_S} s: {'met' if result['target_met'] else 'MISSED'})"),
        ("control-plane peak RSS", f"{result['peak_rss_total_mib']} MiB"),
        ("control-plane CPU", f"{result['control_plane_cpu_seconds']} s ({result['cpu_ms_per_pod']} ms/pod); "
                              f"load avg {result['machine']['loadavg'][0]:.1f} -> {result['load_avg_at_end'][0]:.1f}"),
    ]
    w = max(len(r[0]) for r in rows)
    print()
    for k, v in rows:
        print(f"  {k:<{w}}  {v}")
    print("  peak RSS by process: " + ", ".join(f"{k} {v} MiB" for k, v in result["peak_rss_mib"].items()))
    print("  CPU seconds by process: " + ", ".join(f"{k} {v}" for k, v in result["process_cpu_seconds"].items()))
    print(f"  written to {out}")
    return 0 if result["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
