"""Simulator provider against real processes (etcd, kube-apiserver, kcm, scheduler, kwok).

The cluster starts once per session. Tests that break it (crash, delete) run last.
Pure manifest tests at the top need no processes.
"""

from __future__ import annotations

import os
import signal
import socket
import time
import uuid
from pathlib import Path

import pytest

from appliance.errors import ProfileError, UserError
from appliance.providers.sim import SimProvider
from appliance.providers.sim.nodes import gpu_labels, node_manifest, node_manifests, parse_taint
from appliance.providers.sim.stages import kwok_config
from appliance.schema import ClusterSpec, NodeClass, SimSpec

DGX = NodeClass(name="dgx-h100", count=2, cpu="224", memory="2Ti", gpus=8, gpu_product="NVIDIA-H100-80GB-HBM3",
                gpu_family="hopper", cuda_driver_version="550.90.07")
A100 = NodeClass(name="dgx-a100", count=1, cpu="256", memory="1Ti", gpus=8, gpu_product="NVIDIA-A100-SXM4-80GB",
                 taints=["nvidia.com/gpu=present:NoSchedule"])
CPU = NodeClass(name="cpu", count=1, cpu="32", memory="128Gi")


# --------------------------------------------------------------------------- pure (no processes)


def test_gpu_node_manifest_has_gfd_labels_and_capacity():
    m = node_manifest(DGX, 0, "c")
    lab = m["metadata"]["labels"]
    assert m["metadata"]["name"] == "dgx-h100-0"
    assert m["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"
    assert m["status"]["capacity"]["nvidia.com/gpu"] == "8" == m["status"]["allocatable"]["nvidia.com/gpu"]
    assert lab["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    assert lab["nvidia.com/gpu.count"] == "8" and lab["nvidia.com/gpu.present"] == "true"
    assert lab["nvidia.com/gpu.memory"] == "81559" and lab["nvidia.com/gpu.family"] == "hopper"
    assert (lab["nvidia.com/cuda.driver.major"], lab["nvidia.com/cuda.driver.minor"], lab["nvidia.com/cuda.driver.rev"]) == ("550", "90", "07")
    assert lab["nvidia.com/mig.strategy"] == "none" and lab["nvidia.com/mig.capable"] == "true"
    assert "taints" not in m["spec"]  # default: GPU nodes untainted unless the class says so


def test_cpu_node_has_no_gpu_bits():
    m = node_manifest(CPU, 3, "c")
    assert "nvidia.com/gpu" not in m["status"]["capacity"]
    assert not any(k.startswith("nvidia.com/") for k in m["metadata"]["labels"])
    assert gpu_labels(CPU, {}) == {}


def test_taints_and_duplicates():
    assert node_manifest(A100, 0, "c")["spec"]["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
    assert parse_taint("dedicated:NoExecute") == {"key": "dedicated", "effect": "NoExecute"}
    with pytest.raises(ProfileError):
        parse_taint("nonsense")
    with pytest.raises(ProfileError):
        node_manifests([CPU, CPU], "c")
    assert len(node_manifests([DGX, CPU], "c")) == 3


def test_kwok_config_has_stages_with_delays():
    import yaml

    docs = list(yaml.safe_load_all(kwok_config(1.5, 7, 8)))
    assert docs[0]["kind"] == "KwokConfiguration"
    st = {d["metadata"]["name"]: d for d in docs[1:]}
    assert set(st) == {"node-initialize", "node-heartbeat-with-lease", "pod-ready", "pod-complete", "pod-delete"}
    assert st["pod-ready"]["spec"]["delay"]["durationMilliseconds"] == 1500
    assert st["pod-complete"]["spec"]["delay"]["durationMilliseconds"] == 7000


# --------------------------------------------------------------------------- real cluster



@pytest.fixture(scope="session")
def sim(tmp_path_factory):
    spec = ClusterSpec(name="itest", node_classes=[DGX, A100, CPU], sim=SimSpec(pod_run_seconds=2))
    state = tmp_path_factory.mktemp("sim-state") / "itest"
    p = SimProvider(spec, state, report=lambda m: print("sim:", m))
    t0 = time.monotonic()
    info = p.create()
    print(f"sim up in {time.monotonic() - t0:.1f}s")
    yield p, info
    p.delete()


@pytest.fixture()
def ns(sim):
    from kubernetes import client

    p, _ = sim
    core = client.CoreV1Api(p.api())
    name = "t-" + uuid.uuid4().hex[:8]
    core.create_namespace({"metadata": {"name": name}})
    deadline = time.monotonic() + 30
    while True:  # pods are refused until the namespace's default ServiceAccount exists
        try:
            core.read_namespaced_service_account("default", name)
            break
        except client.exceptions.ApiException:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    yield name
    core.delete_namespace(name)


def _pod(name, gpus, node_selector=None, tolerate=False):
    spec = {
        "containers": [{"name": "c", "image": "busybox", "resources": {
            "requests": {"cpu": "100m", "memory": "64Mi", **({"nvidia.com/gpu": str(gpus)} if gpus else {})},
            "limits": {**({"nvidia.com/gpu": str(gpus)} if gpus else {})}}}],
    }
    if node_selector:
        spec["nodeSelector"] = node_selector
    if tolerate:
        spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def _wait(fn, timeout=60, every=0.25):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s")
        time.sleep(every)


def _core(p):
    from kubernetes import client

    return client.CoreV1Api(p.api())


@pytest.mark.integration
@pytest.mark.slow
def test_nodes_ready_and_shaped(sim):
    p, info = sim
    assert info.kubeconfig.exists() and info.context == "sim-itest"
    by = {n["name"]: n for n in info.nodes}
    assert set(by) == {"dgx-h100-0", "dgx-h100-1", "dgx-a100-0", "cpu-0"}
    assert all(n["ready"] for n in info.nodes)
    assert by["dgx-h100-0"]["gpus"] == 8 and by["cpu-0"]["gpus"] == 0
    node = _core(p).read_node("dgx-a100-0")
    assert node.metadata.labels["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-80GB"
    assert node.spec.taints[0].key == "nvidia.com/gpu"


@pytest.mark.integration
@pytest.mark.slow
def test_eight_pods_fill_one_dgx_ninth_goes_to_next(sim, ns):
    p, _ = sim
    core = _core(p)
    sel = {"node.kubernetes.io/instance-type": "dgx-h100"}
    for i in range(8):
        core.create_namespaced_pod(ns, _pod(f"g{i}", 1, sel))
    pods = _wait(lambda: [x for x in core.list_namespaced_pod(ns).items if x.status.phase == "Running"] if
                 sum(x.status.phase == "Running" for x in core.list_namespaced_pod(ns).items) == 8 else None)
    first = {x.spec.node_name for x in core.list_namespaced_pod(ns).items}
    assert len(first) == 1, f"8 one-GPU pods spread over {first}"
    core.create_namespaced_pod(ns, _pod("g8", 1, sel))
    ninth = _wait(lambda: (lambda x: x if x.status.phase == "Running" else None)(core.read_namespaced_pod("g8", ns)))
    assert ninth.spec.node_name not in first and ninth.spec.node_name.startswith("dgx-h100-")
    assert pods


@pytest.mark.integration
@pytest.mark.slow
def test_sixteen_gpu_pod_is_unschedulable(sim, ns):
    p, _ = sim
    core = _core(p)
    core.create_namespaced_pod(ns, _pod("big", 16, tolerate=True))

    def failed():
        ev = core.list_namespaced_event(ns, field_selector="involvedObject.name=big").items
        return [e for e in ev if e.reason == "FailedScheduling"]

    ev = _wait(failed, timeout=30)
    assert "nvidia.com/gpu" in ev[0].message
    # the scheduler records the event and patches the pod's condition separately: wait for both
    def with_conditions():
        pod = core.read_namespaced_pod("big", ns)
        return pod if pod.status.conditions else None

    pod = _wait(with_conditions, timeout=30)
    assert pod.status.phase == "Pending" and not pod.spec.node_name
    cond = {c.type: c for c in pod.status.conditions}
    assert cond["PodScheduled"].status == "False" and cond["PodScheduled"].reason == "Unschedulable"


@pytest.mark.integration
@pytest.mark.slow
def test_gpu_job_completes(sim, ns):
    from kubernetes import client

    p, _ = sim
    batch = client.BatchV1Api(p.api())
    pod = _pod("x", 2)["spec"]
    pod["restartPolicy"] = "Never"
    batch.create_namespaced_job(ns, {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "train"},
                                     "spec": {"backoffLimit": 0, "template": {"spec": pod}}})
    t0 = time.monotonic()
    job = _wait(lambda: (lambda j: j if (j.status.succeeded or 0) >= 1 else None)(batch.read_namespaced_job("train", ns)), timeout=60)
    took = time.monotonic() - t0
    assert job.status.succeeded == 1
    assert took >= 1.5  # pod_run_seconds=2: it really ran for a while
    conds = {c.type for c in job.status.conditions or []}
    assert "Complete" in conds


@pytest.mark.integration
@pytest.mark.slow
def test_node_selector_on_gpu_product(sim, ns):
    p, _ = sim
    core = _core(p)
    core.create_namespaced_pod(ns, _pod("a100", 1, {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}, tolerate=True))
    pod = _wait(lambda: (lambda x: x if x.status.phase == "Running" else None)(core.read_namespaced_pod("a100", ns)))
    assert pod.spec.node_name == "dgx-a100-0"
    # without the toleration the tainted node is off limits
    core.create_namespaced_pod(ns, _pod("a100-untol", 1, {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}))
    _wait(lambda: [e for e in core.list_namespaced_event(ns, field_selector="involvedObject.name=a100-untol").items
                   if e.reason == "FailedScheduling"], timeout=30)


@pytest.mark.integration
@pytest.mark.slow
def test_port_in_use_is_one_clear_line(sim, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        spec = ClusterSpec(name="busy", node_classes=[CPU], sim=SimSpec(apiserver_port=port))
        p = SimProvider(spec, tmp_path / "busy")
        with pytest.raises(UserError) as e:
            p.create()
    line = e.value.line()
    assert str(port) in line and "in use" in line and "\n" not in line
    assert not (tmp_path / "busy").exists() or not any((tmp_path / "busy").iterdir())


@pytest.mark.integration
@pytest.mark.slow
def test_status_reports_processes_and_detects_crash_then_recovers(sim):
    p, _ = sim
    st = p.status()
    assert st["state"] == "running" and st["nodes"]["ready"] == 4
    names = {x["name"]: x for x in st["processes"]}
    assert set(names) == {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}
    assert all(x["alive"] and x["rss_bytes"] > 0 and x["pid"] > 0 for x in names.values())
    assert p.ready()

    os.kill(names["kube-scheduler"]["pid"], signal.SIGKILL)
    _wait(lambda: p.status()["state"] == "degraded", timeout=10)
    st = p.status()
    assert st["crashed"] == ["kube-scheduler"] and not p.ready()

    info = p.create()  # idempotent: restarts only what died
    st2 = p.status()
    assert st2["state"] == "running"
    after = {x["name"]: x["pid"] for x in st2["processes"]}
    assert after["kube-apiserver"] == names["kube-apiserver"]["pid"]
    assert after["kube-scheduler"] != names["kube-scheduler"]["pid"]
    assert len(info.nodes) == 4


@pytest.mark.integration
@pytest.mark.slow
def test_stale_state_all_processes_dead_is_recovered_with_its_data(sim):
    import psutil

    p, _ = sim
    core = _core(p)
    core.create_namespace({"metadata": {"name": "keepme"}})
    procs = [x["pid"] for x in p.status()["processes"]]
    for pid in procs:  # as after a reboot or an OOM kill of everything
        os.kill(pid, signal.SIGKILL)
    _wait(lambda: not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in procs), 10)
    assert p.status()["state"] == "stopped" and not p.ready()
    info = p.create()
    assert p.status()["state"] == "running" and all(n["ready"] for n in info.nodes)
    assert core.read_namespace("keepme").metadata.name == "keepme"  # etcd data survived


@pytest.mark.integration
@pytest.mark.slow
def test_collect_logs(sim, tmp_path):
    p, _ = sim
    out = p.collect_logs(tmp_path)
    names = {f.name for f in out.iterdir()}
    assert {"etcd.log", "kube-apiserver.log", "kwok.log", "status.json"} <= names
    inside = p.collect_logs(p._p("logs") / "20261206-000000")  # where a failed `up` puts them: in the logs folder it copies
    assert {"etcd.log", "status.json"} <= {f.name for f in inside.iterdir()}


@pytest.mark.integration
@pytest.mark.slow
def test_delete_leaves_no_process_and_no_file(sim):
    import psutil

    p, _ = sim
    pids = [x["pid"] for x in p.status()["processes"]]
    state_dir = Path(p.state_dir)
    p.delete()
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not state_dir.exists()
    assert p.status()["state"] == "absent"
    p.delete()  # idempotent
