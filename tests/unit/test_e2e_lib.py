"""`appliance.e2e.lib`, the helpers of script steps, without a cluster: outcomes read from objects, one-line
failures, workflow files, image references, user kubeconfigs and the command line."""

import json
from types import SimpleNamespace

import pytest
import yaml

from appliance.e2e import lib

PIPELINE = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: p-, namespace: user-alice}
spec:
  entrypoint: main
  templates: [{name: main, container: {image: "${images.my-trainer}", command: [python3, /app/train.py]}}]
"""


def _job(*conditions):
    return {"metadata": {"name": "j", "namespace": "ns"},
            "status": {"conditions": [{"type": t, "status": s, "reason": r} for t, s, r in conditions]}}


def test_a_job_ends_by_its_conditions():
    assert lib.job_outcome("Job", _job(("Complete", "True", ""))) == "Succeeded"
    assert lib.job_outcome("PyTorchJob", _job(("Created", "True", ""), ("Running", "False", ""), ("Succeeded", "True", ""))) == "Succeeded"
    assert lib.job_outcome("PyTorchJob", _job(("Failed", "True", "BackoffLimitExceeded"))) == "Failed"
    assert lib.job_outcome("Job", _job(("Complete", "False", ""))) is None
    assert lib.job_outcome("TFJob", {"metadata": {}}) is None


class _Kube:
    """Answers `get` with the objects given, one a call (the last one again after that)."""

    def __init__(self, *objs):
        self.objs = list(objs)

    def get(self, api_version, kind, name, namespace):
        obj = self.objs.pop(0) if len(self.objs) > 1 else self.objs[0]
        return SimpleNamespace(to_dict=lambda: obj) if obj is not None else None


def test_wait_job_returns_the_succeeded_job_and_fails_in_one_line(monkeypatch):
    monkeypatch.setattr(lib, "kube", lambda kubeconfig=None: fake)
    fake = _Kube(None, _job(("Running", "True", "")), _job(("Succeeded", "True", "")))
    assert lib.wait_job("PyTorchJob", "j", "ns", timeout=5, poll=0.01)["status"]["conditions"][0]["type"] == "Succeeded"
    fake = _Kube(_job(("Failed", "True", "BackoffLimitExceeded")))
    with pytest.raises(lib.Failed, match="^PyTorchJob ns/j failed: Failed=True BackoffLimitExceeded$"):
        lib.wait_job("PyTorchJob", "j", "ns", timeout=5, poll=0.01)
    fake = _Kube(_job(("Running", "True", "")))
    with pytest.raises(lib.Failed, match="^Job ns/j has not ended after 0s: Running=True$"):
        lib.wait_job("Job", "j", "ns", timeout=0.05, poll=0.01)
    fake = _Kube(None)
    with pytest.raises(lib.Failed, match="^Job ns/j: not found after 0s$"):
        lib.wait_job("Job", "j", "ns", timeout=0.05, poll=0.01)
    with pytest.raises(lib.Failed, match="unknown job kind 'Jobs': one of Job, PyTorchJob"):
        lib.wait_job("Jobs", "j", "ns")


def test_a_failed_workflow_names_its_failed_steps():
    wf = {"metadata": {"name": "p-x", "namespace": "ns"},
          "status": {"phase": "Failed", "message": "child 'p-x-2' failed",
                     "nodes": {"a": {"displayName": "p-x", "type": "Steps", "phase": "Failed"},
                               "b": {"displayName": "prepare", "type": "Pod", "phase": "Succeeded"},
                               "c": {"displayName": "train", "type": "Pod", "phase": "Failed", "message": "Error (exit code 1)"}}}}
    assert lib.workflow_outcome(wf) == "workflow ns/p-x Failed: child 'p-x-2' failed; failed steps: train (Error (exit code 1))"
    assert lib.workflow_outcome({"metadata": {"name": "q", "namespace": "ns"}}) == "workflow ns/q Pending"


def test_a_workflow_file_gets_the_built_images_reference(tmp_path, monkeypatch):
    (tmp_path / "p.yaml").write_text(PIPELINE)
    monkeypatch.setenv("E2E_IMAGES", json.dumps({"my-trainer": "appliance.local/e2e/my-trainer:abc"}))
    body = lib.workflow_body(tmp_path / "p.yaml")
    assert body["spec"]["templates"][0]["container"]["image"] == "appliance.local/e2e/my-trainer:abc"
    monkeypatch.setenv("E2E_IMAGES", "{}")
    with pytest.raises(lib.Failed, match=r"^\$\{images.my-trainer\}: no earlier build step"):
        lib.workflow_body(tmp_path / "p.yaml")
    assert lib.with_images("x ${images.other} y", {}, strict=False) == "x ${images.other} y"


def test_a_workflow_from_a_pipeline_function_and_what_is_not_one(tmp_path):
    (tmp_path / "steps.py").write_text("NAME = 'from-py'\n")
    (tmp_path / "p.py").write_text("from steps import NAME\n\ndef pipeline():\n    return {'apiVersion': 'argoproj.io/v1alpha1', "
                                   "'kind': 'Workflow', 'metadata': {'name': NAME}}\n")
    assert lib.workflow_body(tmp_path / "p.py")["metadata"]["name"] == "from-py"
    (tmp_path / "bad.py").write_text("def pipeline():\n    raise ValueError('no data')\n")
    with pytest.raises(lib.Failed, match=r"bad.py: pipeline\(\) failed: ValueError: no data$"):
        lib.workflow_body(tmp_path / "bad.py")
    with pytest.raises(lib.Failed, match="not a Workflow \\(kind 'Job'\\)"):
        lib.workflow_body({"kind": "Job"})
    with pytest.raises(lib.Failed, match="no workflow file"):
        lib.workflow_body(tmp_path / "nowhere.yaml")


def test_a_users_kubeconfig_holds_their_token_only(tmp_path):
    asked = []
    admin = SimpleNamespace(kubeconfig_for=lambda ns, sa, seconds, name: asked.append((ns, sa, seconds)) or
                            {"users": [{"name": sa, "user": {"token": "t0k"}}], "contexts": [{"context": {"namespace": ns}}]})
    path = lib.kubeconfig_as("user-alice/alice", admin, tmp_path)
    assert asked == [("user-alice", "alice", 600)] and yaml.safe_load(path.read_text())["users"][0]["user"] == {"token": "t0k"}
    assert path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(lib.Failed, match="'alice' is not namespace/serviceaccount"):
        lib.kubeconfig_as("alice", admin, tmp_path)


def test_predict_routes():
    assert lib.predict_path("m", "v1") == "/v1/models/m:predict" and lib.predict_path("m", "v2") == "/v2/models/m/infer"
    with pytest.raises(lib.Failed, match="unknown protocol 'v3'"):
        lib.predict_path("m", "v3")


def test_the_command_line_fails_in_one_line(tmp_path, capsys):
    assert lib.main(["predict", "ns/m", "{not json"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("FAILED: the request is not JSON") and err.count("\n") == 1
    assert lib.main(["workflow", str(tmp_path / "nowhere.yaml")]) == 1
    assert capsys.readouterr().err == f"FAILED: no workflow file {tmp_path / 'nowhere.yaml'}\n"
