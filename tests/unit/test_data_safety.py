"""No silent destruction: `down` asks where a cluster holds data, a change of an option placing a component's
data is refused, switched-off components show as removed with what was kept."""

import pytest

from appliance import orchestrator, profiles
from appliance.errors import UserError
from appliance.plan import State


def _cluster(tmp_path, monkeypatch, steps: dict[str, str], options: dict | None = None) -> str:
    """A state folder as `up` leaves it for a simulator cluster named `demo` (not running)."""
    monkeypatch.setenv("APPLIANCE_STATE", str(tmp_path))
    laptop = profiles.load("laptop").profile
    state = State(tmp_path / "demo")
    state.data.update(provider="sim", profile="laptop", cluster_spec=laptop.cluster.model_copy(update={"name": "demo"}).model_dump(),
                      components={n: (options or {}).get(n, {}) for n in steps},
                      steps={"cluster": {"status": "done"}, **{n: {"status": s} for n, s in steps.items()}})
    state.save()
    return "demo"


def _cli(args, **kw):
    from click.testing import CliRunner

    from appliance import cli as cli_mod

    return CliRunner().invoke(cli_mod.main, args, standalone_mode=False, **kw)


def test_down_on_a_cluster_with_data_needs_a_yes(tmp_path, monkeypatch):
    from appliance import cli as cli_mod

    name = _cluster(tmp_path, monkeypatch, {"platform-base": "done", "pipelines": "done", "database": "removed"})
    held = orchestrator.held_data(name)
    assert held == ["every user's pipeline artifacts (the artifact store's volume) (pipelines)"]  # a removed one holds nothing here
    gone = []
    monkeypatch.setattr(cli_mod.orchestrator, "down", lambda cluster, rep: gone.append(cluster))
    r = _cli(["down", "--cluster", name])  # no terminal: refused, nothing touched
    assert isinstance(r.exception, UserError) and r.exception.code == 2 and not gone
    assert "holds data that `down` deletes with it: every user's pipeline artifacts" in r.exception.line()
    assert "--yes" in r.exception.line()
    monkeypatch.setattr(cli_mod, "_interactive", lambda: True)
    r = _cli(["down", "--cluster", name], input="n\n")
    assert r.exit_code == 1 and "Delete it all?" in r.output and "nothing deleted" in r.output and not gone
    r = _cli(["down", "--cluster", name], input="y\n")
    assert r.exit_code == 0 and gone == [name]
    r = _cli(["down", "--cluster", name, "--yes"])
    assert r.exit_code == 0 and gone == [name, name]


def test_down_on_a_cluster_without_data_does_not_ask(tmp_path, monkeypatch):
    from appliance import cli as cli_mod

    name = _cluster(tmp_path, monkeypatch, {"platform-base": "done", "training-operator": "done"})
    gone = []
    monkeypatch.setattr(cli_mod.orchestrator, "down", lambda cluster, rep: gone.append(cluster))
    assert _cli(["down", "--cluster", name]).exit_code == 0 and gone == [name]


@pytest.mark.parametrize("component,option,value", [("pipelines", "namespace", "artifacts"),
                                                      ("database", "storage_class", "fast")])
def test_moving_an_installed_components_data_is_refused_with_the_fix(tmp_path, monkeypatch, component, option, value):
    _cluster(tmp_path, monkeypatch, {"platform-base": "done", component: "done"})
    state = State(tmp_path / "demo")
    laptop = profiles.load("laptop").profile
    moved = laptop.model_copy(update={"components": {**laptop.components, component: laptop.components[component].model_copy(
        update={"options": {**laptop.components[component].options, option: value}})}})
    with pytest.raises(UserError) as e:
        orchestrator._check_fixed(state, moved)
    line = e.value.line()
    assert f"component '{component}' keeps" in line and f"changing it to '{value}' would leave that data behind" in line
    assert f"components.{component}.options.{option}" in line and "keep " in line and e.value.code == 2
    orchestrator._check_fixed(state, laptop)  # unchanged: fine
    other = laptop.model_copy(update={"components": {**laptop.components, component: laptop.components[component].model_copy(
        update={"options": {**laptop.components[component].options, "cpu": "75m"}})}})
    orchestrator._check_fixed(state, other)  # an option that does not place data may change
    state.set_step(component, status="removed")
    orchestrator._check_fixed(state, moved)  # not installed (any more): a new place is a fresh start


def test_the_components_with_volumes_or_users_say_what_data_they_hold():
    from appliance.components import CATALOG, kit

    with_volumes = {n for n, c in CATALOG.items() if kit._has_volumes(c().objects(crds=False))}
    assert with_volumes == {"pipelines", "database", "notebooks", "monitoring"}
    assert {n for n, c in CATALOG.items() if c.decl.data} == with_volumes | {"user-profiles"}


def test_status_shows_a_removed_component_and_what_it_kept():
    from appliance.report import status_text

    st = {"cluster": "demo", "provider": "sim", "profile": "laptop", "ready": True, "kubeconfig": "k",
          "components": {"pipelines": {"step": "removed", "kept": ["Namespace/pipelines", "PersistentVolumeClaim/artifact-store"]},
                         "platform-base": {"step": "done", "ready": True}}}
    text = status_text(st)
    assert "removed (kept, holding data: Namespace/pipelines, PersistentVolumeClaim/artifact-store)" in text
