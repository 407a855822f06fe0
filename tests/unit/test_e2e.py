"""Scenario format, partial matching and the JUnit/HTML reports (no cluster needed)."""

import xml.etree.ElementTree as ET

import pytest

from appliance.e2e import reports, scenario, scenario_files, select
from appliance.e2e.runner import ScenarioResult, StepResult, matches
from appliance.errors import ProfileError


def test_partial_match():
    live = {"metadata": {"name": "j", "labels": {"a": "1", "b": "2"}},
            "status": {"succeeded": 2, "conditions": [{"type": "Failed", "status": "False"}, {"type": "Complete", "status": "True"}]}}
    assert matches({"metadata": {"labels": {"a": "1"}}, "status": {"conditions": [{"type": "Complete", "status": "True"}]}}, live)
    assert not matches({"status": {"conditions": [{"type": "Complete", "status": "False"}]}}, live)
    assert matches({"status": {"succeeded": "2"}}, live)  # YAML "2" vs API 2
    assert not matches({"status": {"active": 1}}, live)


def test_shipped_scenarios_load():
    names = {scenario.load(p).name for p in scenario_files()}
    assert {"user-isolation", "gpu-scheduling"} <= names


def test_step_needs_exactly_one_action(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("name: s\nsteps:\n  - name: two\n    apply: {objects: [{kind: X}]}\n    script: {run: 'true'}\n")
    with pytest.raises(ProfileError) as e:
        scenario.load(f)
    assert "exactly one of" in e.value.line() and str(f) in e.value.line()


def test_unknown_scenario_is_one_line():
    with pytest.raises(Exception, match="no scenario named 'nope'"):
        select(["nope"])


def test_reports(tmp_path):
    r = ScenarioResult("demo", [StepResult("ok step", "apply", "passed", 0.5, "applied 1"),
                                StepResult("bad step", "assert", "failed", 2.0, "no object matched", "pod x: Pending <oops>"),
                                StepResult("later", "script", "skipped", 0.0, "an earlier step failed")])
    j = ET.parse(reports.junit([r], tmp_path / "junit.xml")).getroot()
    suite = j.find("testsuite")
    assert suite.get("tests") == "3" and suite.get("failures") == "1" and suite.get("skipped") == "1"
    assert "Pending" in suite.findall("testcase")[1].find("failure").text
    page = reports.html_report([r], tmp_path / "report.html").read_text()
    assert "bad step" in page and "&lt;oops&gt;" in page and "failed in 2.5s" in page


def test_a_notebooks_coloured_traceback_still_makes_a_junit_file_that_parses(tmp_path):
    """A notebook cell's error carries terminal colours (ESC, illegal in XML): the file must still parse."""
    tb = "\x1b[0;31mAssertionError\x1b[0m: phase \x1b[33m'Failed'\x1b[39m\x00"
    r = ScenarioResult("demo", [StepResult("cell", "script", "failed", 1.0, tb, tb)])
    case = ET.parse(reports.junit([r], tmp_path / "junit.xml")).getroot().find("testsuite/testcase/failure")
    assert case.get("message") == case.text == "AssertionError: phase 'Failed'"


def test_an_api_error_is_described_by_its_message_not_its_headers():
    from kubernetes.client.rest import ApiException

    from appliance.e2e.lib import describe as _describe

    e = ApiException(status=403, reason="Forbidden")
    e.body = '{"kind":"Status","message":"inferenceservices.serving.kserve.io \\"x\\" is forbidden: User \\"bob\\" cannot create"}'
    e.headers = {"Audit-Id": "123"}
    got = _describe(e)
    assert got == 'ApiException: 403 inferenceservices.serving.kserve.io "x" is forbidden: User "bob" cannot create'
    assert _describe(ValueError("plain")) == "ValueError: plain"


def test_a_step_for_a_missing_component_is_skipped_and_says_why():
    from appliance.e2e.runner import Runner
    from appliance.e2e.scenario import Scenario

    s = Scenario.model_validate({"name": "x", "steps": [
        {"name": "needs serving", "components": ["kserve"],
         "access": {"as": "user-a/a", "verbs": ["list"], "resources": ["inferenceservices.serving.kserve.io"], "namespace": "user-a", "allowed": True}}]})
    r = Runner(kube=None, enabled={"user-profiles"}).run(s)
    assert [(x.status, x.message) for x in r.steps] == [("skipped", "needs kserve")] and r.passed


def test_a_step_for_other_providers_is_skipped_and_says_why():
    from appliance.e2e.runner import Runner
    from appliance.e2e.scenario import Scenario

    s = Scenario.model_validate({"name": "x", "steps": [
        {"name": "the model answers", "providers": ["kind", "baremetal"], "script": {"run": "exit 1"}}]})
    r = Runner(kube=None, provider="sim").run(s)
    assert [(x.status, x.message) for x in r.steps] == [("skipped", "runs on kind/baremetal only")] and r.passed
    with pytest.raises(ValueError, match="providers"):  # a provider that does not exist is refused when the file is read
        Scenario.model_validate({"name": "x", "steps": [{"name": "s", "providers": ["kinde"], "script": {"run": "true"}}]})


def test_steps_share_the_scenarios_folder_and_its_screenshots_reach_the_report(tmp_path):
    """A script leaves a value and a screenshot in $E2E_ARTIFACTS; a later step reads the value; the report
    shows the picture inline."""
    import types

    from appliance.e2e import reports
    from appliance.e2e.runner import Runner
    from appliance.e2e.scenario import Scenario

    png = "89504e470d0a1a0a"  # a PNG's signature is enough for the page
    s = Scenario.model_validate({"name": "shots", "steps": [
        {"name": "leave", "script": {"run": f"echo hello > $E2E_ARTIFACTS/word; python3 -c \"import sys; sys.stdout.buffer.write(bytes.fromhex('{png}'))\" > $E2E_ARTIFACTS/view.png"}},
        {"name": "read", "script": {"run": "cat $E2E_ARTIFACTS/word", "stdout_contains": "hello"}}]})
    r = Runner(kube=types.SimpleNamespace(kubeconfig="/dev/null"), artifacts=tmp_path / "art").run(s)
    assert r.passed, [x.message for x in r.steps]
    assert [p.name for p in r.artifacts] == ["view.png"]
    page = reports.html_report([r], tmp_path / "report.html").read_text()
    assert "src='data:image/png;base64,iVBORw0KGgo='" in page and "<figcaption>view</figcaption>" in page


@pytest.mark.parametrize("outcome, status, message", [
    (None, "failed", "was admitted for 0s; expected a refusal holding 'denied here'"),
    ((403, "policy says: denied here"), "passed", "1 refused as expected"),
    ((403, "quota exceeded"), "failed", "refused, but not as expected ('denied here')"),
    ((500, "denied here"), "failed", "refused, but not as expected"),
])
def test_a_refused_step_passes_only_on_the_expected_refusal(outcome, status, message):
    import json
    import types

    from kubernetes.dynamic.exceptions import DynamicApiError

    from appliance.e2e.runner import Runner
    from appliance.e2e.scenario import Scenario

    tried = []

    def apply(objs, dry_run=False):
        tried.append(dry_run)
        if outcome:
            e = DynamicApiError(types.SimpleNamespace(status=outcome[0], reason="", body=json.dumps({"message": outcome[1]}), headers={}))
            raise e
        return 1

    s = Scenario.model_validate({"name": "x", "steps": [{"name": "attack", "timeout": 0.01, "apply": {
        "refused": "denied here", "objects": [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "n"}}]}}]})
    runner = Runner(kube=types.SimpleNamespace(apply=apply), poll=0)
    runner.diagnostics = lambda: ""  # no cluster to read pods from
    r = runner.run(s)
    (step,) = r.steps
    assert step.status == status and message in step.message, step.message
    assert tried and all(tried)  # only ever a dry run
