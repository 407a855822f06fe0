"""The journey's GPU variant on the simulator (sim-dgx-pod): alice's data pipeline, Katib's 8-GPU trials,
the 16-GPU training with the best parameters, GPU serving updated in place and her evaluate/predict pipeline,
all placed on simulated DGX H100 nodes within her quota; bob refused; nothing left (the scenario's cleanup
checks it). The first module on the simulator's shared cluster (conftest.py): a fresh one. `up` after the run changes nothing; with --journey-twice the journey runs again on the same
cluster, finding no leftovers of the first. The report shows the steps, the trials and the GPU plots."""

import pytest

from appliance import orchestrator, report
from tests.integration.clusters import SIM_STACK_COMPONENTS as COMPONENTS
from tests.integration.clusters import scenario_passes

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_journey_gpu_sim_then_a_no_op_up(sim_stack, tmp_path, request):
    profile, result = sim_stack
    assert not result["failed"]
    first = scenario_passes(result, "sim", COMPONENTS, "journey-gpu-sim", tmp_path / "first")
    assert [p.name for p in first.artifacts] == ["journey-1-steps.svg", "journey-2-trials.svg", "journey-3-gpus.svg"]
    page = (tmp_path / "first" / "report.html").read_text()
    for panel in ("GPUs allocated of capacity", "GPU utilization", "pipeline steps (state, seconds)", "Katib trials", "GPU steps (GPUs, node)"):
        assert panel in page, panel
    again = orchestrator.up(profile, "sim", report.make())
    assert not again["failed"] and again["ran"] == [], again["ran"]
    if request.config.getoption("--journey-twice"):
        scenario_passes(result, "sim", COMPONENTS, "journey-gpu-sim", tmp_path / "second")
