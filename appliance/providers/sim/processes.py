"""The simulator's control-plane processes: ports, configuration files, command lines, health."""

from __future__ import annotations

import os
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

import yaml

from appliance import procs as P
from appliance.errors import UserError
from appliance.providers.base import ADMISSION_PLUGINS
from appliance.providers.sim.nodes import GPU
from appliance.providers.sim.pki import PKI
from appliance.providers.sim.sizing import Sizing
from appliance.providers.sim.stages import kwok_config
from appliance.util import wait

COMPONENTS = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"]
WAVES = [["etcd"], ["kube-apiserver"], ["kube-controller-manager", "kube-scheduler", "kwok"]]
PORT_KEYS = ["etcd", "etcd-peer", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"]


class ControlPlane:
    """etcd, kube-apiserver, controller-manager, scheduler and kwok for one simulated cluster,
    their files under `root` (pki/, etc/, etcd/, logs/)."""

    percentage_of_nodes_to_score = 10
    lease_seconds = 600  # kwok renews at lease/4: 1,000 nodes cost ~7 writes/s instead of 100
    start_timeout = 90.0

    def __init__(self, spec: Any, root: Path, sizing: Sizing, cluster: str, context: str, kubeconfig: Path):
        self.spec = spec
        self.root = root
        self.sizing = sizing
        self.cluster = cluster
        self.context = context
        self.kubeconfig = kubeconfig

    def _path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def pick_ports(self) -> dict[str, int]:
        want = self.spec.sim.apiserver_port if getattr(self.spec, "sim", None) else 0
        if want and not P.port_free(want):
            raise UserError(f"port {want} on 127.0.0.1 is already in use", "cluster.sim.apiserver_port",
                            "free the port or set cluster.sim.apiserver_port: 0 to pick a free one")
        picked = P.free_ports(len(PORT_KEYS), avoid={want} if want else None)
        ports = dict(zip(PORT_KEYS, picked, strict=True))
        if want:
            ports["kube-apiserver"] = want
        return ports

    def write_configs(self, ports: dict[str, int]) -> None:
        pki = PKI(self._path("pki"))
        if not pki.exists():
            pki.create()
        etc = self._path("etc")
        etc.mkdir(parents=True, exist_ok=True)
        server = f"https://127.0.0.1:{ports['kube-apiserver']}"
        self.kubeconfig.write_text(pki.kubeconfig("admin", server, self.context, self.context, f"{self.context}-admin"))
        self.kubeconfig.chmod(0o600)
        for comp, client in (("controller-manager", "controller-manager"), ("scheduler", "scheduler"), ("kwok", "kwok")):
            f = etc / f"{comp}.kubeconfig"
            f.write_text(pki.kubeconfig(client, server, "sim", "sim", comp))
            f.chmod(0o600)
        sched = {
            "apiVersion": "kubescheduler.config.k8s.io/v1",
            "kind": "KubeSchedulerConfiguration",
            "clientConnection": {"kubeconfig": str(etc / "scheduler.kubeconfig"), "qps": self.sizing.scheduler_qps,
                                 "burst": self.sizing.scheduler_burst},
            "leaderElection": {"leaderElect": False},
            # k8s' adaptive default scores ~42% of 1,000 nodes for every pod; 100 sampled feasible nodes
            # (the floor) keep bin-packing good and cut scheduler CPU ~4x at that size
            "percentageOfNodesToScore": self.percentage_of_nodes_to_score,
            "profiles": [{
                "schedulerName": "default-scheduler",
                "pluginConfig": [
                    {"name": "NodeResourcesFit", "args": {"scoringStrategy": self.scoring()}},
                    # no implicit spreading of ReplicaSet pods: it works against GPU bin-packing and costs
                    # O(pods) per scheduling cycle; pods that want spreading say so (topologySpreadConstraints)
                    {"name": "PodTopologySpread", "args": {"defaultingType": "List", "defaultConstraints": []}},
                ],
            }],
        }
        (etc / "scheduler.yaml").write_text(yaml.safe_dump(sched, sort_keys=False))
        sim = self.spec.sim
        (etc / "kwok.yaml").write_text(kwok_config(sim.pod_startup_seconds, sim.pod_run_seconds, self.sizing.kwok_parallelism,
                                                      self.lease_seconds))

    def scoring(self) -> dict:
        """GPU bin-packing by default (MostAllocated, GPUs weigh most): whole nodes stay free for
        big jobs. A profile may set cluster.sim.scheduler_scoring: LeastAllocated to spread instead."""
        kind = getattr(self.spec.sim, "scheduler_scoring", "MostAllocated") or "MostAllocated"
        return {"type": kind, "resources": [{"name": "cpu", "weight": 1}, {"name": "memory", "weight": 1},
                                            {"name": GPU, "weight": 5}]}

    def argv(self, comp: str, bins: dict[str, Path], ports: dict[str, int]) -> list[str]:
        pki, etc, tu = self._path("pki"), self._path("etc"), self.sizing
        ec = f"http://127.0.0.1:{ports['etcd']}"
        ep = f"http://127.0.0.1:{ports['etcd-peer']}"
        if comp == "etcd":
            return [str(bins["etcd"]), "--name=sim", f"--data-dir={self._path('etcd')}",
                    f"--listen-client-urls={ec}", f"--advertise-client-urls={ec}",
                    f"--listen-peer-urls={ep}", f"--initial-advertise-peer-urls={ep}", f"--initial-cluster=sim={ep}",
                    "--unsafe-no-fsync=true",  # a simulator: speed over crash safety
                    f"--quota-backend-bytes={tu.etcd_quota_bytes}", f"--snapshot-count={tu.etcd_snapshot_count}",
                    "--auto-compaction-mode=periodic", "--auto-compaction-retention=5m", "--log-level=warn"]
        if comp == "kube-apiserver":
            return [str(bins["kube-apiserver"]), f"--etcd-servers={ec}",
                    "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={ports['kube-apiserver']}",
                    f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
                    f"--client-ca-file={pki / 'ca.crt'}",
                    f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
                    f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
                    # aggregation layer (metrics-server & co.): the front proxy identifies itself with this cert
                    f"--requestheader-client-ca-file={pki / 'ca.crt'}", "--requestheader-allowed-names=front-proxy-client",
                    "--requestheader-username-headers=X-Remote-User", "--requestheader-group-headers=X-Remote-Group",
                    "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                    f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
                    f"--proxy-client-key-file={pki / 'front-proxy-client.key'}",
                    f"--service-account-key-file={pki / 'sa.pub'}", f"--service-account-signing-key-file={pki / 'sa.key'}",
                    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                    "--service-cluster-ip-range=10.96.0.0/16", "--authorization-mode=Node,RBAC", "--allow-privileged=true",
                    "--enable-admission-plugins=" + ",".join(ADMISSION_PLUGINS),
                    "--endpoint-reconciler-type=none",  # loopback can't be an Endpoints address
                    "--enable-priority-and-fairness=false", f"--max-requests-inflight={tu.max_requests_inflight}",
                    f"--max-mutating-requests-inflight={tu.max_mutating_requests_inflight}", "--profiling=false",
                    "--event-ttl=1h", "--v=1"]
        if comp == "kube-controller-manager":
            kc = etc / "controller-manager.kubeconfig"
            return [str(bins["kube-controller-manager"]), f"--kubeconfig={kc}",
                    f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}",
                    "--bind-address=127.0.0.1", f"--secure-port={ports['kube-controller-manager']}",
                    "--leader-elect=false", "--use-service-account-credentials=true",
                    f"--service-account-private-key-file={pki / 'sa.key'}", f"--root-ca-file={pki / 'ca.crt'}",
                    f"--cluster-signing-cert-file={pki / 'ca.crt'}", f"--cluster-signing-key-file={pki / 'ca.key'}",
                    f"--cluster-name={self.cluster}", "--allocate-node-cidrs=false",
                    f"--kube-api-qps={tu.kcm_qps}", f"--kube-api-burst={tu.kcm_burst}",
                    # a simulated node is as alive as kwok: status() watches kwok itself
                    f"--node-monitor-grace-period={self.lease_seconds + 60}s",
                    *(f"--concurrent-{c}-syncs={tu.concurrent_syncs}" for c in ("replicaset", "deployment", "job")),
                    "--profiling=false", "--v=1"]
        if comp == "kube-scheduler":
            kc = etc / "scheduler.kubeconfig"
            return [str(bins["kube-scheduler"]), f"--config={etc / 'scheduler.yaml'}",
                    f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}",
                    "--bind-address=127.0.0.1", f"--secure-port={ports['kube-scheduler']}", "--profiling=false", "--v=1"]
        if comp == "kwok":
            return [str(bins["kwok"]), f"--kubeconfig={etc / 'kwok.kubeconfig'}", f"--config={etc / 'kwok.yaml'}",
                    f"--server-address=127.0.0.1:{ports['kwok']}", "--manage-all-nodes=false",
                    "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                    f"--node-lease-duration-seconds={self.lease_seconds}", "--v=WARN"]  # INFO logs every pod patch
        raise KeyError(comp)

    def _http_ok(self, url: str, ctx: ssl.SSLContext | None = None, timeout: float = 2.0) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=timeout, context=ctx) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def _admin_ctx(self) -> ssl.SSLContext:
        pki = self._path("pki")
        ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        return ctx

    def healthy(self, comp: str, ports: dict[str, int]) -> bool:
        if comp == "etcd":
            return self._http_ok(f"http://127.0.0.1:{ports['etcd']}/health")
        if comp == "kube-apiserver":
            return self._http_ok(f"https://127.0.0.1:{ports['kube-apiserver']}/readyz", self._admin_ctx())
        if comp in ("kube-controller-manager", "kube-scheduler"):
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE  # self-signed serving cert; only asking "are you up"
            return self._http_ok(f"https://127.0.0.1:{ports[comp]}/healthz", ctx)
        if comp == "kwok":
            return self._http_ok(f"http://127.0.0.1:{ports['kwok']}/healthz")
        return False

    def wait_healthy(self, comp: str, proc: P.Proc, ports: dict[str, int], timeout: float) -> None:
        fix = "see the log; `appliance down` cleans up"
        try:
            ok, _ = wait.within(lambda: (self.healthy(comp, ports), ""), timeout, interval=0.05, factor=1.5, cap=0.5,
                                alive=lambda: None if proc.alive() else f"{comp} exited while starting: {P.tail(proc.log) or 'no output'}")
        except wait.Died as e:
            raise UserError(str(e), proc.log, fix) from None
        if not ok:
            raise UserError(f"{comp} did not become healthy within {timeout:.0f}s: {P.tail(proc.log)}", proc.log, fix)

    def start(self, st: dict, bins: dict[str, Path], started: list[P.Proc], save: Callable[[dict], None],
              report: Callable[[str], None]) -> None:
        """Start what is not running, wave by wave: each wave needs the one before it healthy; within a
        wave they start together. Each process joins `started` and the record (`save`) as it starts."""
        ports = st["ports"]
        for wave in WAVES:
            todo = [c for c in wave if not (st["procs"].get(c) and st["procs"][c].alive())]
            if not todo:
                continue
            report(f"starting {', '.join(todo)}")
            for comp in todo:
                log = self._path("logs", f"{comp}.log")
                env = dict(os.environ)
                env.update(self.sizing.go_gc)
                pr = P.spawn(comp, self.argv(comp, bins, ports), log, self.root, env=env)
                st["procs"][comp] = pr
                started.append(pr)
                save(st)
            for comp in todo:
                self.wait_healthy(comp, st["procs"][comp], ports, self.start_timeout)
