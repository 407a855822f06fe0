"""`appliance e2e init`'s scenario, unedited, run as a user's own (`--scenarios DIR`) on the simulator:
alice's training job, pipeline and served model; JUnit written where asked."""

import xml.etree.ElementTree as ET

import pytest

from appliance import e2e
from tests.integration.clusters import cluster

pytestmark = [pytest.mark.integration, pytest.mark.slow]
COMPONENTS = ("platform-base", "user-profiles", "training-operator", "pipelines", "kserve")


def test_the_template_runs_on_the_simulator(tmp_path):
    mine = tmp_path / "mine"
    e2e.init(mine)
    with cluster("sim-dgx-pod", "sim", ["cluster.name=it-init-sim", "cluster.sim.pod_run_seconds=2"], COMPONENTS) as (_, up):
        (r,) = e2e.run(up["kubeconfig"], "sim", set(COMPONENTS), None, tmp_path / "out", folders=[str(mine)], junit=tmp_path / "junit.xml")
    assert r.passed, [f"{s.name}: {s.message}" for s in r.steps if s.status != "passed"]
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite.get("name") == "my-model" and suite.get("failures") == "0" and suite.get("skipped") == "0"
