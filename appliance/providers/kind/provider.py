"""The kind provider.

create() writes a kind config from the profile (config.py), runs the toolchain's `kind`, then
waits on the API (watch streams, no fixed sleeps) until every node is Ready and every
kube-system pod is Running. A failed create exports `kind` logs into a folder it names.
GPU nodes are set up the nvkind way (gpu.py).
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from appliance.errors import UserError
from appliance.host import Need
from appliance.kube import api_client
from appliance.providers.base import ClusterInfo, ColdBuild, Provider
from appliance.providers.kind import gpu
from appliance.providers.kind.config import kind_config, node_names
from appliance.util import wait

CREATE_TIMEOUT_S = 600
GCC = Need("gcc", ("gcc", "libc6-dev"), "the pause program of the kind node image")


class KindProvider(Provider):
    """A kind cluster from the appliance's node image."""

    name = "kind"
    needs_docker = True
    needs_kernel = True
    programs = (GCC,)
    auto_order = 0

    @classmethod
    def auto_reason(cls, docker: dict[str, Any]) -> str:
        return f"a Docker daemon ({docker['version']}) answers" if docker["daemon"] else ""

    @classmethod
    def cold_build(cls, spec: Any) -> ColdBuild:
        """The node image's root filesystems and gcc (unless the profile names an image), the node's
        toolchain and Go programs, and the node image itself."""
        from appliance.images import debian, node
        from appliance.images.gobuild import PROGRAMS

        built_here = not spec.kind.image
        node_missing = built_here and not debian.rootfs_path("node", debian.NODE_PACKAGES).exists()
        return ColdBuild(
            rootfs={"node": debian.NODE_PACKAGES, "slim": debian.SLIM_PACKAGES} if built_here else {},
            programs=[(GCC, "the kind node image is built here")] if node_missing else [],
            tools=list(node.TOOLS),
            go=[(module, version, name) for name, (module, version, _) in PROGRAMS.items()],
            builds=[] if node.built_before() else ["node image"],
        )

    @classmethod
    def port_mappings(cls, spec: Any) -> list[dict[str, Any]]:
        """The profile's cluster.kind.port_mappings: host ports kind maps to the nodes' ports."""
        return list(spec.kind.port_mappings)

    @classmethod
    def available(cls) -> tuple[bool, str]:
        if not shutil.which("docker"):
            return False, "docker client not installed"
        try:
            r = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=15)
        except subprocess.TimeoutExpired:
            return False, "Docker daemon does not answer (15 s)"
        if r.returncode != 0 or not r.stdout.strip():
            return False, "Docker daemon not running: " + (r.stderr.strip().splitlines() or ["no answer"])[-1]
        return True, f"Docker {r.stdout.strip()}"

    # -- helpers

    @property
    def cluster(self) -> str:
        return self.spec.name

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def context(self) -> str:
        return f"kind-{self.cluster}"

    def _kind(self) -> Path:
        if getattr(self, "_kind_path", None) is None:
            from appliance.images.tools import ensure_tools

            self._kind_path = ensure_tools(["kind"], report=self.report)["kind"]
        return self._kind_path

    def _run(self, *args: str, timeout: float | None = None, check: bool = False) -> subprocess.CompletedProcess:
        r = subprocess.run([str(self._kind()), *args], capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            tail = (r.stderr or r.stdout).strip().splitlines()
            raise UserError(f"kind {args[0]} failed: {tail[-1] if tail else r.returncode}", "kind")
        return r

    def exists(self) -> bool:
        r = self._run("get", "clusters")
        return self.cluster in r.stdout.split()

    def containers(self) -> list[dict[str, str]]:
        r = subprocess.run(
            ["docker", "ps", "-a", "--filter", f"label=io.x-k8s.kind.cluster={self.cluster}",
             "--format", "{{.Names}}\t{{.State}}\t{{.Status}}"],
            capture_output=True, text=True,
        )  # fmt: skip
        out = []
        for line in r.stdout.splitlines():
            name, state, status = (line.split("\t") + ["", ""])[:3]
            out.append({"name": name, "state": state, "status": status})
        return out

    def prebuild(self) -> None:
        """kind itself and the node image (with what it pre-loads)."""
        self._kind()
        self.image()

    def image(self) -> str:
        if self.spec.kind.image:
            return self.spec.kind.image
        from appliance.images.node import build_node_image

        return build_node_image(report=self.report).tag

    # -- seam

    def create(self) -> ClusterInfo:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.exists():
            if self._api_answers():
                self.report(f"kind cluster '{self.cluster}' exists; waiting for it to be ready")
                return self._wait_ready(time.monotonic() + CREATE_TIMEOUT_S)
            self.report(f"kind cluster '{self.cluster}' is half-made; recreating it")
            self.delete()
        image = self.image()
        gpus = gpu.usable_gpus(getattr(self.spec.kind, "gpus", "auto"), self.report)
        cfg = kind_config(self.spec, image, gpus)
        cfg_path = self.state_dir / "kind-config.yaml"
        cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        self.report(
            f"creating kind cluster '{self.cluster}' ({self.spec.control_planes} control plane, {self.spec.workers} workers) from {image}"
        )
        deadline = time.monotonic() + CREATE_TIMEOUT_S
        # the Kubernetes client takes a second or two to import: do it while kind works
        warm = threading.Thread(target=_import_client, daemon=True)
        warm.start()
        r = subprocess.run(
            [str(self._kind()), "create", "cluster", "--name", self.cluster, "--config", str(cfg_path),
             "--kubeconfig", str(self.kubeconfig), "--retain"],
            capture_output=True, text=True,
        )  # fmt: skip
        (self.state_dir / "kind-create.log").write_text(r.stdout + r.stderr)
        if r.returncode != 0:
            self._fail("kind create cluster failed: " + _last_error(r.stderr or r.stdout))
        try:
            if gpus:
                gpu.setup_nodes(node_names(self.cluster, self.spec.control_planes, self.spec.workers), cfg["nodes"], self.report)
            return self._wait_ready(deadline)
        except UserError as e:
            self._fail(e.what)
        raise AssertionError("unreachable")

    def ready(self) -> bool:
        try:
            return self.exists() and self._api_answers()
        except (UserError, OSError, subprocess.SubprocessError):
            return False

    def delete(self) -> None:
        self._run("delete", "cluster", "--name", self.cluster, "--kubeconfig", str(self.kubeconfig))
        left = [c["name"] for c in self.containers()]
        if left:  # kind only removes what it can see; make sure nothing stays
            subprocess.run(["docker", "rm", "-f", "-v", *left], capture_output=True, text=True)
        self.kubeconfig.unlink(missing_ok=True)

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"provider": "kind", "cluster": self.cluster, "kubeconfig": str(self.kubeconfig),
                               "context": self.context, "containers": self.containers(), "nodes": [], "pods": []}  # fmt: skip
        out["exists"] = bool(out["containers"])
        if out["exists"] and self.kubeconfig.exists():
            try:
                nodes, pods = self._snapshot()
                out["nodes"] = [_node_row(n) for n in nodes]
                out["pods"] = [_pod_row(p) for p in pods]
            except Exception as e:  # status must never raise for an unreachable API
                out["error"] = str(e).splitlines()[0][:200]
        return out

    def collect_logs(self, dest: Path) -> Path:
        folder = Path(dest) / f"kind-{self.cluster}-{time.strftime('%Y%m%d-%H%M%S')}"
        folder.mkdir(parents=True, exist_ok=True)
        r = self._run("export", "logs", str(folder), "--name", self.cluster)
        (folder / "kind-export.log").write_text(r.stdout + r.stderr)
        return folder

    # -- internals

    def _fail(self, what: str) -> None:
        logs = self.state_dir / "logs"
        try:
            folder = self.collect_logs(logs)
        except Exception:
            folder = logs
        self._run("delete", "cluster", "--name", self.cluster, "--kubeconfig", str(self.kubeconfig))
        raise UserError(what, f"kind cluster '{self.cluster}'", f"see the logs in {folder}")

    def _api(self):
        from kubernetes import client

        return client.CoreV1Api(api_client(self.kubeconfig, self.context))

    def _api_answers(self) -> bool:
        if not self.kubeconfig.exists():
            r = self._run("get", "kubeconfig", "--name", self.cluster)
            if r.returncode != 0:
                return False
            self.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
            self.kubeconfig.write_text(r.stdout)
        try:
            self._api().list_node(_request_timeout=5)
            return True
        except Exception:
            return False

    def _snapshot(self):
        v1 = self._api()
        nodes = v1.list_node(_request_timeout=10).items
        pods = v1.list_namespaced_pod("kube-system", _request_timeout=10).items
        return nodes, pods

    def _wait_ready(self, deadline: float) -> ClusterInfo:
        """Block until every node is Ready and every kube-system pod Running (watch-driven)."""
        from kubernetes import watch

        v1 = self._api()
        want = self.spec.control_planes + self.spec.workers
        nodes, pods, last = [], None, ""

        def ready() -> tuple[bool, str]:
            nonlocal nodes, pods, last
            nodes = v1.list_node(_request_timeout=10).items
            pods = v1.list_namespaced_pod("kube-system", _request_timeout=10)
            not_ready = [n.metadata.name for n in nodes if not _node_ready(n)]
            pending = [p.metadata.name for p in pods.items if not _pod_ok(p)]
            if len(nodes) >= want and not not_ready and not pending and pods.items:
                return True, ""
            msg = f"waiting: {len(nodes)}/{want} nodes, not ready: {not_ready or '-'}, pods pending: {pending or '-'}"
            if msg != last:
                self.report(msg)
                last = msg
            return False, msg

        def next_change(seconds: float) -> None:
            """Wake on the next pod change in kube-system (node readiness changes pods too)."""
            w = watch.Watch()
            for _ in w.stream(
                v1.list_namespaced_pod, "kube-system", resource_version=pods.metadata.resource_version,
                timeout_seconds=max(1, int(seconds)), _request_timeout=10,
            ):  # fmt: skip
                w.stop()
                break

        ok, msg = wait.within(ready, deadline - time.monotonic(), interval=5, sleep=next_change)
        if not ok:
            raise UserError(f"cluster not ready after {CREATE_TIMEOUT_S}s ({msg})")
        return ClusterInfo(self.cluster, self.kubeconfig, self.context, [_node_row(n) for n in nodes])


def _import_client() -> None:
    try:
        import kubernetes.client  # noqa: F401
        import kubernetes.config  # noqa: F401
        import kubernetes.watch  # noqa: F401
    except Exception:
        pass


def _last_error(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("ERROR"):
            return line.removeprefix("ERROR:").strip()[:300]
    return lines[-1][:300] if lines else "no output"


def _node_ready(n) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (n.status.conditions or []))


def _pod_ok(p) -> bool:
    """Succeeded, or Running with every container started (readiness probes may still be warming up)."""
    if p.status.phase == "Succeeded":
        return True
    if p.status.phase != "Running":
        return False
    return all(cs.state is not None and cs.state.running is not None for cs in (p.status.container_statuses or []))


def _node_row(n) -> dict[str, Any]:
    labels = n.metadata.labels or {}
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/")) or ["worker"]
    return {
        "name": n.metadata.name, "ready": _node_ready(n), "roles": roles,
        "version": n.status.node_info.kubelet_version if n.status.node_info else "",
        "gpus": int((n.status.capacity or {}).get("nvidia.com/gpu", 0)),
    }  # fmt: skip


def _pod_row(p) -> dict[str, Any]:
    return {"namespace": p.metadata.namespace, "name": p.metadata.name, "phase": p.status.phase,
            "ready": _pod_ok(p), "node": p.spec.node_name or ""}  # fmt: skip

