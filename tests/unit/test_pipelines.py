"""pipelines component (a kit folder): users as user-profiles offers them, store credentials (kept, generated, never a
default), per-user objects, the simulator's variant; and the scenario helper's S3 request signing."""

import base64
import importlib.util
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from appliance.components import CATALOG
from appliance.components.pipelines import hooks
from appliance.runtime import Runtime

ROOT = Path(__file__).resolve().parents[2]


class FakeKube:
    """A cluster whose profile lists `users` (user-profiles offers them), with the store's Secret."""

    def __init__(self, users=(), secret=None):
        self.users, self.secret = list(users), secret

    def get(self, api_version, kind, name, namespace=None):
        if kind == "Secret" and name == "artifact-store" and self.secret is not None:
            data = {k: base64.b64encode(v.encode()).decode() for k, v in self.secret.items()}
            return type("Live", (), {"to_dict": lambda self: {"data": data}})()
        return None

    def internal_ips(self):
        return ["172.18.0.2"]


def _objects(kube, pods_run=True, **opts):
    comp = CATALOG["pipelines"](opts, Runtime(pods_run))
    comp.given = {"users": kube.users}  # as `components.enabled` gives it
    return comp.objects(kube, crds=False)


def _find(objs, kind, name, namespace=None):
    (o,) = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name and o["metadata"].get("namespace") == namespace]
    return o


def test_accounts_are_generated_then_kept_and_never_shared():
    first = hooks._accounts({}, ["alice", "bob"])
    a, b = first["accounts"]["alice"], first["accounts"]["bob"]
    assert a["access"] == "alice" and len(a["secret"]) == 40 and a["secret"] != b["secret"]
    assert first["root"]["secret"] not in (a["secret"], b["secret"]) and first["root"]["access"].startswith("root-")
    live = {"root-access": first["root"]["access"], "root-secret": first["root"]["secret"], "users.json": first["iam"]}
    again = hooks._accounts(live, ["alice", "bob", "carol"])
    assert again["root"] == first["root"] and again["accounts"]["alice"] == a and again["accounts"]["bob"] == b
    assert again["digest"] != first["digest"] and hooks._accounts(live, ["alice", "bob"])["digest"] == first["digest"]
    iam = json.loads(again["iam"])["accessAccounts"]
    assert set(iam) == {"alice", "bob", "carol"} and {v["role"] for v in iam.values()} == {"user"}
    assert hooks._accounts({}, ["alice"])["accounts"]["alice"]["secret"] != a["secret"]  # no default: fresh each install


def test_each_user_namespace_gets_runner_keys_and_repository():
    objs = _objects(FakeKube(["alice", "bob"]))
    store = _find(objs, "Secret", "artifact-store", "argo")["stringData"]
    iam = json.loads(store["users.json"])["accessAccounts"]
    for user in ("alice", "bob"):
        ns = f"user-{user}"
        keys = _find(objs, "Secret", "artifact-store", ns)["stringData"]
        assert keys["accessKey"] == user and keys["secretKey"] == iam[user]["secret"] and keys["bucket"] == ns
        repo = _find(objs, "ConfigMap", "artifact-repositories", ns)
        assert repo["metadata"]["annotations"] == {"workflows.argoproj.io/default-artifact-repository": "default"}
        s3 = __import__("yaml").safe_load(repo["data"]["default"])["s3"]
        assert s3["bucket"] == ns and s3["endpoint"] == "artifact-store.argo.svc.cluster.local:9000"
        role = _find(objs, "Role", "pipeline-runner", ns)
        rules = {(g, r): set(x["verbs"]) for x in role["rules"] for g in x["apiGroups"] for r in x["resources"]}
        assert rules[("argoproj.io", "workflowtaskresults")] == {"create", "patch"}
        assert ("kubeflow.org", "pytorchjobs") in rules and ("", "persistentvolumeclaims") in rules and ("", "secrets") not in rules
        binding = _find(objs, "RoleBinding", "pipeline-runner", ns)
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "pipeline-runner", "namespace": ns}]


def test_store_restarts_when_accounts_change_and_keeps_live_keys():
    live = hooks._accounts({}, ["alice"])
    secret = {"root-access": live["root"]["access"], "root-secret": live["root"]["secret"], "users.json": live["iam"]}
    def digest(objs):
        return _find(objs, "Deployment", "artifact-store", "argo")["spec"]["template"]["metadata"]["annotations"]
    same, more = _objects(FakeKube(["alice"], secret)), _objects(FakeKube(["alice", "bob"], secret))
    assert _find(same, "Secret", "artifact-store", "argo")["stringData"]["root-secret"] == live["root"]["secret"]
    assert digest(same) == {"appliance.dev/accounts": live["digest"]} and digest(more) != digest(same)


def test_a_platform_client_gets_its_own_account_and_bucket_and_reads_its_key_back():
    """tracking's artifacts: account svc.mlflow (no user name has a dot), bucket svc-mlflow, its key read by the
    client's component from the store's Secret; its pods (labelled) in the listed namespace may reach the store."""
    from appliance.components import pipelines

    objs = _objects(FakeKube(["alice"]), clients=["mlflow"], client_namespaces=["tracking"])
    iam = json.loads(_find(objs, "Secret", "artifact-store", "argo")["stringData"]["users.json"])["accessAccounts"]
    assert set(iam) == {"alice", "svc.mlflow"} and iam["svc.mlflow"]["secret"] != iam["alice"]["secret"]
    ingress = _find(objs, "NetworkPolicy", "artifact-store-ingress", "argo")["spec"]["ingress"][0]["from"]
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "tracking"}},
            "podSelector": {"matchExpressions": [{"key": "appliance.dev/store-client", "operator": "Exists"}]}} in ingress
    secret = {"root-access": "r", "root-secret": "s", "users.json": json.dumps({"accessAccounts": iam})}
    got = pipelines.store_credentials(FakeKube([], secret), "argo", "mlflow")
    assert got == {"endpoint": "http://artifact-store.argo.svc:9000", "access": "svc.mlflow", "secret": iam["svc.mlflow"]["secret"],
                   "bucket": "svc-mlflow"}
    assert pipelines.store_credentials(FakeKube([], secret), "argo", "other")["secret"] == ""  # not a client: nothing to log in with
    with pytest.raises(ValidationError):
        CATALOG["pipelines"]({"clients": ["a.b"]})


def test_simulator_runs_the_controller_on_the_host_without_store():
    objs = _objects(FakeKube(["alice"]), pods_run=False)
    kinds = {(o["kind"], o["metadata"]["name"]) for o in objs}
    assert ("Deployment", "artifact-store") not in kinds and ("ConfigMap", "artifact-repositories") not in kinds
    assert ("ServiceAccount", "pipeline-runner") in kinds and ("Deployment", "workflow-controller") in kinds
    config = _find(objs, "ConfigMap", "workflow-controller-configmap", "argo")["data"]
    assert config["metricsConfig"].strip() == "enabled: false"
    assert CATALOG["pipelines"]({}, Runtime(pods_run=False)).images() == []


def test_controller_config_and_crds():
    objs = CATALOG["pipelines"]({}).objects(None, images={"argoexec": "exec:1", "workflow-controller": "wc:1"})
    dep = _find(objs, "Deployment", "workflow-controller", "argo")
    assert "--executor-image=exec:1" in dep["spec"]["template"]["spec"]["containers"][0]["args"]
    defaults = __import__("yaml").safe_load(_find(objs, "ConfigMap", "workflow-controller-configmap", "argo")["data"]["workflowDefaults"])
    assert defaults["spec"]["serviceAccountName"] == "pipeline-runner" and defaults["spec"]["podPriorityClassName"] == "appliance-batch"
    crds = {o["spec"]["names"]["kind"]: o for o in objs if o["kind"] == "CustomResourceDefinition"}
    assert {"Workflow", "WorkflowTemplate", "CronWorkflow", "WorkflowTaskResult"} <= set(crds)
    # status written with the object (kept to the controller by a policy) but where Argo writes it through /status
    assert {k for k, c in crds.items() if any("subresources" in v for v in c["spec"]["versions"])} == {"WorkflowTaskSet", "WorkflowArtifactGCTask"}
    edit = _find(objs, "ClusterRole", "appliance:pipelines:edit")
    assert "workflows" in edit["rules"][0]["resources"] and "workflowtaskresults" not in edit["rules"][0]["resources"]


def test_step_kinds_are_checked():
    with pytest.raises(ValidationError):
        CATALOG["pipelines"]({"step_kinds": ["Not A Kind"]})
    objs = _objects(FakeKube(["alice"]), step_kinds=["batch/jobs"])
    rules = _find(objs, "Role", "pipeline-runner", "user-alice")["rules"]
    assert [(r["apiGroups"], r["resources"]) for r in rules] == [(["argoproj.io"], ["workflowtaskresults"]), (["batch"], ["jobs"])]


def _store_helper():
    spec = importlib.util.spec_from_file_location("e2e_store", ROOT / "e2e" / "pipelines" / "store.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_s3_signature_matches_the_aws_example():
    """AWS's published signature v4 example 'GET Bucket (List Objects)'."""
    h = _store_helper().signed("GET", "examplebucket.s3.amazonaws.com", "/", {"max-keys": "2", "prefix": "J"}, b"",
                               "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                               now=datetime(2013, 5, 24, tzinfo=timezone.utc))
    assert h["authorization"].endswith("Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")


def test_buckets_are_made_per_user_and_an_existing_one_is_fine(monkeypatch):
    from appliance.errors import UserError

    class Kube(FakeKube):
        store = True

        def get(self, api_version, kind, name, namespace=None):
            return object() if kind == "Deployment" and self.store else super().get(api_version, kind, name, namespace)

        def missing(self, objs):
            return []

    ran = []
    answers = {"user-alice": (0, ""), "user-bob": (1, "api error BucketAlreadyOwnedByYou: you already own it")}
    monkeypatch.setattr(hooks, "_ready_pod", lambda kube, ns: "store-0")
    monkeypatch.setattr(hooks, "_exec", lambda kube, ns, pod, argv: ran.append(argv) or answers[argv[-1]])
    opts = CATALOG["pipelines"]({}).options
    assert hooks.after_apply(opts, Kube(), users=["bob", "alice"]) == "buckets created: user-alice"
    assert ran[0] == [hooks.STORE_BIN, "admin", "create-bucket", "--owner", "alice", "--bucket", "user-alice"]
    answers["user-bob"] = (1, "api error BucketAlreadyExists: owned by someone else")
    with pytest.raises(UserError) as refused:
        hooks.after_apply(opts, Kube(), users=["bob"])
    assert "user-bob" in str(refused.value) and str(refused.value).count("— fix:") == 1
    Kube.store = False
    assert hooks.after_apply(opts, Kube(), users=["alice"]) == ""  # the simulator: no store


def test_the_store_exec_uses_an_api_client_of_its_own(monkeypatch):
    """`stream` swaps its client's request function while it connects; `up` installs other components on the
    shared client from other threads meanwhile (their requests went out as websocket handshakes)."""
    import types

    import kubernetes.stream
    from kubernetes import client

    from appliance.components.pipelines import hooks

    shared, seen = client.ApiClient(client.Configuration()), {}

    class Socket:
        returncode = 0

        def run_forever(self, timeout):
            pass

        def read_stdout(self, timeout):
            return "ok"

        def read_stderr(self, timeout):
            return ""

        def close(self):
            pass

    def fake_stream(method, *args, **kwargs):
        seen["client"] = method.__self__.api_client
        return Socket()

    monkeypatch.setattr(kubernetes.stream, "stream", fake_stream)
    assert hooks._exec(types.SimpleNamespace(api=shared), "argo", "store-0", ["true"]) == (0, "ok")
    assert seen["client"] is not shared and seen["client"].configuration is shared.configuration


def test_status_is_the_controllers_own():
    """Everyone but the controller's service account is checked; on the host runtime the controller runs with
    the admin kubeconfig, so system:masters is trusted there, and only there."""
    def condition(pods_run):
        objs = CATALOG["pipelines"]({}, Runtime(pods_run)).objects(None, crds=False)
        (cond,) = _find(objs, "ValidatingAdmissionPolicy", "appliance-pipelines-status")["spec"]["matchConditions"]
        return cond["expression"]

    assert "system:serviceaccount:argo:workflow-controller" in condition(True) and "system:masters" not in condition(True)
    assert "system:masters" in condition(False)
    objs = CATALOG["pipelines"]({}).objects(None, crds=False)
    assert _find(objs, "ValidatingAdmissionPolicyBinding", "appliance-pipelines-status")["spec"]["validationActions"] == ["Deny"]
