"""Notebooks on a real kind cluster: the hub (JupyterHub + KubeSpawner + configurable-http-proxy, images
built here) logs users in with their generated passwords, starts each server in the user's namespace under
the user's service account, runs a notebook there that trains the stub model through the training SDK, and
a headless Chromium sees JupyterLab (screenshot in the report); isolation, the GPU option's pending reason,
a hub restart and the home volume are checked by the `notebooks` scenario."""

import subprocess
from pathlib import Path

import pytest

from appliance.components import CATALOG
from tests.integration.clusters import scenario_passes

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.docker]
COMPONENTS = ("platform-base", "user-profiles", "training-operator", "network-policy", "notebooks")


@pytest.fixture(scope="module")
def kind(stack):
    """The stack cluster (conftest.py): (profile, result of its `up`)."""
    return stack


def test_the_notebook_image_holds_sdks_that_talk_to_the_api_server():
    """Each client in the image serializes camelCase without nulls and reads objects back (kubernetes 36
    breaks the training SDK's reader, 37 its writer)."""
    image = next(i for i in CATALOG["notebooks"]().images() if i.name == "notebook")
    ref, archive = image.build()
    subprocess.run(["docker", "load", "-i", str(archive)], check=True, capture_output=True)
    probe = Path(__file__).resolve().parents[2] / "e2e" / "notebooks" / "sdk_probe.py"
    out = subprocess.run(["docker", "run", "--rm", "-v", f"{probe}:/tmp/sdk_probe.py:ro", "--entrypoint", "python3", ref, "/tmp/sdk_probe.py"],
                         text=True, capture_output=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.split() == ["kubeflow-training:", "ok", "kserve:", "ok", "kubeflow-katib:", "ok", "hera:", "ok"]


def test_notebooks_scenario_with_a_browser_screenshot_in_the_report(kind, tmp_path):
    _, result = kind
    assert not result["failed"]
    r = scenario_passes(result, "kind", COMPONENTS, "notebooks", tmp_path)
    assert [p.name for p in r.artifacts] == ["jupyterlab-alice.png"]
    assert "data:image/png;base64," in (tmp_path / "report.html").read_text()


def test_logins_are_generated_kept_and_printed(kind):
    """`appliance users show` prints the hub's address and the user's password; a second `up` keeps it."""
    from appliance import orchestrator, report, users

    profile, result = kind
    kube = orchestrator.cluster_kube(profile.cluster.name)
    first = users.notebook_login(profile.cluster.name, "alice", kube)
    assert first["url"].startswith("http://") and len(first["password"]) >= 20
    assert first["password"] != users.notebook_login(profile.cluster.name, "bob", kube)["password"]
    again = orchestrator.up(profile, "kind", report.make())
    assert not again["failed"]
    assert users.notebook_login(profile.cluster.name, "alice", kube) == first


def test_an_idle_server_is_stopped_after_the_profiles_time(kind, tmp_path, monkeypatch):
    """`cull_idle` from the profile reaches the hub (a new configuration restarts it) and its culler stops a
    server nobody uses; the profile's own configuration is back after (the stack cluster is shared)."""
    import sys
    import time

    from appliance import orchestrator, report
    from appliance.users import kubeconfig

    profile, _ = kind
    comps = dict(profile.components)
    comps["notebooks"] = comps["notebooks"].model_copy(update={"options": {**comps["notebooks"].options, "cull_idle": 60}})
    assert not orchestrator.up(profile.model_copy(update={"components": comps}), "kind", report.make())["failed"]
    try:
        monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "e2e" / "notebooks"))
        sys.modules.pop("hub", None)
        import hub

        monkeypatch.setattr(hub, "URL_FILE", tmp_path / "hub-url")
        monkeypatch.setenv("KUBECONFIG", orchestrator.cluster_kube(profile.cluster.name).kubeconfig)
        hub.cmd_url(None)
        monkeypatch.setenv("KUBECONFIG", kubeconfig(profile.cluster.name, "bob")["kubeconfig"])
        session = hub.login("bob", hub.password("bob"))
        hub.start(session, "bob")
        t0 = time.monotonic()
        while hub.server(session, "bob") and time.monotonic() - t0 < 240:
            time.sleep(5)
        assert not hub.server(session, "bob"), "bob's idle server still runs 240 s after it started (cull_idle 60 s)"
    finally:
        orchestrator.up(profile, "kind", report.make())
