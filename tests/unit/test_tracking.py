"""tracking component (a kit folder): the server's credentials come from the components that made them, a missing
client is one line with its fix; what it renders: a restricted pod with no job runner, workspaces from the users'
namespaces, the users' roles on MLflow's resources, the NodePort users are told."""

import base64
import json

import pytest

from appliance.components import CATALOG
from appliance.errors import UserError


class FakeKube:
    """The database's and the artifact store's Secrets (`db`, `store`: decoded data), where they exist."""

    def __init__(self, db=None, store=None):
        self.secrets = {"database-credentials": db, "artifact-store": store}

    def get(self, api_version, kind, name, namespace=None):
        data = self.secrets.get(name) if kind == "Secret" else None
        if data is None:
            return None
        encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
        return type("Live", (), {"to_dict": lambda self: {"data": encoded}})()

    def internal_ips(self):
        return ["172.18.0.2"]


STORE = {"users.json": json.dumps({"accessAccounts": {"svc.mlflow": {"access": "svc.mlflow", "secret": "s3cret"}}})}


def _objects(kube, **opts):
    return CATALOG["tracking"](opts).objects(kube, crds=False)


def test_the_server_logs_in_with_what_database_and_store_made():
    objs = _objects(FakeKube({"mlflow": "pw"}, STORE))
    (secret,) = [o for o in objs if o["kind"] == "Secret"]
    assert secret["stringData"] == {"db-password": "pw", "store-access": "svc.mlflow", "store-secret": "s3cret"}
    (dep,) = [o for o in objs if o["kind"] == "Deployment"]
    pod = dep["spec"]["template"]["spec"]
    server = pod["containers"][0]
    args = server["args"]
    assert args[args.index("--backend-store-uri") + 1] == "postgresql+psycopg2://mlflow:$(DB_PASSWORD)@postgres.database.svc:5432/mlflow"
    assert args[args.index("--artifacts-destination") + 1] == "s3://svc-mlflow" and "--enable-workspaces" in args
    assert args[args.index("--app-name") + 1] == "kubernetes-auth"
    env = {e["name"]: e.get("value") for e in server["env"]}
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false" and env["MLFLOW_K8S_WORKSPACE_LABEL_SELECTOR"] == "appliance.dev/owner,!appliance.dev/departed"
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://artifact-store.argo.svc:9000"
    assert pod["initContainers"][0]["args"][:2] == ["db", "upgrade"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert labels["appliance.dev/database-client"] == labels["appliance.dev/store-client"] == "true"  # the two NetworkPolicies let it in
    assert server["securityContext"]["readOnlyRootFilesystem"] and pod["securityContext"]["runAsNonRoot"]


def test_users_may_use_mlflows_resources_through_edit_and_the_server_only_lists_namespaces():
    objs = _objects(FakeKube({"mlflow": "pw"}, STORE))
    roles = {o["metadata"]["name"]: o for o in objs if o["kind"] == "ClusterRole"}
    edit = roles["appliance:tracking:edit"]
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert edit["rules"][0] == {"apiGroups": ["mlflow.kubeflow.org"], "resources": ["experiments", "registeredmodels", "datasets"],
                                "verbs": ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]}
    assert roles["appliance:tracking:workspaces"]["rules"] == [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]}]


@pytest.mark.parametrize("db,store,missing", [({}, STORE, "the database has no client 'mlflow'"),
                                              ({"mlflow": "pw"}, {}, "the artifact store has no client 'mlflow'")])
def test_a_missing_client_is_one_line_with_its_fix(db, store, missing):
    with pytest.raises(UserError) as e:
        _objects(FakeKube(db, store))
    assert missing in str(e.value) and "components." in e.value.fix and "clients" in e.value.fix and "\n" not in str(e.value)


def test_users_are_told_where_it_answers():
    from appliance.components import tracking

    opts = CATALOG["tracking"]({}).options
    assert tracking.address(opts, FakeKube(), []) == "http://172.18.0.2:30500"
    mapped = [{"container_port": 30500, "host_port": 8500, "listen_address": "127.0.0.1"}]
    assert tracking.address(opts, FakeKube(), mapped) == "http://127.0.0.1:8500"
