"""kind provider: config generation and nvkind-style GPU mapping (NVML mocked)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
import yaml

from appliance.providers.kind import config as kc
from appliance.providers.kind import gpu as kg
from appliance.providers.kind import provider as kp
from appliance.schema import ClusterSpec


def spec(**kw):
    return ClusterSpec(name="demo", **kw)


def test_config_counts_image_and_name():
    cfg = kc.kind_config(spec(control_planes=1, workers=2), "appliance/node:v1.31.4-abc")
    assert cfg["kind"] == "Cluster" and cfg["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert cfg["name"] == "demo"
    assert [n["role"] for n in cfg["nodes"]] == ["control-plane", "worker", "worker"]
    assert {n["image"] for n in cfg["nodes"]} == {"appliance/node:v1.31.4-abc"}
    assert "featureGates" not in cfg


def test_config_ports_mounts_feature_gates():
    s = spec(
        workers=1,
        kind={
            "port_mappings": [{"container_port": 80, "host_port": 8080}, {"containerPort": 30000, "hostPort": 30000, "role": "worker"}],
            "extra_mounts": [{"host_path": "/data", "container_path": "/data", "read_only": True}],
            "feature_gates": {"DynamicResourceAllocation": True},
        },
    )
    cfg = kc.kind_config(s, "img")
    cp, w = cfg["nodes"]
    assert cp["extraPortMappings"] == [{"containerPort": 80, "hostPort": 8080}]
    assert w["extraPortMappings"] == [{"containerPort": 30000, "hostPort": 30000}]
    assert cp["extraMounts"] == w["extraMounts"] == [{"hostPath": "/data", "containerPath": "/data", "readOnly": True}]
    assert cfg["featureGates"] == {"DynamicResourceAllocation": True}


def test_node_names_match_kind():
    assert kc.node_names("x", 1, 0) == ["x-control-plane"]
    assert kc.node_names("x", 3, 2) == ["x-control-plane", "x-control-plane2", "x-control-plane3", "x-worker", "x-worker2"]


def _gpus(n):
    return [{"index": i, "uuid": f"GPU-{i}", "name": "NVIDIA H100"} for i in range(n)]


@pytest.mark.parametrize(
    "n,cps,ws,mode,want",
    [
        (8, 1, 2, "auto", {1: [0, 1, 2, 3], 2: [4, 5, 6, 7]}),
        (3, 1, 2, "auto", {1: [0, 1], 2: [2]}),
        (1, 1, 2, "auto", {1: [0]}),
        (2, 1, 0, "auto", {0: [0, 1]}),
        (2, 1, 2, "all", {1: [0, 1], 2: [0, 1]}),
        (2, 1, 2, "none", {}),
        (0, 1, 2, "auto", {}),
    ],
)
def test_gpu_assignment(n, cps, ws, mode, want):
    assert kg.gpu_assignment(_gpus(n), cps, ws, mode) == want


def test_gpu_mounts_in_config():
    cfg = kc.kind_config(spec(workers=2), "img", _gpus(4))
    cp, w1, w2 = cfg["nodes"]
    assert "extraMounts" not in cp
    assert w1["extraMounts"] == [
        {"hostPath": "/dev/null", "containerPath": "/var/run/nvidia-container-devices/0"},
        {"hostPath": "/dev/null", "containerPath": "/var/run/nvidia-container-devices/1"},
    ]
    assert [m["containerPath"][-1] for m in w2["extraMounts"]] == ["2", "3"]
    assert w1["labels"] == {"nvidia.com/gpu.present": "true"}


def _fake_nvml(monkeypatch, names):
    m = types.ModuleType("pynvml")

    class NVMLError(Exception):
        pass

    m.NVMLError = NVMLError
    m.nvmlInit = lambda: None
    m.nvmlShutdown = lambda: None
    m.nvmlDeviceGetCount = lambda: len(names)
    m.nvmlDeviceGetHandleByIndex = lambda i: i
    m.nvmlDeviceGetUUID = lambda h: f"GPU-{h:04d}".encode()
    m.nvmlDeviceGetName = lambda h: names[h]
    m.nvmlSystemGetDriverVersion = lambda: "550.90.07"
    m.nvmlSystemGetCudaDriverVersion = lambda: 12040
    m.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(total=81559 * 2**20)
    m.nvmlDeviceGetMigMode = lambda h: (0, 0)
    monkeypatch.setitem(sys.modules, "pynvml", m)
    return m


def test_usable_gpus_with_mocked_nvml(monkeypatch):
    _fake_nvml(monkeypatch, ["NVIDIA H100 80GB HBM3", b"NVIDIA H100 80GB HBM3"])
    monkeypatch.setattr(kg, "nvidia_toolkit", lambda: (True, ""))
    assert kg.usable_gpus("auto", print) == [
        {"index": 0, "uuid": "GPU-0000", "name": "NVIDIA H100 80GB HBM3"},
        {"index": 1, "uuid": "GPU-0001", "name": "NVIDIA H100 80GB HBM3"},
    ]


def test_usable_gpus_without_driver(monkeypatch):
    m = _fake_nvml(monkeypatch, [])

    def boom():
        raise m.NVMLError("driver not loaded")

    m.nvmlInit = boom
    assert kg.usable_gpus("auto", print) == []


def test_toolkit_check(monkeypatch, tmp_path):
    cfgfile = tmp_path / "config.toml"
    monkeypatch.setattr(kg, "NVIDIA_RUNTIME_CONFIG", cfgfile)
    monkeypatch.setattr(kg.shutil, "which", lambda n: "/usr/bin/" + n)
    ok, why = kg.nvidia_toolkit()
    assert not ok and "missing" in why
    cfgfile.write_text("accept-nvidia-visible-devices-as-volume-mounts = false\n")
    ok, why = kg.nvidia_toolkit()
    assert not ok and "nvidia-ctk config" in why
    cfgfile.write_text(
        "accept-nvidia-visible-devices-as-envvar-when-unprivileged = false\naccept-nvidia-visible-devices-as-volume-mounts = true\n"
    )
    assert kg.nvidia_toolkit() == (True, "")
    monkeypatch.setattr(kg.shutil, "which", lambda n: None)
    assert kg.nvidia_toolkit()[0] is False


def test_provider_gpu_path_end_to_end(monkeypatch, tmp_path):
    """create() with NVML GPUs and the toolkit: per-worker device mounts in the config it hands kind (a stand-in
    kind that fails after reading it)."""
    from appliance.errors import UserError

    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "kind").write_text(FAKE_KIND)
    (bindir / "kind").chmod(0o755)
    monkeypatch.setenv("APPLIANCE_TOOLCHAIN_BIN", str(bindir))
    _fake_nvml(monkeypatch, ["NVIDIA A100"] * 2)
    monkeypatch.setattr(kg, "nvidia_toolkit", lambda: (True, ""))
    monkeypatch.setattr(kp.KindProvider, "containers", lambda self: [])
    p = kp.KindProvider(spec(workers=2, kind={"image": "img:1"}), tmp_path / "state")
    with pytest.raises(UserError):
        p.create()
    cfg = yaml.safe_load((tmp_path / "state" / "kind-config.yaml").read_text())
    mounts = [[m["containerPath"] for m in n.get("extraMounts", [])] for n in cfg["nodes"]]
    assert [len(m) for m in mounts] == [0, 1, 1] and mounts[1] != mounts[2]  # one GPU each worker, not the same one
    assert kg.usable_gpus("none", p.report) == []


def test_gpus_skipped_without_toolkit(monkeypatch):
    _fake_nvml(monkeypatch, ["NVIDIA A100"])
    monkeypatch.setattr(kg, "nvidia_toolkit", lambda: (False, "NVIDIA container toolkit not installed"))
    msgs = []
    assert kg.usable_gpus("auto", msgs.append) == []
    assert "not handed to kind nodes" in msgs[0]


def test_available_without_docker(monkeypatch):
    monkeypatch.setattr(kp.shutil, "which", lambda n: None)
    ok, why = kp.KindProvider.available()
    assert not ok and "docker" in why


def test_last_error_line():
    assert kp._last_error("Creating cluster\nERROR: failed to create cluster: boom\nStack") == "failed to create cluster: boom"
    assert kp._last_error("") == "no output"


def _pod(phase, *states):
    from types import SimpleNamespace as NS

    css = [NS(state=NS(running=NS() if s == "running" else None, waiting=NS() if s == "waiting" else None), ready=False) for s in states]
    return NS(status=NS(phase=phase, container_statuses=css), metadata=NS(namespace="kube-system", name="p"), spec=NS(node_name="n"))


def test_pod_running_means_all_containers_started():
    assert kp._pod_ok(_pod("Running", "running", "running"))
    assert not kp._pod_ok(_pod("Running", "running", "waiting"))
    assert not kp._pod_ok(_pod("Pending"))
    assert kp._pod_ok(_pod("Succeeded"))


def test_node_row_roles_and_readiness():
    from types import SimpleNamespace as NS

    n = NS(
        metadata=NS(name="x-control-plane", labels={"node-role.kubernetes.io/control-plane": ""}),
        status=NS(conditions=[NS(type="Ready", status="True")], node_info=NS(kubelet_version="v1.31.4"), capacity={"nvidia.com/gpu": "2"}),
    )
    assert kp._node_row(n) == {"name": "x-control-plane", "ready": True, "roles": ["control-plane"], "version": "v1.31.4", "gpus": 2}


FAKE_KIND = """#!/bin/sh
echo "$@" >> "$(dirname "$0")/calls.log"
case "$1" in
  get) exit 0 ;;
  create) echo "ERROR: failed to create cluster: could not find a log line that matches" >&2; exit 1 ;;
  export) mkdir -p "$3" && echo journal > "$3/journal.log"; exit 0 ;;
  delete) exit 0 ;;
esac
"""


def test_failed_create_exports_logs_and_names_them(monkeypatch, tmp_path):
    from appliance.errors import UserError

    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "kind").write_text(FAKE_KIND)
    (bindir / "kind").chmod(0o755)
    monkeypatch.setenv("APPLIANCE_TOOLCHAIN_BIN", str(bindir))
    monkeypatch.setattr(kg.host, "gpus", lambda: kg.host.GpuInfo(nvml=False))
    monkeypatch.setattr(kp.KindProvider, "containers", lambda self: [])
    p = kp.KindProvider(spec(workers=1, kind={"image": "appliance/node:test"}), tmp_path / "state")
    with pytest.raises(UserError) as e:
        p.create()
    line = e.value.line()
    assert "could not find a log line" in line and "see the logs in" in line
    folder = line.rsplit("see the logs in ", 1)[1]
    assert Path(folder).parent == tmp_path / "state" / "logs"
    assert (Path(folder) / "journal.log").exists()
    calls = (bindir / "calls.log").read_text().splitlines()
    assert calls[0] == "get clusters"
    assert calls[1].startswith("create cluster --name demo --config ")
    assert any(c.startswith("export logs ") for c in calls) and calls[-1].startswith("delete cluster --name demo")
    written = (tmp_path / "state" / "kind-config.yaml").read_text()
    assert "appliance/node:test" in written and "role: worker" in written
