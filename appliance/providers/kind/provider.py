"""kind provider: a Docker-in-Docker cluster from our locally built node image.

create() writes a kind config from the profile, runs the toolchain's `kind`, then waits on
the API (watch streams, no fixed sleeps) until every node is Ready and every kube-system
pod is Running. A failed create exports `kind` logs into a folder it names.
GPUs: with NVML GPUs and the NVIDIA container toolkit set up for volume-mount device
selection, GPU nodes get `/dev/null -> /var/run/nvidia-container-devices/<index>` mounts
(the nvkind mechanism), so each node container sees only its GPUs.
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
from appliance.images.delivery import node_mirrors
from appliance.providers.base import ClusterInfo, Provider

KIND_API = "kind.x-k8s.io/v1alpha4"
NVIDIA_DEVICES_DIR = "/var/run/nvidia-container-devices"
NVIDIA_RUNTIME_CONFIG = Path("/etc/nvidia-container-runtime/config.toml")
GPU_SETUP = Path(__file__).resolve().parents[2] / "images" / "node" / "gpu-setup.sh"
CREATE_TIMEOUT_S = 600

_PORT_KEYS = {"container_port": "containerPort", "host_port": "hostPort", "listen_address": "listenAddress"}
_MOUNT_KEYS = {
    "host_path": "hostPath", "container_path": "containerPath", "read_only": "readOnly",
    "selinux_relabel": "selinuxRelabel",
}  # fmt: skip


def _camel(d: dict[str, Any], keys: dict[str, str]) -> dict[str, Any]:
    return {keys.get(k, k): v for k, v in d.items()}


# --------------------------------------------------------------------------- GPUs


def detect_gpus() -> list[dict[str, Any]]:
    """GPUs NVML sees on this host: [{index, uuid, name}]; [] without a driver or pynvml."""
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return []
    try:
        out = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            uuid, name = pynvml.nvmlDeviceGetUUID(h), pynvml.nvmlDeviceGetName(h)
            out.append({
                "index": i,
                "uuid": uuid.decode() if isinstance(uuid, bytes) else uuid,
                "name": name.decode() if isinstance(name, bytes) else name,
            })  # fmt: skip
        return out
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


def nvidia_toolkit() -> tuple[bool, str]:
    """Whether the NVIDIA container toolkit can hand GPUs to kind nodes through volume mounts."""
    if not (shutil.which("nvidia-ctk") or shutil.which("nvidia-container-runtime")):
        return False, "NVIDIA container toolkit not installed"
    try:
        text = NVIDIA_RUNTIME_CONFIG.read_text()
    except OSError:
        return False, f"{NVIDIA_RUNTIME_CONFIG} missing"
    for line in text.splitlines():
        k, _, v = line.partition("=")
        if k.strip() == "accept-nvidia-visible-devices-as-volume-mounts" and v.strip().lower() == "true":
            return True, ""
    return False, (
        "accept-nvidia-visible-devices-as-volume-mounts is off; run: nvidia-ctk config --in-place "
        "--set accept-nvidia-visible-devices-as-volume-mounts=true && nvidia-ctk runtime configure "
        "--runtime=docker --set-as-default && systemctl restart docker"
    )


def gpu_assignment(gpus: list[dict[str, Any]], control_planes: int, workers: int, mode: str = "auto") -> dict[int, list[int]]:
    """Node position (0-based, control planes first) -> GPU indexes it gets.

    auto: GPUs are split into contiguous, disjoint groups across the workers (the control
    plane gets them all when there are no workers); all: every GPU node sees every GPU;
    none: no GPUs.
    """
    if mode == "none" or not gpus:
        return {}
    idx = [g["index"] for g in gpus]
    targets = list(range(control_planes, control_planes + workers)) or [0]
    if mode == "all":
        return {t: list(idx) for t in targets}
    out: dict[int, list[int]] = {}
    n = len(targets)
    base, extra = divmod(len(idx), n)
    start = 0
    for i, t in enumerate(targets):
        size = base + (1 if i < extra else 0)
        if size:
            out[t] = idx[start : start + size]
        start += size
    return out


def gpu_mounts(indexes: list[int]) -> list[dict[str, Any]]:
    """extraMounts that make the toolkit inject exactly these GPUs into a node container."""
    return [{"hostPath": "/dev/null", "containerPath": f"{NVIDIA_DEVICES_DIR}/{i}"} for i in indexes]


# --------------------------------------------------------------------------- config


def kind_config(spec: Any, image: str, gpus: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The kind Cluster config for a profile's `cluster` section."""
    k = spec.kind
    mode = getattr(k, "gpus", "auto")
    assign = gpu_assignment(gpus or [], spec.control_planes, spec.workers, mode)
    mounts = [_camel(m, _MOUNT_KEYS) for m in k.extra_mounts]
    ports = [_camel(p, _PORT_KEYS) for p in k.port_mappings]
    nodes: list[dict[str, Any]] = []
    roles = ["control-plane"] * spec.control_planes + ["worker"] * spec.workers
    for pos, role in enumerate(roles):
        node: dict[str, Any] = {"role": role, "image": image}
        mine = [dict(p) for p in ports if p.get("role", "control-plane") == role]
        first_of_role = pos == roles.index(role)
        if mine and first_of_role:
            node["extraPortMappings"] = [{kk: vv for kk, vv in p.items() if kk != "role"} for p in mine]
        node_mounts = list(mounts) + gpu_mounts(assign.get(pos, []))
        if node_mounts:
            node["extraMounts"] = node_mounts
        if assign.get(pos):
            node["labels"] = {"nvidia.com/gpu.present": "true"}
        nodes.append(node)
    cfg: dict[str, Any] = {"kind": "Cluster", "apiVersion": KIND_API, "name": spec.name, "nodes": nodes}
    mirrors = node_mirrors(spec.images)
    if mirrors:
        cfg["containerdConfigPatches"] = [containerd_mirrors(mirrors)]
    if k.feature_gates:
        cfg["featureGates"] = dict(k.feature_gates)
    return cfg


def containerd_mirrors(mirrors: dict[str, str]) -> str:
    """containerd (config v2, CRI) lines sending pulls of each registry host to its mirror endpoint."""
    lines = []
    for host, url in sorted(mirrors.items()):
        lines += [f'[plugins."io.containerd.grpc.v1.cri".registry.mirrors."{host}"]', f'  endpoint = ["{url}"]']
    return "\n".join(lines) + "\n"


def node_names(name: str, control_planes: int, workers: int) -> list[str]:
    """The container names kind gives the nodes."""
    cps = [f"{name}-control-plane"] + [f"{name}-control-plane{i}" for i in range(2, control_planes + 1)]
    ws = ([f"{name}-worker"] if workers else []) + [f"{name}-worker{i}" for i in range(2, workers + 1)]
    return cps + ws


# --------------------------------------------------------------------------- provider


class KindProvider(Provider):
    name = "kind"

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
        gpus = self._gpus()
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
                self._gpu_post_create(cfg)
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

    def _gpus(self) -> list[dict[str, Any]]:
        if getattr(self.spec.kind, "gpus", "auto") == "none":
            return []
        gpus = detect_gpus()
        if not gpus:
            return []
        ok, why = nvidia_toolkit()
        if not ok:
            self.report(f"{len(gpus)} GPU(s) found but not handed to kind nodes: {why}")
            return []
        return gpus

    def _gpu_post_create(self, cfg: dict[str, Any]) -> None:
        """What nvkind does after create, on each node that got GPU mounts: drop the toolkit's
        /proc/driver/nvidia mount (it would hide the driver from the in-node toolkit), then install
        the toolkit inside the node and make it containerd's default runtime (images/node/gpu-setup.sh)."""
        script = GPU_SETUP.read_text()
        names = node_names(self.cluster, self.spec.control_planes, self.spec.workers)
        for name, node in zip(names, cfg["nodes"], strict=False):
            if not any(m["containerPath"].startswith(NVIDIA_DEVICES_DIR) for m in node.get("extraMounts", [])):
                continue
            subprocess.run(["docker", "exec", name, "umount", "-R", "/proc/driver/nvidia"], capture_output=True)
            self.report(f"{name}: installing the NVIDIA container toolkit in the node")
            r = subprocess.run(["docker", "exec", "-i", name, "bash", "-s"], input=script, capture_output=True, text=True)
            if r.returncode != 0:
                self._fail(f"GPU setup in node {name} failed: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")

    def _fail(self, what: str) -> None:
        logs = self.state_dir / "logs"
        try:
            folder = self.collect_logs(logs)
        except Exception:
            folder = logs
        self._run("delete", "cluster", "--name", self.cluster, "--kubeconfig", str(self.kubeconfig))
        raise UserError(what, f"kind cluster '{self.cluster}'", f"see the logs in {folder}")

    def _api(self):
        from kubernetes import client, config

        api = config.new_client_from_config(config_file=str(self.kubeconfig), context=self.context)
        return client.CoreV1Api(api)

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
        last = ""
        while True:
            nodes = v1.list_node(_request_timeout=10).items
            pods = v1.list_namespaced_pod("kube-system", _request_timeout=10)
            not_ready = [n.metadata.name for n in nodes if not _node_ready(n)]
            pending = [p.metadata.name for p in pods.items if not _pod_ok(p)]
            if len(nodes) >= want and not not_ready and not pending and pods.items:
                return ClusterInfo(self.cluster, self.kubeconfig, self.context, [_node_row(n) for n in nodes])
            msg = f"waiting: {len(nodes)}/{want} nodes, not ready: {not_ready or '-'}, pods pending: {pending or '-'}"
            if msg != last:
                self.report(msg)
                last = msg
            left = deadline - time.monotonic()
            if left <= 0:
                raise UserError(f"cluster not ready after {CREATE_TIMEOUT_S}s ({msg})")
            # Wake on the next pod change in kube-system (node readiness changes pods too).
            w = watch.Watch()
            for _ in w.stream(
                v1.list_namespaced_pod, "kube-system", resource_version=pods.metadata.resource_version,
                timeout_seconds=max(1, min(5, int(left))), _request_timeout=10,
            ):  # fmt: skip
                w.stop()
                break


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


__all__ = ["KindProvider", "kind_config", "gpu_assignment", "gpu_mounts", "detect_gpus", "nvidia_toolkit", "node_names"]
