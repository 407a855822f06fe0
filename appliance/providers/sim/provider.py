"""The simulator provider: a real control plane (etcd, kube-apiserver, controller-manager,
scheduler) plus kwok pretending to be the kubelets, all local daemonized processes.

State dir layout (everything here is ours and `delete()` removes it):
    sim.json            ports, process records (pid + start time + argv)
    kubeconfig          admin kubeconfig (context sim-<name>)
    pki/                CA, serving and client certs, service-account keys
    etc/                component kubeconfigs, scheduler + kwok configuration
    etcd/               etcd data
    logs/<proc>.log     process output
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import yaml

from appliance import procs as P
from appliance.errors import UserError
from appliance.providers.base import ClusterInfo, Provider
from appliance.providers.sim.nodes import CLASS_LABEL, GPU, SIM_LABEL, node_manifests
from appliance.providers.sim.pki import PKI
from appliance.providers.sim.stages import kwok_config
from appliance.providers.sim.tuning import tuning

STATE_FILE = "sim.json"
OURS = [STATE_FILE, "kubeconfig", "pki", "etc", "etcd", "logs"]
COMPONENTS = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"]
WAVES = [["etcd"], ["kube-apiserver"], ["kube-controller-manager", "kube-scheduler", "kwok"]]
PORT_KEYS = ["etcd", "etcd-peer", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"]
#: what `status` says about NetworkPolicy here
NETWORK_POLICY = "objects only: simulated nodes have no data plane, so NetworkPolicies are stored, never enforced"


class SimProvider(Provider):
    """Local control plane + kwok nodes shaped like the profile's node classes."""

    name = "sim"

    percentage_of_nodes_to_score = 10
    lease_seconds = 600  # kwok renews at lease/4: 1,000 nodes cost ~7 writes/s instead of 100
    start_timeout = 90.0

    def __init__(self, spec: Any, state_dir: Path, report: Callable[[str], None] | None = None, toolchain=None):
        super().__init__(spec, state_dir, report)
        self._toolchain = toolchain
        self._api = None
        #: settings sized to the node count (tuning.py)
        self.tuning = tuning(sum(nc.count for nc in spec.node_classes), spec.sim.tuning)

    # ------------------------------------------------------------------ basics

    @classmethod
    def available(cls) -> tuple[bool, str]:
        import platform

        if platform.system() != "Linux":
            return False, "the simulator runs the control plane as local Linux processes"
        from appliance.toolchain.sources import find_go

        try:
            from appliance.toolchain import SIM_TOOLS, Toolchain

            tc = Toolchain()
            for t in SIM_TOOLS:
                tc.path(t)
            return True, "toolchain cached"
        except Exception:  # noqa: BLE001 - availability is best effort
            pass
        if find_go():
            return True, "toolchain will be built from Go modules on first use"
        return True, "toolchain will be downloaded on first use"

    @property
    def cluster(self) -> str:
        return getattr(self.spec, "name", "appliance")

    @property
    def context(self) -> str:
        return f"sim-{self.cluster}"

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    def _p(self, *parts: str) -> Path:
        return self.state_dir.joinpath(*parts)

    # ------------------------------------------------------------------ state

    def _load(self) -> dict | None:
        try:
            st = json.loads(self._p(STATE_FILE).read_text())
            st["procs"] = {k: P.Proc(**v) for k, v in st.get("procs", {}).items()}
            return st
        except FileNotFoundError:
            return None
        except (ValueError, TypeError, KeyError) as e:
            raise UserError(f"simulator state file is unreadable ({e})", str(self._p(STATE_FILE)),
                            f"run: appliance down (or delete {self.state_dir})") from e

    def _save(self, st: dict) -> None:
        out = dict(st)
        out["procs"] = {k: v.to_dict() for k, v in st["procs"].items()}
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self._p(STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(out, indent=2))
        os.replace(tmp, self._p(STATE_FILE))

    # ------------------------------------------------------------------ toolchain

    def _binaries(self) -> dict[str, Path]:
        from appliance.toolchain import SIM_TOOLS, Toolchain

        tc = self._toolchain or Toolchain(source="auto", report=self.report)
        missing = []
        for t in SIM_TOOLS:
            try:
                tc.path(t)
            except UserError:
                missing.append(t)
        if missing:
            self.report(f"toolchain: getting {', '.join(missing)} (a first build from Go modules takes a while)")
        return tc.ensure(SIM_TOOLS)

    # ------------------------------------------------------------------ config files

    def _ports(self) -> dict[str, int]:
        want = self.spec.sim.apiserver_port if getattr(self.spec, "sim", None) else 0
        if want and not P.port_free(want):
            raise UserError(f"port {want} on 127.0.0.1 is already in use", "cluster.sim.apiserver_port",
                            "free the port or set cluster.sim.apiserver_port: 0 to pick a free one")
        picked = P.free_ports(len(PORT_KEYS), avoid={want} if want else None)
        ports = dict(zip(PORT_KEYS, picked, strict=True))
        if want:
            ports["kube-apiserver"] = want
        return ports

    def _write_configs(self, ports: dict[str, int]) -> None:
        pki = PKI(self._p("pki"))
        if not pki.exists():
            pki.create()
        etc = self._p("etc")
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
            "clientConnection": {"kubeconfig": str(etc / "scheduler.kubeconfig"), "qps": self.tuning.scheduler_qps,
                                 "burst": self.tuning.scheduler_burst},
            "leaderElection": {"leaderElect": False},
            # k8s' adaptive default scores ~42% of 1,000 nodes for every pod; 100 sampled feasible nodes
            # (the floor) keep bin-packing good and cut scheduler CPU ~4x at that size
            "percentageOfNodesToScore": self.percentage_of_nodes_to_score,
            "profiles": [{
                "schedulerName": "default-scheduler",
                "pluginConfig": [
                    {"name": "NodeResourcesFit", "args": {"scoringStrategy": self._scoring()}},
                    # no implicit spreading of ReplicaSet pods: it works against GPU bin-packing and costs
                    # O(pods) per scheduling cycle; pods that want spreading say so (topologySpreadConstraints)
                    {"name": "PodTopologySpread", "args": {"defaultingType": "List", "defaultConstraints": []}},
                ],
            }],
        }
        (etc / "scheduler.yaml").write_text(yaml.safe_dump(sched, sort_keys=False))
        sim = self.spec.sim
        (etc / "kwok.yaml").write_text(kwok_config(sim.pod_startup_seconds, sim.pod_run_seconds, self.tuning.kwok_parallelism,
                                                      self.lease_seconds))

    def _scoring(self) -> dict:
        """GPU bin-packing by default (MostAllocated, GPUs weigh most): whole nodes stay free for
        big jobs. A profile may set cluster.sim.scheduler_scoring: LeastAllocated to spread instead."""
        kind = getattr(self.spec.sim, "scheduler_scoring", "MostAllocated") or "MostAllocated"
        return {"type": kind, "resources": [{"name": "cpu", "weight": 1}, {"name": "memory", "weight": 1},
                                            {"name": GPU, "weight": 5}]}

    def _argv(self, comp: str, bins: dict[str, Path], ports: dict[str, int]) -> list[str]:
        pki, etc, tu = self._p("pki"), self._p("etc"), self.tuning
        ec = f"http://127.0.0.1:{ports['etcd']}"
        ep = f"http://127.0.0.1:{ports['etcd-peer']}"
        if comp == "etcd":
            return [str(bins["etcd"]), "--name=sim", f"--data-dir={self._p('etcd')}",
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

    # ------------------------------------------------------------------ health

    def _http_ok(self, url: str, ctx: ssl.SSLContext | None = None, timeout: float = 2.0) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=timeout, context=ctx) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def _admin_ctx(self) -> ssl.SSLContext:
        pki = self._p("pki")
        ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        return ctx

    def _healthy(self, comp: str, ports: dict[str, int]) -> bool:
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

    def _wait_healthy(self, comp: str, proc: P.Proc, ports: dict[str, int], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            if self._healthy(comp, ports):
                return
            if not proc.alive():
                raise UserError(f"{comp} exited while starting: {P.tail(proc.log) or 'no output'}", proc.log,
                                "see the log; `appliance down` cleans up")
            if time.monotonic() > deadline:
                raise UserError(f"{comp} did not become healthy within {timeout:.0f}s: {P.tail(proc.log)}", proc.log,
                                "see the log; `appliance down` cleans up")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    # ------------------------------------------------------------------ API

    def api(self):
        """A kubernetes.client.ApiClient for the admin kubeconfig."""
        if self._api is None:
            from kubernetes import config as kconfig

            self._api = kconfig.new_client_from_config(config_file=str(self.kubeconfig), context=self.context)
            self._api.configuration.connection_pool_maxsize = 64
            self._api.rest_client.pool_manager.connection_pool_kw["maxsize"] = 64
        return self._api

    def _core(self):
        from kubernetes import client

        return client.CoreV1Api(self.api())

    def _create_nodes(self) -> list[dict]:
        manifests = node_manifests(self.spec.node_classes, self.cluster)
        existing = {n["metadata"]["name"] for n in self._list_nodes()}
        todo = [m for m in manifests if m["metadata"]["name"] not in existing]
        if todo:
            self.report(f"creating {len(todo)} simulated nodes")

        api = self.api()
        pool, url = api.rest_client.pool_manager, api.configuration.host + "/api/v1/nodes"
        headers = {"Content-Type": "application/json", "Accept": "application/json"}

        def one(m):
            # straight through the client's TLS pool: the generated client's (de)serialisation costs more
            # CPU than the API server spends on the request, and at 1,000 nodes CPU is what we lack
            body = json.dumps(m).encode()
            for attempt in range(5):
                try:
                    r = pool.request("POST", url, body=body, headers=headers, timeout=60)
                except Exception as e:  # noqa: BLE001 - connection trouble: retry, then say so
                    if attempt < 4:
                        time.sleep(0.2 * (attempt + 1))
                        continue
                    raise UserError(f"creating node {m['metadata']['name']} failed: {e}", "sim",
                                    "see logs/kube-apiserver.log in the state dir") from e
                if r.status < 300 or r.status == 409:
                    return
                if r.status in (429, 500, 503) and attempt < 4:
                    time.sleep(0.2 * (attempt + 1))
                    continue
                raise UserError(f"creating node {m['metadata']['name']} failed: HTTP {r.status} "
                                f"{r.data[:200].decode(errors='replace')}", "sim", "see logs/kube-apiserver.log in the state dir")

        with ThreadPoolExecutor(max_workers=16) as ex:
            list(ex.map(one, todo))
        if todo:
            self.report(f"{len(todo)} nodes created; waiting for them to be Ready")
        return manifests

    def _list_nodes(self) -> list[dict]:
        """This cluster's simulated nodes as plain JSON dicts (no client-model decoding: 1,000 nodes stay cheap)."""
        resp = self._core().list_node(label_selector=f"{SIM_LABEL}={self.cluster}", resource_version="0",
                                      _preload_content=False)
        try:
            return json.loads(resp.data)["items"]
        finally:
            resp.release_conn()

    def wait_nodes_ready(self, names: set[str], timeout: float) -> list[dict]:
        """Poll the API until every named node is Ready; return the nodes (JSON dicts)."""
        deadline = time.monotonic() + timeout
        delay = 0.1
        while True:
            nodes = self._list_nodes()
            ready = [n for n in nodes if n["metadata"]["name"] in names and _is_ready(n)]
            if len(ready) >= len(names):
                return [n for n in nodes if n["metadata"]["name"] in names]
            if time.monotonic() > deadline:
                raise UserError(f"only {len(ready)}/{len(names)} simulated nodes became Ready within {timeout:.0f}s", "sim",
                                f"see {self._p('logs', 'kwok.log')}")
            self._check_alive()
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)

    def _wait_default_sa(self, timeout: float = 60) -> None:
        """Pods are refused until the controller-manager made namespace default's ServiceAccount."""
        from kubernetes.client.exceptions import ApiException

        core = self._core()
        deadline = time.monotonic() + timeout
        while True:
            try:
                core.read_namespaced_service_account("default", "default")
                return
            except ApiException as e:
                if e.status != 404 or time.monotonic() > deadline:
                    raise UserError("the default ServiceAccount never appeared", "sim",
                                    f"see {self._p('logs', 'kube-controller-manager.log')}") from e
            self._check_alive()
            time.sleep(0.2)

    def _check_alive(self) -> None:
        st = self._load()
        if not st:
            return
        for name, pr in st["procs"].items():
            if not pr.alive():
                raise UserError(f"{name} (pid {pr.pid}) died: {P.tail(pr.log)}", pr.log, "see the log; `appliance down` cleans up")

    # ------------------------------------------------------------------ lifecycle

    def create(self) -> ClusterInfo:
        node_manifests(self.spec.node_classes, self.cluster)  # a bad class fails before anything starts
        st = self._load()
        fresh = st is None
        started: list[P.Proc] = []
        try:
            bins = self._binaries()
            if fresh:
                if self.state_dir.exists() and any(self._p(x).exists() for x in OURS[1:]):
                    # files without a state record: an interrupted create; start over cleanly
                    self._remove_files()
                st = {"cluster": self.cluster, "ports": self._ports(), "procs": {}, "created": time.time()}
                self.state_dir.mkdir(parents=True, exist_ok=True)
                self._write_configs(st["ports"])
                self._save(st)
            else:
                dead = [n for n in COMPONENTS if n not in st["procs"] or not st["procs"][n].alive()]
                if dead:
                    self.report(f"simulator: restarting {', '.join(dead)}")
                    busy = P.busy_ports({k: v for k, v in st["ports"].items()
                                         if k in dead or (k == "etcd-peer" and "etcd" in dead)})
                    if busy:
                        raise UserError(f"ports {', '.join(busy)} recorded for this cluster are now used by something else",
                                        str(self.state_dir), "stop what uses them, or `appliance down` and up again")
                    self._write_configs(st["ports"])  # refresh kubeconfigs/configs (binaries may have moved)
            ports = st["ports"]
            for wave in WAVES:  # each wave needs the one before it healthy; within a wave they start together
                todo = [c for c in wave if not (st["procs"].get(c) and st["procs"][c].alive())]
                if not todo:
                    continue
                self.report(f"starting {', '.join(todo)}")
                for comp in todo:
                    log = self._p("logs", f"{comp}.log")
                    env = dict(os.environ)
                    env.update(self.tuning.go_gc)
                    pr = P.spawn(comp, self._argv(comp, bins, ports), log, self.state_dir, env=env)
                    st["procs"][comp] = pr
                    started.append(pr)
                    self._save(st)
                for comp in todo:
                    self._wait_healthy(comp, st["procs"][comp], ports, self.start_timeout)
            manifests = self._create_nodes()
            names = {m["metadata"]["name"] for m in manifests}
            self.wait_nodes_ready(names, timeout=60 + 0.1 * len(names))
            self._wait_default_sa()
        except BaseException as e:
            # nothing left half-started
            if fresh:
                self._teardown()
            else:
                P.stop_all(started)
            if isinstance(e, UserError) or not isinstance(e, Exception):
                raise
            msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
            raise UserError(f"simulator failed to start: {msg}", str(self.state_dir), "see logs/ in the state dir") from e
        self.report(f"simulator ready: {len(names)} nodes, kubeconfig {self.kubeconfig}")
        return ClusterInfo(name=self.cluster, kubeconfig=self.kubeconfig, context=self.context, nodes=self.nodes())

    def nodes(self) -> list[dict]:
        out = []
        for n in self._list_nodes():
            alloc = n.get("status", {}).get("allocatable") or {}
            labels = n["metadata"].get("labels") or {}
            out.append({
                "name": n["metadata"]["name"],
                "node_class": labels.get(CLASS_LABEL, ""),
                "ready": _is_ready(n),
                "cpu": alloc.get("cpu", ""),
                "memory": alloc.get("memory", ""),
                "gpus": int(alloc.get(GPU, "0")),
                "gpu_product": labels.get("nvidia.com/gpu.product", ""),
            })
        return sorted(out, key=lambda d: _natural(d["name"]))

    def ready(self) -> bool:
        try:
            st = self._load()
        except UserError:
            return False
        if not st or not all(n in st["procs"] and st["procs"][n].alive() for n in COMPONENTS):
            return False
        return self._healthy("kube-apiserver", st["ports"])

    def status(self) -> dict[str, Any]:
        st = self._load()
        if not st:
            return {"provider": "sim", "state": "absent", "state_dir": str(self.state_dir), "processes": []}
        procs = [st["procs"][n].info() if n in st["procs"] else {"name": n, "pid": 0, "alive": False, "rss_bytes": 0}
                 for n in COMPONENTS]
        alive = [p["alive"] for p in procs]
        state = "running" if all(alive) else ("stopped" if not any(alive) else "degraded")
        out = {
            "provider": "sim",
            "state": state,
            "state_dir": str(self.state_dir),
            "kubeconfig": str(self.kubeconfig),
            "context": self.context,
            "apiserver": f"https://127.0.0.1:{st['ports']['kube-apiserver']}",
            "ports": st["ports"],
            "processes": procs,
            "crashed": [p["name"] for p in procs if not p["alive"]],
            "rss_bytes_total": sum(p["rss_bytes"] for p in procs),
            "network_policy": NETWORK_POLICY,
        }
        if state != "stopped" and self._healthy("kube-apiserver", st["ports"]):
            try:
                ns = self.nodes()
                out["nodes"] = {"total": len(ns), "ready": sum(n["ready"] for n in ns), "gpus": sum(n["gpus"] for n in ns)}
            except Exception as e:  # noqa: BLE001 - status must not fail on a flaky API
                out["nodes_error"] = str(e).splitlines()[0]
        return out

    def _remove_files(self) -> None:
        for name in OURS + [STATE_FILE + ".tmp"]:
            p = self._p(name)
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            elif p.exists() or p.is_symlink():
                p.unlink(missing_ok=True)
        try:
            self.state_dir.rmdir()  # only if nothing else lives there
        except OSError:
            pass

    def _teardown(self) -> None:
        try:
            st = self._load()
        except UserError:
            st = None
        if st:
            P.stop_all(list(st["procs"].values()))
        self._remove_files()

    def delete(self) -> None:
        self.report("stopping simulator processes")
        self._api = None
        self._teardown()

    def collect_logs(self, dest: Path) -> Path:
        out = Path(dest) / "sim"
        out.mkdir(parents=True, exist_ok=True)
        logs = self._p("logs")
        if logs.is_dir():
            for f in logs.iterdir():
                shutil.copy2(f, out / f.name)
        try:
            (out / "status.json").write_text(json.dumps(self.status(), indent=2, default=str))
        except Exception as e:  # noqa: BLE001
            (out / "status.json").write_text(json.dumps({"error": str(e)}))
        for f in ("etc/kwok.yaml", "etc/scheduler.yaml"):
            if self._p(f).exists():
                shutil.copy2(self._p(f), out / Path(f).name)
        return out


def _is_ready(n: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in (n.get("status", {}).get("conditions") or []))


def _natural(s: str):
    import re

    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]
