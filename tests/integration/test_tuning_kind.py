"""Katib on a real kind cluster, with the shared PostgreSQL: the controller, db-manager, goptuna suggestions
and the metrics collector from images built here (or upstream pins). alice tunes the stub model (2-rank
PyTorchJob trials; the database pod deleted mid-experiment loses nothing), drives Katib with KatibClient,
sees clear failures, and bob gets 403 in her namespace; her trial's observation logs are hers alone through
db-manager's front; with queues, jobs and trials go through her LocalQueue. A second `up` keeps the database's
passwords."""

import base64
import importlib.util
from pathlib import Path

import pytest

from appliance import orchestrator, report
from appliance.components import CATALOG
from appliance.kube import Kube
from appliance.util import wait
from tests.integration.clusters import scenario_passes

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.docker]
COMPONENTS = ("platform-base", "user-profiles", "training-operator", "database", "tuning", "network-policy")


@pytest.fixture(scope="module")
def kind(stack):
    """The stack cluster (conftest.py): (profile, result of its `up`)."""
    return stack


def _run(result, name, tmp_path):
    scenario_passes(result, "kind", COMPONENTS, name, tmp_path)


def _passwords(kube) -> dict[str, str]:
    data = kube.get("v1", "Secret", "database-credentials", "database").to_dict()["data"]
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def test_up_installs_database_and_tuning(kind):
    profile, result = kind
    assert not result["failed"] and {"database", "tuning"} <= set(result["ran"])
    kube = Kube(result["kubeconfig"])
    for name in ("database", "tuning"):
        assert CATALOG[name](profile.components[name].options).ready(kube) == (True, "")
    pw = _passwords(kube)
    assert set(pw) == {"postgres", "katib", "mlflow"} and all(len(v) >= 24 for v in pw.values())  # the ci profile's clients


def test_tune_stub(kind, tmp_path):
    _run(kind[1], "tune-stub", tmp_path)


def test_jobs_and_trials_go_through_the_users_queue(kind, tmp_path):
    """queues in the stack: alice's PyTorchJob and Katib trials are admitted through her LocalQueue and
    complete; a job over her quota waits with Kueue's reason; bob cannot touch queue objects."""
    scenario_passes(kind[1], "kind", (*COMPONENTS, "queues"), "queue-basics", tmp_path)


def test_tune_sdk(kind, tmp_path):
    _run(kind[1], "tune-sdk", tmp_path)


def test_tune_bad(kind, tmp_path):
    _run(kind[1], "tune-bad", tmp_path)


def test_tune_isolation(kind, tmp_path):
    _run(kind[1], "tune-isolation", tmp_path)


def _probe_module():
    spec = importlib.util.spec_from_file_location("dbm_probe", Path(__file__).resolve().parents[2] / "e2e" / "models" / "dbm_probe.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _experiment(name: str) -> dict:
    job = {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{
        "name": "train", "image": "appliance.local/trainer:stub", "imagePullPolicy": "IfNotPresent",
        "command": ["python3", "/app/stub_train.py", "--lr=${trialParameters.lr}", "--epochs=3", "--out=/tmp/m", "--linger=3"],
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}}]}}}}
    return {"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"name": name, "namespace": "user-alice"},
            "spec": {"objective": {"type": "minimize", "objectiveMetricName": "loss"}, "algorithm": {"algorithmName": "random"},
                     "maxTrialCount": 1, "parallelTrialCount": 1,
                     "parameters": [{"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.01", "max": "0.1"}}],
                     "trialTemplate": {"primaryContainerName": "train", "trialParameters": [{"name": "lr", "reference": "lr"}],
                                       "trialSpec": job}}}


def test_observation_logs_are_their_owners_only(kind):
    """db-manager keys observation logs by trial name and authenticates no one; its front passes a call on only
    when the caller's pod is Katib's or in the trial's namespace. A pod of bob's labelled as alice's trial (the
    network policy lets it through) is refused reading, deleting and writing her trial's logs; her own pod
    reads them, intact after bob's attempts. Katib itself (controller, collectors) goes through the same front."""
    from kubernetes import client

    _, result = kind
    kube = Kube(result["kubeconfig"])
    objs = client.CustomObjectsApi(kube.api)
    exp = _experiment("observation-logs")
    kube.apply([exp])
    try:
        def done():
            st = objs.get_namespaced_custom_object("kubeflow.org", "v1beta1", "user-alice", "experiments", "observation-logs").get("status") or {}
            return st.get("trialsSucceeded", 0) >= 1, f"trials: {st.get('trialsSucceeded', 0)} succeeded"
        wait.until(done, 420, "user-alice/observation-logs")
        (trial,) = [t["metadata"]["name"] for t in objs.list_namespaced_custom_object(
            "kubeflow.org", "v1beta1", "user-alice", "trials", label_selector="katib.kubeflow.org/experiment=observation-logs")["items"]]
        probe = _probe_module()
        bobs = probe.run("user-bob", trial, ["get", "delete", "report"], kubeconfig=result["kubeconfig"])
        assert bobs.split("\n")[:3] == [f"{m} {trial}: refused" for m in ("get", "delete", "report")], bobs
        hers = probe.run("user-alice", trial, ["get"], kubeconfig=result["kubeconfig"])
        assert hers.startswith(f"get {trial}: answered (") and int(hers.split("(")[1].split()[0]) > 20, hers  # her loss lines
    finally:
        kube.delete([exp])


def test_only_katibs_controller_makes_trials_even_against_the_admin(kind):
    """Whatever RBAC grants, a Trial is made by Katib's controller (its service account): the admin is refused."""
    from kubernetes import client

    kube = Kube(kind[1]["kubeconfig"])
    trial = {"apiVersion": "kubeflow.org/v1beta1", "kind": "Trial", "metadata": {"name": "made-by-hand", "namespace": "user-alice"},
             "spec": {"primaryContainerName": "train", "objective": {"type": "minimize", "objectiveMetricName": "loss"},
                      "runSpec": _experiment("x")["spec"]["trialTemplate"]["trialSpec"]}}
    with pytest.raises(client.ApiException) as e:
        client.CustomObjectsApi(kube.api).create_namespaced_custom_object("kubeflow.org", "v1beta1", "user-alice", "trials", trial, dry_run="All")
    assert e.value.status == 403 and "made by Katib's controller" in e.value.body


def test_second_up_keeps_the_database_passwords(kind):
    """A second `up` that re-applies the database (a new client added) keeps every existing password and
    makes one for the newcomer; the server restarts with its role, Katib keeps working (tune-isolation).
    The profile's own clients are back after (the stack cluster is shared)."""
    profile, result = kind
    kube = Kube(result["kubeconfig"])
    before = _passwords(kube)
    try:
        db = profile.components["database"]
        extra = db.model_copy(update={"options": {**db.options, "clients": [*db.options["clients"], "extra"]}})
        out = orchestrator.up(profile.model_copy(update={"components": {**profile.components, "database": extra}}), "kind", report.make())
        assert not out["failed"] and "database" in out["ran"]
        after = _passwords(kube)
        assert {k: after[k] for k in before} == before and after["extra"] not in before.values()
    finally:
        orchestrator.up(profile, "kind", report.make())


def test_the_data_volumes_outlive_their_claims(kind):
    """The volumes of the database, the artifact store, the hub's database and Prometheus are set to Retain
    once bound: a claim deleted by mistake leaves its data on the node, the provisioner's Delete overridden."""
    from kubernetes import client

    _, result = kind
    core = client.CoreV1Api(Kube(result["kubeconfig"]).api)
    for ns, claim in (("database", "data-postgres-0"), ("argo", "artifact-store"), ("notebooks", "hub-db"), ("monitoring", "prometheus")):
        volume = core.read_namespaced_persistent_volume_claim(claim, ns).spec.volume_name
        assert core.read_persistent_volume(volume).spec.persistent_volume_reclaim_policy == "Retain", (ns, claim)
