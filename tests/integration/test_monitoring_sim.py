"""monitoring on the simulator: Prometheus (built from its Go module) and the GPU exporter run as supervised
host processes; the gpu-metrics scenario (a 2x8-GPU PyTorchJob's GPUs in Prometheus under DCGM names, an
injected XID firing its alert); `status` shows a firing alert; their memory; `down` stops both."""

import time

import psutil
import pytest

from appliance import e2e, orchestrator, report
from appliance.components import CATALOG, hostproc
from appliance.components.monitoring.prom import Prometheus
from appliance.kube import Kube
from tests.integration.clusters import cluster

pytestmark = [pytest.mark.integration, pytest.mark.slow]
COMPONENTS = ("platform-base", "user-profiles", "training-operator", "monitoring")
NAME = "it-monitoring-sim"
PROCS = ("prometheus", "gpu-exporter")


@pytest.fixture(scope="module")
def sim():
    with cluster("sim-dgx-pod", "sim", [f"cluster.name={NAME}", "components.monitoring={}"], COMPONENTS) as up:
        yield up


def _hosts(result):
    return [hostproc.HostProcess(hostproc.controllers_dir(result["kubeconfig"]), p) for p in PROCS]


def test_up_runs_prometheus_and_the_exporter_on_the_host(sim):
    profile, result = sim
    assert not result["failed"] and "monitoring" in result["ran"]
    kube = Kube(result["kubeconfig"])
    assert CATALOG["monitoring"](profile.components["monitoring"].options, pods_run=False).ready(kube) == (True, "")
    assert all(h.alive() for h in _hosts(result))
    assert kube.get("apps/v1", "Deployment", "prometheus", "monitoring") is None  # no pods: host processes serve
    prom = Prometheus(kube)
    deadline = time.time() + 60
    while not (up := prom.query('up{job="gpu-exporter"} == 1')) and time.time() < deadline:
        time.sleep(2)
    assert up, "Prometheus never scraped the exporter"
    assert len(prom.query("DCGM_FI_DEV_GPU_UTIL")) == 32  # 4 DGX nodes x 8


def test_gpu_metrics_scenario_passes(sim, tmp_path):
    _, result = sim
    (r,) = e2e.run(result["kubeconfig"], "sim", set(COMPONENTS), "gpu-metrics", tmp_path)
    assert r.passed, [f"{s.name}: {s.message}" for s in r.steps if s.status == "failed"]
    page = (tmp_path / "report.html").read_text()  # the report plots the scenario's time from Prometheus
    assert page.count("<svg") == 3 and ">allocated<" in page and ">allocated GPUs<" in page and "no samples" not in page


def test_status_shows_a_firing_alert(sim):
    profile, result = sim
    kube = Kube(result["kubeconfig"])
    from kubernetes import client

    core = client.CoreV1Api(kube.api)
    node = next(n.metadata.name for n in core.list_node().items if (n.status.capacity or {}).get("nvidia.com/gpu"))
    core.patch_node(node, {"metadata": {"annotations": {"appliance.dev/gpu-xid": "5=48"}}})
    try:
        want = f"FIRING GPUXidError: GPU 5 on {node} reports XID 48"
        deadline, notes = time.time() + 90, []
        while time.time() < deadline:
            notes = orchestrator.status(NAME)["components"]["monitoring"]["notes"]
            if want in notes:
                break
            time.sleep(3)
        assert want in notes, notes
        assert f"monitoring: FIRING GPUXidError: GPU 5 on {node}" in report.status_text(orchestrator.status(NAME))
    finally:
        core.patch_node(node, {"metadata": {"annotations": {"appliance.dev/gpu-xid": None}}})


def test_memory_of_the_host_processes(sim, record_property):
    _, result = sim
    rss = {}
    for h in _hosts(result):
        sup = psutil.Process(h.load().pid)
        rss[h.name] = sum(p.memory_info().rss for p in [sup, *sup.children(recursive=True)]) / 2**20
    record_property("rss_mib", rss)
    print(f"RSS MiB (supervisor + program): {rss}")
    assert sum(rss.values()) < 400, rss


def test_new_options_restart_prometheus_with_them(sim):
    profile, result = sim
    prom_host, exporter_host = _hosts(result)
    before = (prom_host.load().pid, exporter_host.load().pid)
    opts = {**profile.components["monitoring"].options, "scrape_interval": "7s"}
    changed = profile.model_copy(update={"components": {**profile.components, "monitoring": profile.components["monitoring"].model_copy(update={"options": opts})}})
    again = orchestrator.up(changed, "sim", report.make())
    assert not again["failed"] and "monitoring" in again["ran"]
    assert prom_host.load().pid != before[0] and exporter_host.load().pid == before[1]  # only what changed restarts
    conf = Prometheus(Kube(result["kubeconfig"]))
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if "scrape_interval: 7s" in conf.get("status/config")["yaml"]:
                break
        except Exception:  # noqa: BLE001 - restarting
            pass
        time.sleep(1)
    assert "scrape_interval: 7s" in conf.get("status/config")["yaml"]


def test_down_stops_both(sim):
    profile, result = sim
    pids = [h.load().pid for h in _hosts(result)]
    orchestrator.down(profile.cluster.name, report.make())
    assert not any(h.alive() for h in _hosts(result))
    assert all(not psutil.pid_exists(p) or psutil.Process(p).status() == psutil.STATUS_ZOMBIE for p in pids)
