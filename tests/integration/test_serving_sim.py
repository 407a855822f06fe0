"""KServe on the simulator: the controller built from its Go module runs as a supervised host process,
the API server calls its webhooks on 127.0.0.1, and InferenceServices are placed on simulated DGX nodes
(Ready on an H100; a 16-GPU one Pending with the scheduler's reason). `down` stops the process."""

import pytest

from appliance import e2e, orchestrator, report
from appliance.components import CATALOG
from appliance.kube import Kube
from appliance.runtime import Runtime, process
from tests.integration.clusters import cluster

pytestmark = [pytest.mark.integration, pytest.mark.slow]
COMPONENTS = ("platform-base", "user-profiles", "kserve")
NAME = "it-serving-sim"
CONTROLLER = "kserve-controller-manager"


@pytest.fixture(scope="module")
def sim():
    with cluster("sim-dgx-pod", "sim", [f"cluster.name={NAME}"], COMPONENTS) as up:
        yield up


def test_up_runs_the_controller_on_the_host(sim):
    profile, result = sim
    assert not result["failed"] and "kserve" in result["ran"]
    comp = CATALOG["kserve"](profile.components["kserve"].options, Runtime(pods_run=False))
    kube = Kube(result["kubeconfig"])
    assert comp.ready(kube) == (True, "")
    assert kube.get("apps/v1", "Deployment", CONTROLLER, "kserve") is None  # no pod: the host process serves
    hook = kube.get("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "inferenceservice.serving.kserve.io")
    assert all(w.clientConfig.url.startswith("https://127.0.0.1:") for w in hook.webhooks)


def test_serving_sim_scenario_passes(sim, tmp_path):
    _, result = sim
    (r,) = e2e.run(result["kubeconfig"], "sim", set(COMPONENTS), "serving-sim", tmp_path)
    assert r.passed, [f"{s.name}: {s.message}" for s in r.steps if s.status == "failed"]


def test_down_stops_the_controller(sim):
    profile, result = sim
    host = process.HostProcess(process.controllers_dir(result["kubeconfig"]), CONTROLLER)
    pid = host.load().pid
    orchestrator.down(profile.cluster.name, report.make())
    assert not host.alive()
    import psutil

    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
