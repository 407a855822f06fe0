"""`appliance e2e --scenarios DIR --scenario NAME`: the user's scenarios beside their files, the appliance's own
by name, bad files refused before any cluster work, --junit, and exit codes a CI can tell apart."""

import sys
import types

import pytest

from appliance import cli, e2e, orchestrator
from appliance.errors import UserError

SCRIPTED = """\
name: {name}
steps:
  - name: read a file beside me
    script: {{run: cat data.txt, stdout_contains: beside}}
"""


@pytest.fixture
def theirs(tmp_path):
    """A folder of the user's: two scenarios, a file they read, a manifest that is not a scenario."""
    folder = tmp_path / "scenarios"
    folder.mkdir()
    for name in ("train", "serve"):
        (folder / f"{name}.yaml").write_text(SCRIPTED.format(name=name))
    (folder / "data.txt").write_text("beside the scenario\n")
    (folder / "job.yaml").write_text("apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\n")
    return folder


def test_their_folder_runs_whole_or_by_name_and_the_appliances_own_by_name(theirs):
    assert [s.name for s in e2e.select(folders=[str(theirs)])] == ["serve", "train"]
    assert [s.name for s in e2e.select(["train", "user-isolation"], [str(theirs)])] == ["train", "user-isolation"]
    assert e2e.select(["train"], [str(theirs)])[0].path == theirs / "train.yaml"
    with pytest.raises(UserError, match="no scenario named 'nope'") as e:
        e2e.select(["nope"], [str(theirs)])
    assert e.value.code == 2 and e.value.fix.startswith("known: serve, train, ") and "user-isolation" in e.value.fix


def test_a_broken_scenario_stops_the_run_with_its_line(theirs):
    (theirs / "serve.yaml").write_text(SCRIPTED.format(name="serve").replace("script:", "scrip:") + "  - name: x\n    timeout: 0\n")
    with pytest.raises(UserError) as e:
        e2e.select(folders=[str(theirs)])
    assert e.value.code == 2 and e.value.where.startswith(f"{theirs / 'serve.yaml'}:4")
    assert "1 more: `appliance e2e validate" in e.value.fix


def test_their_scripts_run_beside_them_and_junit_goes_where_asked(theirs, tmp_path, monkeypatch):
    monkeypatch.setattr("appliance.kube.Kube", lambda kubeconfig: types.SimpleNamespace(kubeconfig=kubeconfig))
    results = e2e.run("/dev/null", "sim", set(), ["train"], tmp_path / "out", folders=[str(theirs)], junit=tmp_path / "ci" / "junit.xml")
    assert [r.passed for r in results] == [True], results
    assert (tmp_path / "ci" / "junit.xml").is_file() and (tmp_path / "out" / "report.html").is_file()


@pytest.mark.parametrize("raised, code", [(UserError("step 'cluster' failed: kind create failed", "logs in x", "fix it"), 3),
                                         (UserError("another appliance command is working on cluster ci", code=3), 3),
                                         (UserError("bad option", "profile", "fix it", code=2), 2)])
def test_a_cluster_that_does_not_come_up_is_not_a_scenario_failure(theirs, monkeypatch, capsys, raised, code):
    def up(*args, **kwargs):
        raise raised

    monkeypatch.setattr(orchestrator, "up", up)
    monkeypatch.setattr(sys, "argv", ["appliance", "e2e", "--provider", "sim", "--scenarios", str(theirs)])
    with pytest.raises(SystemExit) as e:
        cli.run()
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert e.value.code == code and errors == [f"error: {raised.line()}"]


def test_bad_scenarios_are_refused_before_the_cluster(theirs, monkeypatch, capsys):
    (theirs / "train.yaml").write_text("name: train\nsteps: []\nwhat: 1\n")
    monkeypatch.setattr(orchestrator, "up", lambda *a, **k: pytest.fail("up ran"))
    monkeypatch.setattr(sys, "argv", ["appliance", "e2e", "--provider", "sim", "--scenarios", str(theirs)])
    with pytest.raises(SystemExit) as e:
        cli.run()
    assert e.value.code == 2 and f"{theirs / 'train.yaml'}:3 (what): unknown field 'what'" in capsys.readouterr().err


def test_init_writes_a_scenario_that_validates_and_overwrites_nothing(tmp_path):
    mine = tmp_path / "mine"
    written = e2e.init(mine)
    assert sorted(str(p.relative_to(mine)) for p in written) == ["my-model.yaml", "pipeline.yaml", "scenario.schema.json", "serve.yaml",
                                                                 "train.yaml", "trainer/requirements.txt", "trainer/serve.py", "trainer/train.py"]
    assert e2e.validate(e2e.files_in([str(mine)])) == []
    (s,) = e2e.select(folders=[str(mine)])
    assert [st.kind for st in s.steps] == ["build", "apply", "script", "script", "apply", "assert", "script"]
    assert s.providers == ["kind", "sim"] and s.steps[-1].providers == ["kind", "baremetal"]  # the model answers where pods run code
    assert s.components == ["user-profiles", "training-operator", "pipelines", "kserve"]
    (mine / "train.yaml").write_text("edited")
    with pytest.raises(UserError, match="would overwrite my-model.yaml") as e:
        e2e.init(mine)
    assert e.value.code == 2 and (mine / "train.yaml").read_text() == "edited"
