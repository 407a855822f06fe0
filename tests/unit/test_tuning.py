"""The tuning component (Katib): CRD edits, what katib-config names, who the webhooks and policies admit;
the stub model's loss line as Katib's stdout collector reads it."""

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.components import CATALOG
from appliance.components.tuning import hooks
from appliance.runtime import Runtime

ROOT = Path(__file__).resolve().parents[2]
#: Katib's default stdout metrics filter (pkg/metricscollector/v1beta1/common/const.go DefaultFilter)
KATIB_FILTER = r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"


def _objs(**options):
    return CATALOG["tuning"](options).objects(crds=False)


def _one(objs, kind, name=None):
    (o,) = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    return o


def test_fix_crd_serves_kubeflow_org_and_keeps_free_form_templates():
    crd = {"metadata": {"name": "experiments.experiment.kubeflow.org"},
           "spec": {"group": "experiment.kubeflow.org", "names": {"kind": "Experiment", "plural": "experiments"},
                    "versions": [{"name": "v1beta1", "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "metadata": {"type": "object"},
                        "spec": {"type": "object", "properties": {"trialTemplate": {"type": "object", "properties": {
                            "trialSpec": {"type": "object"}, "retain": {"type": "boolean"}}}}}}}}}]}}
    out = hooks.fix_crd(crd)
    assert out["spec"]["group"] == "kubeflow.org" and out["metadata"]["name"] == "experiments.kubeflow.org"
    schema = out["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert schema["properties"]["spec"]["properties"]["trialTemplate"]["properties"]["trialSpec"]["x-kubernetes-preserve-unknown-fields"]
    assert "x-kubernetes-preserve-unknown-fields" not in schema["properties"]["metadata"]
    assert [c["name"] for c in out["spec"]["versions"][0]["additionalPrinterColumns"]] == ["Type", "Status", "Age"]


def test_katib_config_names_only_declared_images_and_the_chosen_algorithms():
    comp = CATALOG["tuning"]({"algorithms": ["random", "tpe"]})
    refs = comp._image_refs(None)
    cfg = json.loads(_one(comp.objects(crds=False), "ConfigMap", "katib-config")["data"]["katib-config.yaml"])
    assert cfg["init"]["certGenerator"] == {"enable": False}   # the kit's certificate, not Katib's generator
    assert [s["algorithmName"] for s in cfg["runtime"]["suggestions"]] == ["random", "tpe"]
    named = {s["image"] for s in cfg["runtime"]["suggestions"]} | {m["image"] for m in cfg["runtime"]["metricsCollectors"]}
    assert named == {refs["suggestion-goptuna"], refs["file-metrics-collector"]}
    for s in cfg["runtime"]["suggestions"]:
        assert s["securityContext"]["runAsNonRoot"] and s["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert s["resources"]["requests"]["memory"] and s["imagePullPolicy"] == "IfNotPresent"


def test_pod_mutator_only_for_trial_kinds_in_user_namespaces():
    hook = _one(_objs(trial_resources=["Job.v1.batch", "PyTorchJob.v1.kubeflow.org"]), "MutatingWebhookConfiguration")["webhooks"][1]
    assert hook["name"] == "mutator.pod.katib.kubeflow.org" and hook["rules"][0]["resources"] == ["pods"]
    assert hook["namespaceSelector"] == {"matchLabels": {"katib.kubeflow.org/metrics-collector-injection": "enabled"}}
    users = CATALOG["user-profiles"]({"users": ["alice"]}).objects(crds=False)
    assert _one(users, "Namespace")["metadata"]["labels"]["katib.kubeflow.org/metrics-collector-injection"] == "enabled"
    owned, not_self = (c["expression"] for c in hook["matchConditions"])
    assert '["Job", "PyTorchJob"]' in owned and "system:serviceaccount:katib:katib-controller" in not_self


def test_db_manager_reaches_only_its_database_and_is_reached_by_trials_and_the_controller():
    objs = _objs()
    dbm = _one(objs, "Deployment", "katib-db-manager")["spec"]["template"]
    assert dbm["metadata"]["labels"]["appliance.dev/database-client"] == "katib"
    env = {e["name"]: e for e in dbm["spec"]["containers"][0]["env"]}
    assert env["DB_NAME"]["value"] == "postgres" and env["KATIB_POSTGRESQL_DB_HOST"]["value"] == "postgres.database.svc"
    assert env["DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "katib-db", "key": "password"}
    (rule,) = _one(objs, "NetworkPolicy", "katib-db-manager-ingress")["spec"]["ingress"]
    assert rule["ports"] == [{"port": 6789}] and len(rule["from"]) == 2


def test_db_manager_is_served_through_its_front_which_alone_holds_a_token():
    pod = _one(_objs(), "Deployment", "katib-db-manager")["spec"]["template"]["spec"]
    dbm, front = pod["containers"]
    assert dbm["args"] == ["--listen-address=127.0.0.1:6790"] and "ports" not in dbm
    assert "--db-manager=127.0.0.1:6790" in front["args"] and front["ports"][0]["containerPort"] == 6789
    assert pod["automountServiceAccountToken"] is False and pod["serviceAccountName"] == "katib-db-manager"
    assert [m["name"] for m in front.get("volumeMounts", [])] == ["api-token"] and "volumeMounts" not in dbm
    rules = _one(_objs(), "ClusterRole", "appliance:tuning:db-front")["rules"]
    assert rules == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
                     {"apiGroups": ["kubeflow.org"], "resources": ["trials"], "verbs": ["get"]}]
    host = CATALOG["tuning"]({}, Runtime(pods_run=False)).objects(crds=False)  # the host runtime: db-manager serves loopback
    (only,) = _one(host, "Deployment", "katib-db-manager")["spec"]["template"]["spec"]["containers"]
    assert only["name"] == "katib-db-manager" and not [o for o in host if o["metadata"]["name"] == "appliance:tuning:db-front"]


@pytest.mark.parametrize(("resources", "allowed"), [
    (None, ["batch/v1 Job", "kubeflow.org/v1 PyTorchJob"]),
    (["TFJob.v1.kubeflow.org", "Pod.v1"], ["kubeflow.org/v1 TFJob", "v1 Pod"]),
])
def test_trial_kinds_are_the_trial_resources(resources, allowed):
    objs = _objs(**({"trial_resources": resources} if resources else {}))
    policy = _one(objs, "ValidatingAdmissionPolicy", "appliance-tuning-trial-kinds")["spec"]
    assert json.loads(next(v["expression"] for v in policy["variables"] if v["name"] == "allowed")) == allowed
    assert policy["matchConstraints"]["resourceRules"][0]["resources"] == ["experiments", "trials"]
    assert _one(objs, "ValidatingAdmissionPolicyBinding", "appliance-tuning-trial-kinds")["spec"]["validationActions"] == ["Deny"]


def test_users_create_experiments_and_only_read_trials_and_suggestions():
    edit = _one(_objs(), "ClusterRole", "appliance:tuning:edit")
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    full, read = edit["rules"]
    assert full["resources"] == ["experiments"] and "create" in full["verbs"]
    assert {"trials", "suggestions"} <= set(read["resources"]) and read["verbs"] == ["get", "list", "watch"]
    assert not [o for o in _objs() if o["kind"] == "RoleBinding"]  # user-profiles binds `edit`, per namespace


def test_a_missing_database_client_is_one_clear_error():
    class Kube:
        def get(self, *a, **k):
            return None

    from appliance.errors import UserError

    with pytest.raises(UserError) as e:
        hooks.context(CATALOG["tuning"]().options, Kube())
    assert "components.database.options.clients" in e.value.fix


@pytest.mark.parametrize(("lr", "epochs"), [("0.001", "5"), ("0.2", "100")])
def test_stub_prints_the_loss_katib_reads(tmp_path, lr, epochs):
    out = subprocess.run([sys.executable, str(ROOT / "e2e/models/stub_train.py"), "--lr", lr, "--epochs", epochs,
                          "--out", str(tmp_path)], capture_output=True, text=True, check=True).stdout
    (line,) = [ln for ln in out.splitlines() if "loss=" in ln]
    got = {m[0]: float(m[1]) for m in re.findall(KATIB_FILTER, line)}
    spec = importlib.util.spec_from_file_location("stub_train", ROOT / "e2e/models/stub_train.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert got == {"loss": pytest.approx(mod.train(0, 1, int(epochs), float(lr))[2], rel=1e-6)}


def test_on_the_simulator_database_and_tuning_run_on_the_host():
    from appliance import components, profiles

    profile = profiles.load("laptop", [], "sim").profile
    enabled = components.enabled(profile, Runtime(pods_run=False))
    assert enabled["database"].on_host and enabled["tuning"].on_host
    assert not enabled["database"].images() and not enabled["tuning"].images()  # nothing to pull where pods do not run
    hosted = {h.workload for h in CATALOG["tuning"].decl.host}
    assert hosted == {"katib-controller", "katib-db-manager", "katib-suggestion", "katib-sim-results"}


def test_on_the_simulator_up_refuses_components_that_need_pods_with_the_fix():
    from appliance import prereqs, profiles
    from appliance.errors import UserError

    profile = profiles.load("sim-dgx-pod", ["components.notebooks={}"], "sim").profile
    with pytest.raises(UserError) as e:
        prereqs.check(profile, "sim")
    assert "component 'notebooks' needs pods, which the sim provider does not run" in e.value.what
    assert "provider_overrides.sim.components.notebooks.enabled: false" in e.value.fix and e.value.line().count("— fix:") == 1
    prereqs.check(profiles.load("laptop", [], "sim").profile, "sim")  # the laptop profile leaves notebooks out there


def test_only_the_controller_makes_trials_and_suggestions():
    """Its service account in the cluster; on the host runtime (admin kubeconfig) system:masters, only there."""
    def condition(pods_run):
        objs = CATALOG["tuning"]({}, Runtime(pods_run)).objects(crds=False)
        (cond,) = _one(objs, "ValidatingAdmissionPolicy", "appliance-tuning-katib-made")["spec"]["matchConditions"]
        return cond["expression"]

    assert "system:serviceaccount:katib:katib-controller" in condition(True) and "system:masters" not in condition(True)
    assert "system:masters" in condition(False)
