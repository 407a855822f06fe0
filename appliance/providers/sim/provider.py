"""The simulator provider: a real control plane (etcd, kube-apiserver, controller-manager,
scheduler) plus kwok pretending to be the kubelets, all local daemonized processes.

Concerns: state.py (the record and the files), processes.py (the control plane's processes),
nodes.py (the simulated nodes), pki.py, stages.py (kwok), sizing.py (control-plane settings by cluster size).

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
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from appliance import procs as P
from appliance.errors import UserError
from appliance.kube import api_client
from appliance.providers.base import ClusterInfo, ColdBuild, Provider
from appliance.providers.sim import nodes
from appliance.providers.sim.nodes import node_manifests
from appliance.providers.sim.processes import COMPONENTS, ControlPlane
from appliance.providers.sim.sizing import sizing
from appliance.providers.sim.state import SimRecord
from appliance.util import wait

#: what `status` says about NetworkPolicy here
NETWORK_POLICY = "objects only: simulated nodes have no data plane, so NetworkPolicies are stored, never enforced"


class SimProvider(Provider):
    """Local control plane + kwok nodes shaped like the profile's node classes."""
    pods_run = False  # kwok nodes: pods are placed and their phases simulated; no container runs

    name = "sim"
    e2e_profile = "sim-dgx-pod"
    auto_order = 1

    @classmethod
    def auto_reason(cls, docker: dict[str, Any]) -> str:
        return f"no Docker daemon answers ({docker['error']}); the simulator needs none"

    @classmethod
    def cold_build(cls, spec: Any) -> ColdBuild:
        """The control plane's and kwok's binaries."""
        from appliance.toolchain import SIM_TOOLS

        return ColdBuild(tools=list(SIM_TOOLS))

    def __init__(self, spec: Any, state_dir: Path, report: Callable[[str], None] | None = None, toolchain=None):
        super().__init__(spec, state_dir, report)
        self._toolchain = toolchain
        self._api = None
        #: settings sized to the node count (sizing.py)
        self.sizing = sizing(sum(nc.count for nc in spec.node_classes), spec.sim.sizing)
        self.record = SimRecord(self.state_dir)
        self.control_plane = ControlPlane(spec, self.state_dir, self.sizing, self.cluster, self.context, self.kubeconfig)

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

    # ------------------------------------------------------------------ toolchain

    def prebuild(self) -> None:
        """The control plane's and kwok's binaries."""
        self._binaries()

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

    # ------------------------------------------------------------------ API

    def api(self):
        """A kubernetes.client.ApiClient for the admin kubeconfig."""
        if self._api is None:
            self._api = api_client(self.kubeconfig, self.context)
            self._api.configuration.connection_pool_maxsize = 64
            self._api.rest_client.pool_manager.connection_pool_kw["maxsize"] = 64
        return self._api

    def _core(self):
        from kubernetes import client

        return client.CoreV1Api(self.api())

    def _wait_default_sa(self, timeout: float = 60) -> None:
        """Pods are refused until the controller-manager made namespace default's ServiceAccount."""
        from kubernetes.client.exceptions import ApiException

        core = self._core()
        fix = f"see {self._p('logs', 'kube-controller-manager.log')}"

        def made() -> tuple[bool, str]:
            try:
                core.read_namespaced_service_account("default", "default")
                return True, ""
            except ApiException as e:
                if e.status != 404:
                    raise UserError("the default ServiceAccount never appeared", "sim", fix) from e
                return False, ""

        if not wait.within(made, timeout, interval=0.2, alive=self._check_alive)[0]:
            raise UserError("the default ServiceAccount never appeared", "sim", fix)

    def _check_alive(self) -> None:
        st = self.record.load()
        if not st:
            return
        for name, pr in st["procs"].items():
            if not pr.alive():
                raise UserError(f"{name} (pid {pr.pid}) died: {P.tail(pr.log)}", pr.log, "see the log; `appliance down` cleans up")

    # ------------------------------------------------------------------ lifecycle

    def create(self) -> ClusterInfo:
        node_manifests(self.spec.node_classes, self.cluster)  # a bad class fails before anything starts
        st = self.record.load()
        fresh = st is None
        started: list[P.Proc] = []
        try:
            bins = self._binaries()
            if fresh:
                if self.record.leftovers():  # an interrupted create; start over cleanly
                    self.record.remove()
                st = {"cluster": self.cluster, "ports": self.control_plane.pick_ports(), "procs": {}, "created": time.time()}
                self.state_dir.mkdir(parents=True, exist_ok=True)
                self.control_plane.write_configs(st["ports"])
                self.record.save(st)
            else:
                dead = [n for n in COMPONENTS if n not in st["procs"] or not st["procs"][n].alive()]
                if dead:
                    self.report(f"simulator: restarting {', '.join(dead)}")
                    busy = P.busy_ports({k: v for k, v in st["ports"].items()
                                         if k in dead or (k == "etcd-peer" and "etcd" in dead)})
                    if busy:
                        raise UserError(f"ports {', '.join(busy)} recorded for this cluster are now used by something else",
                                        str(self.state_dir), "stop what uses them, or `appliance down` and up again")
                    self.control_plane.write_configs(st["ports"])  # refresh kubeconfigs/configs (binaries may have moved)
            self.control_plane.start(st, bins, started, self.record.save, self.report)
            manifests = node_manifests(self.spec.node_classes, self.cluster)
            nodes.create_nodes(self.api(), manifests, self.cluster, self.report)
            names = {m["metadata"]["name"] for m in manifests}
            nodes.wait_ready(self.api(), self.cluster, names, 60 + 0.1 * len(names), self._check_alive,
                             str(self._p("logs", "kwok.log")))
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
        """One row per simulated node (nodes.summary)."""
        return nodes.summary(nodes.list_nodes(self.api(), self.cluster))

    def ready(self) -> bool:
        try:
            st = self.record.load()
        except UserError:
            return False
        if not st or not all(n in st["procs"] and st["procs"][n].alive() for n in COMPONENTS):
            return False
        return self.control_plane.healthy("kube-apiserver", st["ports"])

    def status(self) -> dict[str, Any]:
        st = self.record.load()
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
        if state != "stopped" and self.control_plane.healthy("kube-apiserver", st["ports"]):
            try:
                ns = self.nodes()
                out["nodes"] = {"total": len(ns), "ready": sum(n["ready"] for n in ns), "gpus": sum(n["gpus"] for n in ns)}
            except Exception as e:  # noqa: BLE001 - status must not fail on a flaky API
                out["nodes_error"] = str(e).splitlines()[0]
        return out

    def _teardown(self) -> None:
        try:
            st = self.record.load()
        except UserError:
            st = None
        if st:
            P.stop_all(list(st["procs"].values()))
        self.record.remove()

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
                if f.is_file():  # the export itself may be a folder in there (the cluster's logs/<time>)
                    shutil.copy2(f, out / f.name)
        try:
            (out / "status.json").write_text(json.dumps(self.status(), indent=2, default=str))
        except Exception as e:  # noqa: BLE001
            (out / "status.json").write_text(json.dumps({"error": str(e)}))
        for f in ("etc/kwok.yaml", "etc/scheduler.yaml"):
            if self._p(f).exists():
                shutil.copy2(self._p(f), out / Path(f).name)
        return out
