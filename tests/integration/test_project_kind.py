"""A user's project on kind: the scenario `e2e init` writes, unedited, run from its own folder against a stack
cluster — their trainer's image built by the appliance and loaded into the nodes (no registry), their
PyTorchJob and pipeline run it, their own model server (the same image) answers through KServe; JUnit
written. (The installed tool runs it on the simulator: test_installed.py.)"""

import xml.etree.ElementTree as ET

import pytest

from appliance import e2e
from tests.integration.clusters import STACK_COMPONENTS

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.docker]


def test_the_init_template_runs_on_kind(stack, tmp_path):
    _, result = stack
    folder = tmp_path / "project" / "e2e"
    e2e.init(folder)
    (r,) = e2e.run(result["kubeconfig"], "kind", set(STACK_COMPONENTS), None, tmp_path / "out", folders=[str(folder)])
    steps = {s.name: s for s in r.steps}
    assert r.passed and not [s for s in r.steps if s.status != "passed"], [f"{s.name}: {s.status} {s.message}" for s in r.steps if s.status != "passed"]
    assert steps["build my trainer's image"].message.startswith("built appliance.local/e2e/my-trainer:")
    suite = ET.parse(tmp_path / "out" / "junit.xml").getroot().find("testsuite")
    assert suite.get("name") == "my-model" and suite.get("failures") == "0" and suite.get("skipped") == "0"
