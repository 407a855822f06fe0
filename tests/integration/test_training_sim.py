"""training-operator on the simulator: built from its Go module, run as a supervised host process, it
reconciles a 2 x 8-GPU PyTorchJob onto two simulated DGX H100 nodes, which completes; a TFJob and an MPIJob too.
On the simulator's shared cluster (conftest.py; `down` stopping every host process is test_tuning_sim's)."""

import pytest

from appliance import e2e, paths
from appliance.components import CATALOG
from appliance.kube import Kube
from appliance.runtime import Runtime, process
from tests.integration.clusters import SIM_STACK_COMPONENTS as COMPONENTS
from tests.integration.clusters import rerun_keeps_the_process, scenario_passes

pytestmark = [pytest.mark.integration, pytest.mark.slow]
NAME = "training-operator"


def test_up_installs_the_operator_as_a_host_process(sim_stack):
    profile, result = sim_stack
    assert not result["failed"] and "training-operator" in result["ran"]
    kube = Kube(result["kubeconfig"])
    comp = CATALOG["training-operator"](profile.components["training-operator"].options, Runtime(pods_run=False))
    assert comp.ready(kube) == (True, "")
    host = process.HostProcess(process.controllers_dir(result["kubeconfig"]), NAME)
    assert host.folder == paths.state_dir(profile.cluster.name) / "controllers" and host.alive()
    crds = {c["metadata"]["name"] for c in comp.objects(kube) if c["kind"] == "CustomResourceDefinition"}
    assert crds == {"pytorchjobs.kubeflow.org", "tfjobs.kubeflow.org", "mpijobs.kubeflow.org"}


def test_pytorchjob_gpu_scenario_passes(sim_stack, tmp_path):
    profile, result = sim_stack
    results = e2e.run(result["kubeconfig"], "sim", set(COMPONENTS), "pytorchjob-gpu", tmp_path)
    (r,) = results
    failed = [f"{s.name}: {s.message}" for s in r.steps if s.status == "failed"]
    assert r.passed, failed
    assert (tmp_path / "junit.xml").exists()


def test_tfjob_and_mpijob_scenario_passes(sim_stack, tmp_path):
    """The operator's other two kinds: TF_CONFIG, the MPI hostfile and the launcher's exec rights, both done."""
    _, result = sim_stack
    scenario_passes(result, "sim", COMPONENTS, "tfjob-mpijob-sim", tmp_path)


def test_rerun_is_noop_and_keeps_the_process(sim_stack):
    rerun_keeps_the_process(*sim_stack, NAME)
