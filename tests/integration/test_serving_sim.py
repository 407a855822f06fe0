"""KServe on the simulator: the controller built from its Go module runs as a supervised host process,
the API server calls its webhooks on 127.0.0.1, and InferenceServices are placed on simulated DGX nodes
(Ready on an H100; a 16-GPU one Pending with the scheduler's reason). On the simulator's shared cluster
(conftest.py; `down` stopping every host process is test_tuning_sim's last test)."""

import pytest

from appliance import e2e
from appliance.components import CATALOG
from appliance.kube import Kube
from appliance.runtime import Runtime
from tests.integration.clusters import SIM_STACK_COMPONENTS as COMPONENTS

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CONTROLLER = "kserve-controller-manager"


def test_up_runs_the_controller_on_the_host(sim_stack):
    profile, result = sim_stack
    assert not result["failed"] and "kserve" in result["ran"]
    comp = CATALOG["kserve"](profile.components["kserve"].options, Runtime(pods_run=False))
    kube = Kube(result["kubeconfig"])
    assert comp.ready(kube) == (True, "")
    assert kube.get("apps/v1", "Deployment", CONTROLLER, "kserve") is None  # no pod: the host process serves
    hook = kube.get("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "inferenceservice.serving.kserve.io")
    assert all(w.clientConfig.url.startswith("https://127.0.0.1:") for w in hook.webhooks)


def test_serving_sim_scenario_passes(sim_stack, tmp_path):
    _, result = sim_stack
    (r,) = e2e.run(result["kubeconfig"], "sim", set(COMPONENTS), "serving-sim", tmp_path)
    assert r.passed, [f"{s.name}: {s.message}" for s in r.steps if s.status == "failed"]
