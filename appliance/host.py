"""Observe the host (never changes it): CPU, memory, disk, kernel, cgroups, capabilities, Docker, NVIDIA GPUs."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Need:
    """A program a plan runs on the host, the Debian packages that bring it, and what it is for."""

    program: str
    packages: tuple[str, ...]
    why: str


CAPS = {"CAP_NET_ADMIN": 12, "CAP_SYS_ADMIN": 21, "CAP_SYS_RESOURCE": 24}


@dataclass
class Gpu:
    index: int
    name: str
    memory_mib: int
    mig_mode: str  # enabled | disabled | unsupported
    uuid: str = ""


@dataclass
class GpuInfo:
    nvml: bool
    driver: str = ""
    cuda_driver: str = ""
    gpus: list[Gpu] = field(default_factory=list)
    error: str = ""


def gpus() -> GpuInfo:
    """NVIDIA GPUs through NVML (nvidia-ml-py); `nvml=False` where the library or driver is absent."""
    try:
        import pynvml
    except ImportError:
        return GpuInfo(nvml=False, error="nvidia-ml-py is not installed")
    try:
        pynvml.nvmlInit()
    except Exception as e:  # noqa: BLE001 — NVMLError_LibraryNotFound / DriverNotLoaded etc.
        return GpuInfo(nvml=False, error=str(e) or type(e).__name__)
    try:
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
        cuda = pynvml.nvmlSystemGetCudaDriverVersion()
        out = GpuInfo(nvml=True, driver=driver, cuda_driver=f"{cuda // 1000}.{cuda % 1000 // 10}")
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            try:
                current, _pending = pynvml.nvmlDeviceGetMigMode(h)
                mig = "enabled" if current else "disabled"
            except pynvml.NVMLError:
                mig = "unsupported"
            out.gpus.append(Gpu(
                index=i, name=_text(pynvml.nvmlDeviceGetName(h)),
                memory_mib=pynvml.nvmlDeviceGetMemoryInfo(h).total // (1024 * 1024),
                mig_mode=mig, uuid=_text(pynvml.nvmlDeviceGetUUID(h)),
            ))
        return out
    finally:
        pynvml.nvmlShutdown()


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def docker() -> dict[str, Any]:
    """Docker client and daemon: {'client': bool, 'daemon': bool, 'version': str, 'error': str, 'runtimes': [...]}"""
    if not shutil.which("docker"):
        return {"client": False, "daemon": False, "version": "", "error": "docker client not found", "runtimes": []}
    try:
        r = subprocess.run(["docker", "info", "--format", "{{json .}}"], capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        return {"client": True, "daemon": False, "version": "", "error": "docker info timed out", "runtimes": []}
    if r.returncode != 0:
        return {"client": True, "daemon": False, "version": "", "error": (r.stderr.strip().splitlines() or ["no daemon"])[-1], "runtimes": []}
    info = json.loads(r.stdout)
    return {
        "client": True, "daemon": True, "version": info.get("ServerVersion", ""), "error": "",
        "runtimes": sorted(info.get("Runtimes") or {}), "default_runtime": info.get("DefaultRuntime", ""),
        "cgroup_driver": info.get("CgroupDriver", ""),
    }


def cgroup_version() -> int:
    """2 on the unified hierarchy, else 1."""
    return 2 if Path("/sys/fs/cgroup/cgroup.controllers").exists() else 1


def bounding_caps() -> dict[str, bool]:
    """Which of the capabilities privileged containers need are in this process's bounding set."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            mask = int(line.split()[1], 16)
            return {name: bool(mask >> bit & 1) for name, bit in CAPS.items()}
    return {name: False for name in CAPS}


def kernel_features(root: Path = Path("/")) -> dict[str, str]:
    """What kind and kubelet need from the kernel, found by function rather than by module list (a built-in
    module has no /proc/modules line and often no /sys/module entry): each feature → the path that proves
    it ('' when missing). `root` is where /proc and /sys live (a fake tree in tests)."""
    modules = root / "proc/modules"
    loaded = {ln.split()[0] for ln in modules.read_text().splitlines() if ln.strip()} if modules.exists() else set()

    def found(*paths: str) -> str:
        return next((f"/{p}" for p in paths if (root / p).exists()), "")

    def module(*names: str) -> str:
        return next((f"/proc/modules ({n})" for n in names if n in loaded), "") or found(*(f"sys/module/{n}" for n in names))

    filesystems = root / "proc/filesystems"
    overlay = filesystems.exists() and "overlay" in filesystems.read_text().split()
    return {
        "overlay": "/proc/filesystems (overlay)" if overlay else module("overlay"),
        "br_netfilter": found("proc/sys/net/bridge/bridge-nf-call-iptables") or module("br_netfilter"),
        "iptables": found("proc/net/ip_tables_names") or module("ip_tables", "nf_tables"),
        "nf_conntrack": found("proc/sys/net/netfilter/nf_conntrack_max", "proc/net/nf_conntrack") or module("nf_conntrack"),
    }


def sysctl(name: str) -> int | None:
    p = Path("/proc/sys", *name.split("."))
    try:
        return int(p.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def resources(disk_path: Path) -> dict[str, Any]:
    import psutil

    probe = disk_path
    while not probe.exists():
        probe = probe.parent
    return {
        "cpus": psutil.cpu_count(logical=True) or 1,
        "memory_mib": psutil.virtual_memory().total // 2**20,
        "memory_available_mib": psutil.virtual_memory().available // 2**20,
        "disk_free_gib": round(psutil.disk_usage(str(probe)).free / 2**30, 1),
        "disk_path": str(probe),
    }


def facts(disk_path: Path) -> dict[str, Any]:
    """Everything above in one dict (for `doctor --json` and provider choice)."""
    return {
        **resources(disk_path),
        "cgroup_version": cgroup_version(),
        "caps": bounding_caps(),
        "kernel": kernel_features(),
        "inotify": {k: sysctl(f"fs.inotify.{k}") for k in ("max_user_watches", "max_user_instances")},
        "docker": docker(),
        "go": shutil.which("go") or "",
        "gpus": asdict(gpus()),
    }
