#!/usr/bin/env python3
"""The appliance's simulator side by side with kwokctl, same binaries, same sizes, same run; JSON to
bench/results/kwokctl.json with the kwokctl figure as `baseline` and appliance/kwokctl as `ratio`.

    python -m bench.bench_kwokctl                                # 100 DGX nodes (800 GPUs), 1,000 pods, 2 rounds
    python -m bench.bench_kwokctl --nodes 2 --pods 4 --rounds 1  # smoke

For each of (a) the simulator (SimProvider, as bench_sim) and (b) `kwokctl create cluster --runtime binary`
pointed at the toolchain's etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok (nothing is
downloaded; its work dir and kubeconfig live in a temp dir that is removed):
  - control plane up: cold process start until the API answers (the simulator: until it starts creating nodes,
    every component healthy; kwokctl: `create cluster` returned and /readyz answers)
  - N nodes Ready: the same Node objects (bench_sim's DGX class: 8 nvidia.com/gpu each), created through the same
    client code, until all are Ready and namespace default's ServiceAccount exists
  - M pods scheduled / Running: the same two Deployments as bench_sim (one GPU a pod up to the GPUs there are)
  - peak RSS and CPU seconds of the five control-plane processes.
kwokctl runs with its own defaults (client QPS limits, kwok's default pod stages) unless --kwokctl-arg says otherwise
(e.g. --kwokctl-arg=--disable-qps-limits --name kwokctl-noqps); the simulator with its sizing (no QPS limits,
GOGC=400: more memory for less CPU). Rounds alternate which side goes first; figures are the means.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance.providers.sim import SimProvider  # noqa: E402
from appliance.providers.sim import nodes as simnodes  # noqa: E402
from appliance.schema import ClusterSpec, NodeClass, SimSpec  # noqa: E402
from appliance.toolchain import SIM_TOOLS, Toolchain  # noqa: E402
from bench.bench_sim import DGX, RSSSampler, start_workers  # noqa: E402
from bench.common import write  # noqa: E402

CLUSTER = "bench-kwokctl"
log = lambda m: print(f"[{time.strftime('%H:%M:%S')}] {m}", flush=True)  # noqa: E731


def rss(pids: dict[str, int]) -> dict[str, int]:
    import psutil

    out = {}
    for name, pid in pids.items():
        try:
            out[name] = psutil.Process(pid).memory_info().rss
        except psutil.Error:
            out[name] = 0
    return out


def finish(sampler: RSSSampler) -> dict:
    sampler.stop_evt.set()
    sampler.join()
    return {"peak_rss_mib": round(sampler.peak_total / 2**20),
            "peak_rss_by_process_mib": {k: round(v / 2**20) for k, v in sampler.peak.items()}}


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    import psutil

    out = {}
    for name, pid in pids.items():
        try:
            t = psutil.Process(pid).cpu_times()
            out[name] = round(t.user + t.system, 1)
        except psutil.Error:
            out[name] = 0.0
    return out


def wait_default_sa(api, alive: Callable[[], None], timeout: float = 120) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core, end = client.CoreV1Api(api), time.monotonic() + timeout
    while time.monotonic() < end:
        alive()
        try:
            core.read_namespaced_service_account("default", "default")
            return
        except ApiException as e:
            if e.status != 404:
                raise
        time.sleep(0.2)
    raise RuntimeError("namespace default's ServiceAccount never appeared")


def nodes_ready(api, spec: ClusterSpec, alive: Callable[[], None]) -> None:
    """What SimProvider.create does for its nodes, done the same way against any cluster."""
    manifests = simnodes.node_manifests(spec.node_classes, CLUSTER)
    simnodes.create_nodes(api, manifests, CLUSTER, log)
    names = {m["metadata"]["name"] for m in manifests}
    t0 = time.monotonic()
    simnodes.wait_ready(api, CLUSTER, names, 60 + 0.1 * len(names), alive, "the kwok-controller log")
    t1 = time.monotonic()
    wait_default_sa(api, alive)
    log(f"nodes Ready {t1 - t0:.2f}s after they were created; default ServiceAccount {time.monotonic() - t1:.2f}s later")


def pods(api, gpu_pods: int, cpu_pods: int, timeout: float, alive: Callable[[], None]) -> dict:
    """The two Deployments; seconds until all pods are created, scheduled, Running (None: not within timeout)."""
    watch = start_workers(api, gpu_pods, cpu_pods)
    t0 = watch.t0
    while "running" not in watch.t_all and time.monotonic() - t0 < timeout:
        time.sleep(1.0)
        c = watch.counts()
        log(f"t={time.monotonic() - t0:6.1f}s created={c['created']} scheduled={c['scheduled']} running={c['running']}")
        alive()
    watch.stop_evt.set()
    return {f"pods_{k}_s": watch.t_all.get(k) and round(watch.t_all[k], 1) for k in ("created", "scheduled", "running")}


def run_sim(spec: ClusterSpec, tmp: Path, gpu_pods: int, cpu_pods: int, timeout: float) -> dict:
    marks: dict[str, float] = {}

    def report(m: str):
        if m.startswith("creating") and "nodes" in m:
            marks["nodes"] = time.monotonic()
        log(f"sim: {m}")

    p = SimProvider(spec, tmp / "sim", report=report)

    def pids() -> dict[str, int]:
        return {n: pr.pid for n, pr in ((p.record.load() or {}).get("procs") or {}).items()}

    peak = RSSSampler(p)
    peak.start()
    try:
        t0 = time.monotonic()
        p.create()
        out = {"control_plane_up_s": round(marks["nodes"] - t0, 2), "nodes_ready_s": round(time.monotonic() - marks["nodes"], 2)}
        out.update(pods(p.api(), gpu_pods, cpu_pods, timeout, p._check_alive))
        out["cpu_seconds_by_process"] = cpu_seconds(pids())
        out.update(finish(peak))
    finally:
        peak.stop_evt.set()
        p.delete()
    return out


class Kwokctl:
    """One kwokctl cluster (binary runtime) whose work dir and kubeconfig are under `root`."""

    def __init__(self, root: Path, bins: dict[str, Path], extra: list[str]):
        self.root, self.bins, self.extra = root, bins, extra
        self.env = {**os.environ, "KWOK_WORKDIR": str(root / "workdir")}
        self.dir = root / "workdir" / "clusters" / CLUSTER
        self.kubeconfig = root / "kubeconfig"

    def ctl(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.bins["kwokctl"]), "--name", CLUSTER, *args], env=self.env, cwd=self.root,
                              capture_output=True, text=True, timeout=timeout)

    def create(self) -> None:
        b = self.bins
        r = self.ctl("create", "cluster", "--runtime", "binary", "--kubeconfig", str(self.kubeconfig),
                     "--etcd-binary", str(b["etcd"]), "--kube-apiserver-binary", str(b["kube-apiserver"]),
                     "--kube-controller-manager-binary", str(b["kube-controller-manager"]),
                     "--kube-scheduler-binary", str(b["kube-scheduler"]), "--kwok-controller-binary", str(b["kwok"]), *self.extra)
        if r.returncode != 0:
            raise RuntimeError(f"kwokctl create cluster failed: {(r.stdout + r.stderr)[-2000:]}")

    def pids(self) -> dict[str, int]:
        return {f.stem: int(f.read_text().strip()) for f in (self.dir / "pids").glob("*.pid") if f.read_text().strip()}

    def alive(self) -> None:
        import psutil

        dead = [n for n, pid in self.pids().items() if not psutil.pid_exists(pid)]
        if dead:
            raise RuntimeError(f"kwokctl's {', '.join(dead)} died; see {self.dir / 'logs'}")

    def wait_readyz(self, timeout: float = 120) -> None:
        import urllib.request

        ctx = ssl.create_default_context(cafile=str(self.dir / "pki" / "ca.crt"))
        ctx.load_cert_chain(str(self.dir / "pki" / "admin.crt"), str(self.dir / "pki" / "admin.key"))
        server = next(ln.split("server:", 1)[1].strip() for ln in (self.dir / "kubeconfig.yaml").read_text().splitlines()
                      if "server:" in ln)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                with urllib.request.urlopen(f"{server}/readyz", context=ctx, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            self.alive()
            time.sleep(0.1)
        raise RuntimeError(f"kwokctl's kube-apiserver not ready within {timeout:.0f}s")

    def api(self):
        from kubernetes import config as kconfig

        api = kconfig.new_client_from_config(config_file=str(self.dir / "kubeconfig.yaml"))
        api.configuration.connection_pool_maxsize = 64
        api.rest_client.pool_manager.connection_pool_kw["maxsize"] = 64
        return api

    def delete(self) -> None:
        if self.dir.exists():
            r = self.ctl("delete", "cluster", "--kubeconfig", str(self.kubeconfig), timeout=120)
            if r.returncode != 0:
                log(f"kwokctl delete cluster failed: {(r.stdout + r.stderr)[-500:]}")


def run_kwokctl(spec: ClusterSpec, tmp: Path, bins: dict[str, Path], extra: list[str], gpu_pods: int, cpu_pods: int,
                timeout: float) -> dict:
    k = Kwokctl(tmp / "kwokctl", bins, extra)
    k.root.mkdir(parents=True)
    peak = RSSSampler(rss=lambda: rss(k.pids()))
    peak.start()
    try:
        t0 = time.monotonic()
        k.create()
        k.wait_readyz()
        out = {"control_plane_up_s": round(time.monotonic() - t0, 2)}
        log(f"kwokctl: control plane up in {out['control_plane_up_s']}s")
        api = k.api()
        t0 = time.monotonic()
        nodes_ready(api, spec, k.alive)
        out["nodes_ready_s"] = round(time.monotonic() - t0, 2)
        log(f"kwokctl: {sum(nc.count for nc in spec.node_classes)} nodes Ready in {out['nodes_ready_s']}s")
        out.update(pods(api, gpu_pods, cpu_pods, timeout, k.alive))
        out["cpu_seconds_by_process"] = cpu_seconds(k.pids())
        out.update(finish(peak))
    finally:
        peak.stop_evt.set()
        k.delete()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--pods", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=2, help="rounds of both, the order alternating (figures: the mean)")
    ap.add_argument("--timeout", type=float, default=300, help="seconds to wait for the pods, each side")
    ap.add_argument("--kwokctl-arg", action="append", default=[], metavar="ARG",
                    help="one more argument to `kwokctl create cluster`, e.g. --kwokctl-arg=--disable-qps-limits")
    ap.add_argument("--name", default="kwokctl", help="result file name (without .json)")
    args = ap.parse_args()
    gpu_pods = min(args.pods, args.nodes * DGX["gpus"])
    cpu_pods = args.pods - gpu_pods
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` tears the clusters down

    tc = Toolchain(source="auto", report=log)
    bins = {t: tc.path(t) for t in [*SIM_TOOLS, "kwokctl"]}  # cached binaries only: never fetched here
    spec = ClusterSpec(name=CLUSTER, node_classes=[NodeClass(count=args.nodes, **DGX)], sim=SimSpec(pod_run_seconds=60))
    runs: dict[str, list[dict]] = {"appliance": [], "kwokctl": []}
    loads = [round(os.getloadavg()[0], 2)]
    for n in range(args.rounds):
        # on a shared host the order matters (warm caches, neighbours): alternate it
        for side in (["appliance", "kwokctl"] if n % 2 == 0 else ["kwokctl", "appliance"]):
            tmp = Path(tempfile.mkdtemp(prefix="bench-kwokctl-"))
            try:
                log(f"round {n + 1}/{args.rounds}, {side}: {args.nodes} nodes, {args.pods} pods ({gpu_pods} with a GPU)")
                if side == "appliance":
                    r = run_sim(spec, tmp, gpu_pods, cpu_pods, args.timeout)
                else:
                    r = run_kwokctl(spec, tmp, bins, args.kwokctl_arg, gpu_pods, cpu_pods, args.timeout)
                r["cpu_seconds"] = round(sum(r["cpu_seconds_by_process"].values()), 1)
                runs[side].append(r)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            loads.append(round(os.getloadavg()[0], 2))

    def row(metric: str, key: str, unit: str, by_process: str = "") -> dict:
        got = {side: [r.get(key) for r in rs] for side, rs in runs.items()}
        mean = {side: None if None in v else round(sum(v) / len(v), 2) for side, v in got.items()}
        ours, base = mean["appliance"], mean["kwokctl"]
        out = {"metric": metric, "value": ours, "unit": unit, "baseline": base,
               "ratio": round(ours / base, 3) if ours is not None and base else None, "rounds": got}
        if by_process:
            out["by_process"] = {side: [r[by_process] for r in rs] for side, rs in runs.items()}
        return out

    rows = [
        row("control plane up", "control_plane_up_s", "s"),
        row(f"{args.nodes} nodes Ready ({args.nodes * DGX['gpus']} GPUs)", "nodes_ready_s", "s"),
        row(f"{args.pods} pods created (ReplicaSet controller)", "pods_created_s", "s"),
        row(f"{args.pods} pods scheduled", "pods_scheduled_s", "s"),
        row(f"{args.pods} pods Running", "pods_running_s", "s"),
        row("control-plane peak RSS", "peak_rss_mib", "MiB", "peak_rss_by_process_mib"),
        row("control-plane CPU", "cpu_seconds", "s", "cpu_seconds_by_process"),
        {"metric": "load average (1 min) before and after each run", "value": loads},
    ]
    rows.append({"metric": "kwokctl create cluster arguments added", "value": args.kwokctl_arg or "-"})
    write(args.name, rows)
    return 0 if all(r.get("pods_running_s") for rs in runs.values() for r in rs) else 1


if __name__ == "__main__":
    sys.exit(main())
