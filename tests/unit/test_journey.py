"""The journey scenario's pure parts: its pipeline's shape (tune → train → evaluate → serve → predict, or a
retrain without tuning), the report's drawings of steps and trials, and SVG artifacts inline in the report."""

import sys
import types
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def journey():
    pytest.importorskip("hera")
    sys.path.insert(0, str(ROOT / "e2e" / "pipelines"))
    try:
        import journey
        import journey_check

        yield types.SimpleNamespace(pipeline=journey.pipeline, check=journey_check)
    finally:
        sys.path.remove(str(ROOT / "e2e" / "pipelines"))


def _dag(wf: dict) -> dict[str, dict]:
    main = next(t for t in wf["spec"]["templates"] if t["name"] == "main")
    return {t["name"]: t for t in main["dag"]["tasks"]}


def test_the_pipeline_tunes_then_trains_with_the_best_parameters_then_serves(journey):
    wf = journey.pipeline(trials=5).to_dict()
    dag = _dag(wf)
    assert dag["train"]["depends"] == "volume && tune" and dag["evaluate"]["depends"] == "prepare && train"
    assert dag["serve"]["depends"] == "evaluate" and "< {{workflow.parameters.threshold}}" in dag["serve"]["when"]
    assert dag["predict"]["depends"] == "serve.Succeeded"
    args = {p["name"]: p["value"] for p in dag["train"]["arguments"]["parameters"]}
    assert args == {"lr": "{{tasks.tune.outputs.parameters.lr}}", "epochs": "{{tasks.tune.outputs.parameters.epochs}}"}
    tune = next(t for t in wf["spec"]["templates"] if t["name"] == "tune")["resource"]
    exp = yaml.safe_load(tune["manifest"])
    assert exp["kind"] == "Experiment" and exp["spec"]["maxTrialCount"] == 5 and tune["setOwnerReference"]
    assert tune["successCondition"] == "status.trialsSucceeded > 4"
    assert [p["name"] for p in exp["spec"]["parameters"]] == ["lr", "epochs"]


def test_a_retrain_with_known_parameters_leaves_tuning_out(journey):
    wf = journey.pipeline(lr=0.2, epochs=60).to_dict()
    dag = _dag(wf)
    assert "tune" not in dag and "tune" not in [t["name"] for t in wf["spec"]["templates"]]
    assert dag["train"]["depends"] == "volume"
    assert {p["name"]: p["value"] for p in dag["train"]["arguments"]["parameters"]} == {"lr": "0.2", "epochs": "60"}


def _node(name, phase, start, end, kind="Pod"):
    return {"displayName": name, "type": kind, "phase": phase, "startedAt": f"2026-01-01T00:00:{start:02d}Z",
            "finishedAt": f"2026-01-01T00:00:{end:02d}Z"}


def test_the_steps_are_drawn_in_start_order_with_state_and_seconds(journey):
    wf = {"metadata": {"name": "journey"}, "status": {"nodes": {
        "a": _node("train", "Succeeded", 10, 40), "b": _node("prepare", "Succeeded", 0, 5),
        "c": _node("main", "Running", 0, 50, "DAG"), "d": _node("serve", "Failed", 41, 50)}}}
    svg = journey.check.steps_svg([wf])
    assert svg.index("journey/prepare") < svg.index("journey/train") < svg.index("journey/serve") and "journey/main" not in svg
    assert "Succeeded 30s" in svg and "Failed 9s" in svg and "#cf222e" in svg


def test_the_trials_are_drawn_with_the_best_one_ringed(journey):
    def trial(name, lr, epochs, loss):
        return {"metadata": {"name": name}, "spec": {"parameterAssignments": [{"name": "lr", "value": lr}, {"name": "epochs", "value": epochs}]},
                "status": {"observation": {"metrics": [{"name": "loss", "latest": loss}]}}}

    svg = journey.check.trials_svg([trial("t1", "0.1", "20", "0.002"), trial("t2", "0.3", "70", "0.0001"),
                                    trial("t3", "0.05", "10", "unavailable")], best="t2")
    assert svg.count("r='3.5'") == 2 and svg.count("r='7'") == 1 and "t2: lr=0.3 epochs=70 loss=0.0001" in svg


def test_svg_artifacts_are_inline_in_the_report(tmp_path):
    from appliance.e2e import reports
    from appliance.e2e.runner import Runner
    from appliance.e2e.scenario import Scenario

    s = Scenario.model_validate({"name": "drawn", "steps": [
        {"name": "draw", "script": {"run": "echo \"<svg id='drawn'></svg>\" > $E2E_ARTIFACTS/plot.svg; echo x > $E2E_ARTIFACTS/data.json"}}]})
    r = Runner(kube=types.SimpleNamespace(kubeconfig="/dev/null"), artifacts=tmp_path / "art").run(s)
    assert [p.name for p in r.artifacts] == ["plot.svg"]
    assert "<figure style='display:inline-block;margin:8px'><svg id='drawn'></svg>" in reports.html_report([r], tmp_path / "r.html").read_text()


def test_a_users_script_puts_their_namespace_in_the_diagnostics(tmp_path):
    """When the notebook's step fails, the report shows the failing pods and events of the user's namespace."""
    from appliance.e2e.runner import Runner
    from appliance.e2e.scenario import Scenario

    s = Scenario.model_validate({"name": "as-user", "steps": [{"name": "fail", "script": {"as": "user-alice/alice", "run": "exit 3"}}]})
    runner = Runner(kube=types.SimpleNamespace(kubeconfig="/dev/null", kubeconfig_for=lambda *a: {"kind": "Config"}), artifacts=tmp_path)
    runner.diagnostics = lambda: f"namespaces {sorted(runner.namespaces)}"
    r = runner.run(s)
    assert not r.passed and r.steps[0].diagnostics == "namespaces ['user-alice']"
