"""Pipelines on the simulator: Argo's workflow controller built from its module and run as a supervised host
process; a pipeline of 8-GPU steps is placed on simulated DGX H100 nodes and completes through kwok. On the
simulator's shared cluster (conftest.py)."""

import pytest

from appliance import e2e
from appliance.components import CATALOG
from appliance.kube import Kube
from appliance.runtime import Runtime, process
from tests.integration.clusters import SIM_STACK_COMPONENTS as COMPONENTS

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_controller_runs_on_the_host_without_a_store(sim_stack):
    profile, result = sim_stack
    assert not result["failed"] and "pipelines" in result["ran"]
    kube = Kube(result["kubeconfig"])
    comp = CATALOG["pipelines"](profile.components["pipelines"].options, Runtime(pods_run=False))
    assert comp.ready(kube) == (True, "")
    assert process.HostProcess(process.controllers_dir(result["kubeconfig"]), "workflow-controller").alive()
    assert kube.get("apps/v1", "Deployment", "artifact-store", "argo") is None
    assert kube.get("v1", "ServiceAccount", "pipeline-runner", "user-alice") is not None


def test_gpu_pipeline_lands_on_dgx_nodes(sim_stack, tmp_path):
    (r,) = e2e.run(sim_stack[1]["kubeconfig"], "sim", set(COMPONENTS), "pipeline-gpu-sim", tmp_path)
    failed = [f"{s.name}: {s.message}" for s in r.steps if s.status == "failed"]
    assert r.passed, failed


def test_memoization_caches_are_named_per_namespace(sim_stack, tmp_path):
    (r,) = e2e.run(sim_stack[1]["kubeconfig"], "sim", set(COMPONENTS), "pipeline-admission", tmp_path)
    assert r.passed, [f"{s.name}: {s.message}" for s in r.steps if s.status == "failed"]
