"""The whole journey on one kind cluster with every stack component of the ci profile: alice's notebook runs
a Hera pipeline that tunes (Katib), trains (PyTorchJob), serves (KServe, updated in place) and checks the
stub model; bob is refused everywhere; cleanup leaves nothing of hers but her home. `up` after the run changes
nothing; with --journey-twice (8 minutes more) the journey runs again, finding no leftovers of the first."""

import pytest

from appliance import orchestrator, report
from tests.integration.clusters import scenario_passes

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.docker]
COMPONENTS = ("platform-base", "user-profiles", "training-operator", "kserve", "network-policy", "notebooks", "pipelines",
              "database", "tuning")


@pytest.fixture(scope="module")
def kind(stack):
    """The stack cluster (conftest.py): (profile, result of its `up`)."""
    return stack


def test_journey_then_a_no_op_up(kind, tmp_path, request):
    profile, result = kind
    assert not result["failed"]
    first = scenario_passes(result, "kind", COMPONENTS, "journey", tmp_path / "first")
    assert [p.name for p in first.artifacts] == ["journey-1-steps.svg", "journey-2-trials.svg", "jupyterlab-alice.png"]
    page = (tmp_path / "first" / "report.html").read_text()
    assert "pipeline steps (state, seconds)" in page and "Katib trials" in page and "data:image/png;base64," in page
    again = orchestrator.up(profile, "kind", report.make())
    assert not again["failed"] and again["ran"] == [], again["ran"]
    if request.config.getoption("--journey-twice"):
        scenario_passes(result, "kind", COMPONENTS, "journey", tmp_path / "second")
