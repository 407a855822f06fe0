"""`up` end to end on the simulator: components applied to a real API server, no-op re-run, drift repair,
the lock, status, e2e scenarios (user isolation, GPU scheduling), and a clean `down`."""

import time
from pathlib import Path

import psutil
import pytest

from appliance import e2e, orchestrator, paths
from appliance.components import CATALOG
from appliance.errors import UserError
from appliance.kube import Kube
from appliance.plan import Lock
from appliance.report import Reporter
from tests.integration.clusters import cluster

pytestmark = [pytest.mark.integration, pytest.mark.slow]
BASE = ("platform-base", "user-profiles")


@pytest.fixture(scope="module")
def sim():
    with cluster("sim-dgx-pod", "sim", ["cluster.name=it-up-sim", "cluster.sim.pod_run_seconds=2"], BASE) as up:
        yield up


def test_first_up_runs_every_step(sim):
    _, first = sim
    assert first["ran"] == ["cluster", *BASE] and not first["failed"]


def test_nodes_are_dgx_shaped(sim):
    _, first = sim
    nodes = Kube(first["kubeconfig"]).dynamic.resources.get(api_version="v1", kind="Node").get().items
    gpu = [n for n in nodes if n.metadata.labels.get("nvidia.com/gpu.product") == "NVIDIA-H100-80GB-HBM3"]
    assert len(gpu) == 4 and all(n.status.capacity["nvidia.com/gpu"] == "8" for n in gpu)


def test_rerun_is_noop(sim):
    profile, _ = sim
    again = orchestrator.up(profile, "sim", Reporter())
    assert again["noop"] and sorted(again["skipped"]) == sorted(["cluster", *BASE])


def test_second_concurrent_up_is_refused(sim):
    profile, _ = sim
    with Lock(paths.state_dir(profile.cluster.name), profile.cluster.name):
        with pytest.raises(UserError) as e:
            orchestrator.up(profile, "sim", Reporter())
    assert e.value.code == 3 and "working on cluster 'it-up-sim'" in e.value.line()


def test_drift_is_repaired_by_rerunning_only_that_step(sim):
    profile, first = sim
    kube = Kube(first["kubeconfig"])
    kube.delete([{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "bob-edit", "namespace": "user-bob"}}])
    again = orchestrator.up(profile, "sim", Reporter())
    assert again["ran"] == ["user-profiles"]
    assert kube.get("rbac.authorization.k8s.io/v1", "RoleBinding", "bob-edit", "user-bob") is not None


def test_status_reports_components_and_processes(sim):
    profile, _ = sim
    st = orchestrator.status(profile.cluster.name)
    assert st["ready"] and st["provider"] == "sim"
    assert all(c["ready"] for c in st["components"].values())
    assert st["provider_status"]


def test_device_plugin_runs_on_every_gpu_node_only(sim):
    _, first = sim
    kube = Kube(first["kubeconfig"])
    comp = CATALOG["nvidia-device-plugin"]()
    comp.install(kube)
    deadline = time.monotonic() + 60
    while not comp.ready(kube)[0] and time.monotonic() < deadline:
        time.sleep(1)
    assert comp.ready(kube) == (True, "")
    ds = kube.get("apps/v1", "DaemonSet", "nvidia-device-plugin", "kube-system").to_dict()
    assert ds["status"]["desiredNumberScheduled"] == 4  # the 4 DGX nodes, not the 2 CPU nodes
    comp.remove(kube)


@pytest.mark.parametrize("scenario", ["user-isolation", "gpu-scheduling"])
def test_scenarios(sim, scenario, tmp_path):
    _, first = sim
    results = e2e.run(first["kubeconfig"], "sim", set(BASE), scenario, tmp_path)
    failed = [f"{s.name}: {s.message}\n{s.diagnostics}" for r in results for s in r.steps if s.status == "failed"]
    assert not failed, "\n".join(failed)
    assert (tmp_path / "junit.xml").exists() and (tmp_path / "report.html").exists()


def test_the_guide_example_component_works_as_written(sim, tmp_path):
    """docs/components.md's `hello-api`, taken from the guide's code blocks, installs and becomes ready."""
    import re

    from appliance.components import kit

    guide = (Path(__file__).resolve().parents[2] / "docs" / "components.md").read_text()
    folder = tmp_path / "hello_api"
    for name, body in re.findall(r"^`((?:manifests/)?[\w.-]+\.yaml)`:\n\n```yaml\n(.*?)```", guide, re.S | re.M):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(body)
    assert sorted(p.name for p in folder.rglob("*.yaml")) == ["10-namespace.yaml", "20-deployment.yaml", "component.yaml"]
    kube = Kube(sim[1]["kubeconfig"])
    comp = kit.load(folder)({"replicas": 2, "greeting": "hi"})
    assert comp.requests() == kit.Resources(20, 64)
    assert "applied 4 objects" in comp.install(kube)
    deadline = time.monotonic() + 60
    while not comp.ready(kube)[0] and time.monotonic() < deadline:
        time.sleep(1)
    assert comp.ready(kube) == (True, "")
    comp.remove(kube)


def test_each_user_gets_a_kubeconfig_with_their_token_only(sim):
    import os
    import stat

    import yaml
    from kubernetes import client, config

    from appliance import users

    profile, _ = sim
    name = profile.cluster.name
    assert [u["user"] for u in users.listed(name)] == ["alice", "bob"]
    r = users.kubeconfig(name, "alice", hours=1)
    cfg = yaml.safe_load(open(r["kubeconfig"]))
    (u,) = cfg["users"]
    assert set(u["user"]) == {"token"} and stat.S_IMODE(os.stat(r["kubeconfig"]).st_mode) == 0o600  # no admin certificate
    core = client.CoreV1Api(config.new_client_from_config(config_file=r["kubeconfig"]))
    core.list_namespaced_pod("user-alice")
    with pytest.raises(client.ApiException) as refused:
        core.list_namespaced_pod("user-bob")
    assert refused.value.status == 403
    with pytest.raises(UserError, match="no user 'carol'.*known users: alice, bob"):
        users.kubeconfig(name, "carol")


def test_down_where_the_hosts_stay_removes_components_then_leaves_nothing(sim, monkeypatch):
    """As on bare metal, whose hosts outlive the cluster (the simulator's `down` only stops host processes:
    its cluster takes the rest along, as test_serving_sim and test_monitoring_sim check)."""
    from appliance.providers.sim import SimProvider

    monkeypatch.setattr(SimProvider, "disposable", False)
    profile, first = sim
    state = paths.state_dir(profile.cluster.name)
    kube = Kube(first["kubeconfig"])
    removed = []

    class Spy(Reporter):
        def step(self, step, status, detail="", seconds=None):
            removed.append((step, status))
            assert kube.get("v1", "Namespace", "default") is not None  # the cluster is still up while removing

    orchestrator.down(profile.cluster.name, Spy())
    assert removed == [("user-profiles", "done"), ("platform-base", "done")]  # reverse dependency order
    assert not state.exists()
    leftovers = [p.info for p in psutil.process_iter(["pid", "cmdline"]) if any(str(state) in a for a in (p.info["cmdline"] or []))]
    assert not leftovers



def test_an_up_killed_midway_resumes(tmp_path):
    """A real `appliance up` killed (SIGKILL, no clean-up of its own) once its cluster exists: the next `up`
    takes the lock, keeps the finished steps, runs the rest and ends ready; `down` leaves nothing."""
    import json
    import os
    import signal
    import subprocess
    import sys

    import yaml

    from appliance import profiles, report

    profile_file = tmp_path / "killed.yaml"
    profile_file.write_text(yaml.safe_dump({
        "extends": "sim-dgx-pod", "name": "killed-up", "cluster": {"name": "it-killed-up"},
        "components": {c: {"enabled": False} for c in ("kserve", "monitoring", "pipelines", "database", "tuning")}}))
    state = paths.state_dir("it-killed-up") / "state.json"
    cli = Path(sys.executable).with_name("appliance")
    proc = subprocess.Popen([str(cli), "up", "--profile", str(profile_file), "--provider", "sim"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not (state.exists() and json.loads(state.read_text()).get("steps", {}).get("cluster", {}).get("status") == "done"):
            assert proc.poll() is None and time.monotonic() < deadline, "up ended before its cluster step was recorded"
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)  # the up and nothing else: the simulator's daemons are not in its group
        proc.wait(10)
        steps = json.loads(state.read_text())["steps"]
        assert steps["cluster"]["status"] == "done" and steps.get("training-operator", {}).get("status") != "done", steps
        loaded = profiles.load(str(profile_file), [], "sim")
        again = orchestrator.up(loaded.profile, "sim", Reporter())
        assert not again["failed"] and "cluster" in again["skipped"] and "training-operator" in again["ran"], again
        assert orchestrator.up(loaded.profile, "sim", Reporter())["noop"]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        if paths.state_dir("it-killed-up").exists():
            orchestrator.down("it-killed-up", report.make())
    assert not paths.state_dir("it-killed-up").exists()
