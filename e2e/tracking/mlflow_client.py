"""MLflow as a user drives it, with the official client (mlflow-skinny) and nothing but their kubeconfig:
MLFLOW_TRACKING_AUTH=kubernetes-namespaced sends the kubeconfig's token and its namespace as the workspace.

    url                          (admin) where the tracking server answers from this host (a node's address and the
                                 Service's NodePort), kept in $E2E_ARTIFACTS/tracking-url for the users' steps
    log EXPERIMENT MODEL         log a run of the stub model (parameters, a loss curve, the dataset's digest, the model
                                 file as an artifact) in a new experiment EXPERIMENT-<random> and register it as the
                                 first version of a new model MODEL-<random>; the names kept in $E2E_ARTIFACTS
    read                         find that run and model version again, download the artifact, check its bytes
    denied OWNER                 as another user: OWNER's workspace, experiment, run, artifacts and model all refused
    clean                        the caller deletes the experiment and model `log` made
    workspace WS allowed|refused create (and delete) an experiment in workspace WS: exit 1 unless the answer is the one expected
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

URL_FILE = Path(os.environ.get("E2E_ARTIFACTS", "."), "tracking-url")
MODEL = b"stub-model: w=0.5 b=0.1\n"   # what the stub trainer writes, as bytes a check can compare
DATA = b"x,y\n1,0.6\n2,1.1\n3,1.6\n"


def _client():
    os.environ["MLFLOW_TRACKING_URI"] = URL_FILE.read_text().strip()
    os.environ["MLFLOW_TRACKING_AUTH"] = "kubernetes-namespaced"
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"  # the client reports usage to MLflow's servers unless told not to
    # artifacts through the server: it would hand out URLs of the artifact store, which answers inside the cluster only
    os.environ["MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD"] = os.environ["MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD"] = "false"
    import mlflow
    from mlflow import MlflowClient

    return mlflow, MlflowClient()


def cmd_url() -> None:
    from kubernetes import client, config

    config.load_kube_config()
    core = client.CoreV1Api()
    port = core.read_namespaced_service("mlflow", "tracking").spec.ports[0].node_port
    node = core.list_node().items[0]
    ip = next(a.address for a in node.status.addresses if a.type == "InternalIP")
    URL_FILE.write_text(f"http://{ip}:{port}\n")
    print("tracking at", URL_FILE.read_text().strip())


def _made(namespace: str) -> Path:
    """Where `log` keeps what it made in `namespace` (a run of the scenario makes new names: it can run again)."""
    return Path(os.environ.get("E2E_ARTIFACTS", "."), f"tracking-{namespace}.json")


def cmd_log(experiment: str, model: str) -> None:
    mlflow, c = _client()
    suffix = os.urandom(3).hex()
    experiment, model = f"{experiment}-{suffix}", f"{model}-{suffix}"
    mlflow.set_experiment(experiment)
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run(run_name="stub") as run:
        mlflow.log_params({"lr": 0.1, "epochs": 5})
        for step, loss in enumerate([0.9, 0.5, 0.3, 0.2, 0.15]):
            mlflow.log_metric("loss", loss, step=step)
        mlflow.set_tag("dataset.digest", hashlib.sha256(DATA).hexdigest())
        Path(tmp, "model.txt").write_bytes(MODEL)
        mlflow.log_artifact(str(Path(tmp, "model.txt")), artifact_path="model")
    c.create_registered_model(model)
    version = c.create_model_version(model, f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    _made(_namespace()).write_text(json.dumps({"run": run.info.run_id, "experiment": run.info.experiment_id, "version": version.version,
                                               "experiment_name": experiment, "model": model}))
    print(f"logged run {run.info.run_id} in {experiment}; {model} version {version.version} from {version.source}")


def cmd_read() -> None:
    mlflow, c = _client()
    made = json.loads(_made(_namespace()).read_text())
    experiment, model = made["experiment_name"], made["model"]
    exp = c.get_experiment_by_name(experiment)
    runs = c.search_runs([exp.experiment_id], "params.lr = '0.1'")
    assert runs and runs[0].data.metrics["loss"] == 0.15, runs
    history = [m.value for m in c.get_metric_history(runs[0].info.run_id, "loss")]
    assert history == [0.9, 0.5, 0.3, 0.2, 0.15], history
    with tempfile.TemporaryDirectory() as tmp:
        got = Path(mlflow.artifacts.download_artifacts(run_id=runs[0].info.run_id, artifact_path="model/model.txt", dst_path=tmp)).read_bytes()
    assert got == MODEL, got
    versions = c.search_model_versions(f"name = '{model}'")
    assert [v.run_id for v in versions] == [runs[0].info.run_id], versions
    print(f"read back run {runs[0].info.run_id}: loss curve {history}, model bytes equal, {model} version {versions[0].version}")


def cmd_denied(owner: str) -> None:
    """Each of these must fail for the caller (another user): naming OWNER's workspace, or from their own
    naming OWNER's objects by id, and the artifacts' proxied path."""
    import requests
    from mlflow.exceptions import MlflowException

    mlflow, c = _client()
    theirs = json.loads(_made(f"user-{owner}").read_text())
    refused = []

    def expect_refused(what, fn):
        try:
            fn()
        except MlflowException as e:
            refused.append(f"{what}: {_status(e)}")
            return
        raise SystemExit(f"NOT REFUSED: {what}")

    def steal_through_a_model_of_mine():
        """A model version of the caller's own whose source is OWNER's artifact, then read through the registry."""
        name = f"steal-{os.urandom(3).hex()}"
        c.create_registered_model(name)
        try:
            source = f"mlflow-artifacts:/workspaces/user-{owner}/{theirs['experiment']}/{theirs['run']}/artifacts/model"
            c.create_model_version(name, source)
            with tempfile.TemporaryDirectory() as tmp:
                mlflow.artifacts.download_artifacts(f"models:/{name}/1/model.txt", dst_path=tmp)
        finally:
            c.delete_registered_model(name)

    from mlflow.utils import workspace_context

    with workspace_context.WorkspaceContext(f"user-{owner}"):
        expect_refused("their experiment by name", lambda: c.get_experiment_by_name(theirs["experiment_name"]))
        expect_refused("their runs", lambda: c.search_runs([theirs["experiment"]]))
        expect_refused("an experiment planted in their workspace", lambda: c.create_experiment("planted"))
        expect_refused("their model", lambda: c.get_registered_model(theirs["model"]))
    expect_refused("their run by id", lambda: c.get_run(theirs["run"]))
    expect_refused("their experiment by id", lambda: c.get_experiment(theirs["experiment"]))
    expect_refused("their model version, from the caller's workspace", lambda: c.get_model_version(theirs["model"], theirs["version"]))
    expect_refused("their artifact through a model version of the caller's", steal_through_a_model_of_mine)
    # the artifact proxy, as a raw request: their workspace's path, from the caller's own workspace and from theirs
    token = _token()
    base = URL_FILE.read_text().strip() + "/api/2.0/mlflow-artifacts/artifacts/workspaces/user-" + owner + "/"
    for ws in (_namespace(), f"user-{owner}"):
        r = requests.get(base, headers={"Authorization": f"Bearer {token}", "X-MLFLOW-WORKSPACE": ws}, timeout=30)
        if r.ok:
            raise SystemExit(f"NOT REFUSED: listing their artifacts from workspace {ws}: {r.text[:200]}")
        refused.append(f"their artifacts from workspace {ws}: {r.status_code}")
    print("refused:", "; ".join(refused))


def _status(e) -> int:
    """The HTTP status of a failed call (the client says 500 where the body is not one of MLflow's errors, as
    the authorization's are)."""
    for code, status in (("PERMISSION_DENIED", 403), ("UNAUTHENTICATED", 401)):
        if code in str(e):
            return status
    return e.get_http_status_code()


def cmd_workspace(workspace: str, expect: str) -> None:
    """Create an experiment in `workspace` (and delete it again where that was allowed)."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils import workspace_context

    _, c = _client()
    with workspace_context.WorkspaceContext(workspace):
        try:
            c.delete_experiment(c.create_experiment(f"probe-{os.urandom(3).hex()}"))
            got = "allowed"
        except MlflowException as e:
            got = f"refused {_status(e)}"
    print(f"an experiment in workspace {workspace}: {got}")
    sys.exit(0 if got.startswith(expect) else 1)


def cmd_clean() -> None:
    _, c = _client()
    made = json.loads(_made(_namespace()).read_text())
    c.delete_registered_model(made["model"])
    c.delete_experiment(made["experiment"])
    print(f"deleted {made['model']} and {made['experiment_name']}")


def _token() -> str:
    from kubernetes import client, config

    config.load_kube_config(client_configuration=(cfg := client.Configuration()))
    return cfg.api_key["authorization"].removeprefix("Bearer ")


def _namespace() -> str:
    from kubernetes import config

    return config.list_kube_config_contexts()[1]["context"]["namespace"]


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    {"url": cmd_url, "log": cmd_log, "read": cmd_read, "denied": cmd_denied, "clean": cmd_clean, "workspace": cmd_workspace}[cmd](*args)
