"""Upgrades: what `upgrade --plan` says will change, and downgrades refused."""

import pytest

from appliance import orchestrator, profiles
from appliance.errors import UserError
from appliance.plan import State


@pytest.fixture()
def laptop(tmp_path, monkeypatch):
    """The laptop profile on the simulator as cluster `demo`, every step recorded done by this version."""
    monkeypatch.setenv("APPLIANCE_STATE", str(tmp_path))
    p = profiles.load("laptop").profile
    p = p.model_copy(update={"cluster": p.cluster.model_copy(update={"name": "demo"})})
    state = State(tmp_path / "demo")
    for s in orchestrator.Cluster(p, "sim").plan(state).steps:
        state.data["steps"][s.id] = {"status": "done", "fingerprint": s.fingerprint, "revision": s.revision}
    state.data.update(provider="sim", appliance=orchestrator.version("appliance"),
                      components={n: c.options for n, c in p.components.items() if c.enabled})
    state.save()
    return p, state


def test_the_plan_tells_new_versions_changed_inputs_new_and_removed_components(laptop):
    p, state = laptop
    assert set(orchestrator.changes(p, "sim")["steps"].values()) == {"unchanged"}
    state.data["steps"]["pipelines"].update(fingerprint="old", revision="old")   # a new version of the component
    state.data["steps"]["notebooks"].update(fingerprint="old")                  # its options changed
    del state.data["steps"]["tuning"]                                           # never installed
    state.data["steps"]["database"].pop("revision")                             # recorded by 0.1.0 (no revision)
    state.data["steps"]["database"]["fingerprint"] = "old"
    state.save()
    ch = orchestrator.changes(p.model_copy(update={"components": {n: c for n, c in p.components.items() if n != "monitoring"}}), "sim")
    assert ch["from"] == ch["to"] == orchestrator.version("appliance")
    assert ch["steps"]["pipelines"] == "new version" and ch["steps"]["tuning"] == "new"
    assert ch["steps"]["notebooks"].startswith("applied again") and ch["steps"]["database"].startswith("new version (the cluster's records")
    assert ch["steps"]["platform-base"] == "unchanged" and ch["removed"] == ["monitoring"]


def test_a_downgrade_is_refused_in_one_line(laptop):
    p, state = laptop
    state.set("appliance", "99.0.0")
    for call in (lambda: orchestrator.changes(p, "sim"), lambda: orchestrator._check_version(state, "demo")):
        with pytest.raises(UserError) as e:
            call()
        assert "brought up by appliance 99.0.0, newer than this" in e.value.line() and "downgrades are not supported" in e.value.line()
    state.set("appliance", "0.1.0")
    orchestrator._check_version(state, "demo")  # an older one: an upgrade
