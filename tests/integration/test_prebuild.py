"""`appliance prebuild` on the simulator's DGX profile: everything `up` would build is built with no cluster, so
`up` finds nothing to build, and a second prebuild only checks."""

import io

import pytest

from appliance import orchestrator, paths, prereqs, profiles, report

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_prebuild_leaves_up_nothing_to_build():
    profile = profiles.load("sim-dgx-pod", [], "sim").profile
    first = orchestrator.prebuild(profile, "sim", report.make(stream=io.StringIO()))
    assert first["components"]["tuning"] >= 2, first  # Katib's programs and its generated CRDs
    assert prereqs.pending(profile, "sim") == ([], 0)
    again = io.StringIO()
    orchestrator.prebuild(profile, "sim", report.make(stream=again))
    said = again.getvalue()
    assert "first run" not in said and "build 1/" not in said, said
    assert not list(paths.state_dir().glob("*/state.json"))  # no cluster was made
