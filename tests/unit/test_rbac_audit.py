"""The RBAC audit: every component's rendered manifests hold no dangerous right outside its allow list, and
each dangerous pattern is found (with its narrow form left alone)."""

import pytest

from appliance import components
from appliance.components import CATALOG, rbac_audit
from appliance.schema import ComponentSpec, Profile

RBAC = "rbac.authorization.k8s.io"


def _rendered(options: dict | None = None) -> list[dict]:
    """Every component's objects with default options (`options`: per component), so user-profiles' users
    alice and bob."""
    profile = Profile(name="all", components={n: ComponentSpec(options=(options or {}).get(n) or {}) for n in CATALOG})
    return [o for c in components.enabled(profile).values() for o in c.objects(crds=False)]


def test_the_allow_lists_name_known_rights_each_with_a_reason():
    allow = rbac_audit.allowances()
    assert rbac_audit.check_allowances(allow) == []
    assert {"kserve", "training-operator", "tuning", "pipelines", "notebooks", "user-profiles"} <= {c for c, e in allow.items() if e}


def test_every_component_holds_no_dangerous_right_outside_its_allow_list():
    findings = rbac_audit.audit_objects(_rendered())
    unresolved = {(f["account"], f["rules"][0]) for f in findings if f["right"] == "unresolved"}
    # users' accounts are bound to the built-in `edit`: audited on a running cluster (tests/integration/test_rbac_sim.py)
    assert unresolved == {(f"user-{u}/{u}", "ClusterRole/edit (not among the objects: audit a running cluster)") for u in ("alice", "bob")}
    assert [f["line"] for f in findings if not f["allowed"] and f["right"] != "unresolved"] == []
    # and every allowance is needed: none is left over from a right a controller no longer holds
    used = {(f["component"], f["right"]) for f in findings if f["allowed"]}
    declared = {(c, e["right"]) for c, entries in rbac_audit.allowances().items() for e in entries}
    assert declared - used == {("user-profiles", "pods-exec"), ("user-profiles", "impersonate")}  # in `edit`: live only


def test_what_the_controllers_no_longer_hold():
    by = {}
    for f in rbac_audit.audit_objects(_rendered()):
        by.setdefault(f["account"].rpartition("/")[2], set()).add((f["right"], f["where"]))
    assert by["kserve-controller-manager"] == {("secrets-read", "cluster-wide"), ("workloads-create", "cluster-wide")}
    assert by["katib-controller"] == {("workloads-create", "cluster-wide")}
    assert by["training-operator"] == {("pods-create", "cluster-wide"), ("pods-exec", "cluster-wide")}
    assert by["workflow-controller"] == {(r, f"namespace user-{u}") for r in ("pods-create", "pods-exec") for u in ("alice", "bob")}
    assert by["hub"] == {("pods-create", "namespace user-alice"), ("pods-create", "namespace user-bob")}
    assert not {"prometheus", "gpu-exporter", "kube-network-policies"} & set(by)


def test_the_training_operator_without_mpijob_holds_no_pods_exec():
    objs = _rendered({"training-operator": {"schemes": ["pytorchjob", "tfjob"]}})
    rights = {f["right"] for f in rbac_audit.audit_objects(objs) if f["account"].endswith("/training-operator")}
    assert rights == {"pods-create"}


# ----------------------------------------------------------------------------- each pattern, found or not


def _objs(rules: list[dict], binding: str = "ClusterRoleBinding", namespace: str = "ctl", role_ns: str | None = None,
          subject: dict | None = None, labels: dict | None = None) -> list[dict]:
    """A role with `rules` bound to service account ctl/robot (by a ClusterRoleBinding, or a RoleBinding in `role_ns`)."""
    meta = {"name": "r", "labels": {"appliance.dev/component": "demo", **(labels or {})}}
    role = {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole", "metadata": {"name": "r"}, "rules": rules}
    bind = {"apiVersion": f"{RBAC}/v1", "kind": binding, "metadata": dict(meta, **({"namespace": role_ns} if role_ns else {})),
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "r"},
            "subjects": [subject or {"kind": "ServiceAccount", "name": "robot", "namespace": namespace}]}
    return [role, bind]


def _rights(objs, allow=None) -> set[str]:
    return {f["right"] for f in rbac_audit.audit_objects(objs, allow or {})}


def rule(groups, resources, verbs, names=None) -> dict:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs, **({"resourceNames": names} if names else {})}


@pytest.mark.parametrize("rules,right", [
    ([rule([""], ["pods"], ["create"])], "pods-create"),
    ([rule(["apps"], ["deployments"], ["create", "get"])], "workloads-create"),
    ([rule(["batch"], ["jobs"], ["create"])], "workloads-create"),
    ([rule([""], ["secrets"], ["list"])], "secrets-read"),
    ([rule([""], ["secrets"], ["get"])], "secrets-read"),
    ([rule([""], ["secrets"], ["update"])], "secrets-write"),
    ([rule([""], ["pods/exec"], ["create"])], "pods-exec"),
    ([rule([""], ["pods/exec"], ["get"])], "pods-exec"),          # a websocket exec is a GET
    ([rule([""], ["pods/attach"], ["create"])], "pods-exec"),
    ([rule([RBAC], ["clusterroles"], ["escalate"])], "escalate"),
    ([rule([RBAC], ["roles"], ["bind"])], "bind"),
    ([rule([""], ["serviceaccounts"], ["impersonate"])], "impersonate"),
    ([rule([""], ["users", "groups"], ["impersonate"])], "impersonate"),
    ([rule(["admissionregistration.k8s.io"], ["validatingwebhookconfigurations"], ["update"])], "admission-write"),
    ([rule(["admissionregistration.k8s.io"], ["mutatingwebhookconfigurations"], ["create"], ["mine"])], "admission-write"),  # create cannot be named
    ([rule(["admissionregistration.k8s.io"], ["validatingadmissionpolicies"], ["patch"])], "admission-write"),
    ([rule([""], ["nodes/proxy"], ["get"])], "nodes-proxy"),
    ([rule([""], ["serviceaccounts/token"], ["create"])], "token-create"),
    ([rule([""], ["persistentvolumes"], ["create"])], "persistentvolumes-create"),
    ([rule(["apps"], ["*"], ["get"])], "wildcard"),
    ([rule([""], ["configmaps"], ["*"])], "wildcard"),
    ([rule(["*"], ["*"], ["*"])], "secrets-write"),              # cluster-admin's rule holds every right
])
def test_each_dangerous_pattern_is_found(rules, right):
    assert right in _rights(_objs(rules))


@pytest.mark.parametrize("why,objs", [
    ("pods in its own namespace", _objs([rule([""], ["pods"], ["create"])], "RoleBinding", role_ns="ctl")),
    ("its own Secrets by a Role", _objs([rule([""], ["secrets"], ["get", "list", "watch", "update"])], "RoleBinding", role_ns="ctl")),
    ("Secrets by name", _objs([rule([""], ["secrets"], ["get", "update"], ["my-cert"])])),
    ("its own webhook configuration by name", _objs([rule(["admissionregistration.k8s.io"], ["validatingwebhookconfigurations"], ["update", "patch"], ["mine"])])),
    ("reading webhook configurations", _objs([rule(["admissionregistration.k8s.io"], ["validatingwebhookconfigurations"], ["get", "list", "watch"])])),
    ("kubelet metrics", _objs([rule([""], ["nodes/metrics", "nodes", "pods"], ["get", "list", "watch"]),
                               {"nonResourceURLs": ["/metrics"], "verbs": ["get"]}])),
    ("Kubernetes' own default policy", _objs([rule(["*"], ["*"], ["*"])], labels={"kubernetes.io/bootstrapping": "rbac-defaults"})),
    ("a user, not a service account", _objs([rule([""], ["pods/exec"], ["create"])], subject={"kind": "User", "name": "bob", "apiGroup": RBAC})),
])
def test_narrow_rights_are_not_findings(why, objs):
    assert _rights(objs) == set(), why


def test_a_role_in_the_bindings_namespace_and_an_aggregated_cluster_role_are_resolved():
    role = {"apiVersion": f"{RBAC}/v1", "kind": "Role", "metadata": {"name": "x", "namespace": "user-a"},
            "rules": [rule([""], ["pods/exec"], ["create"])]}
    bind = {"kind": "RoleBinding", "metadata": {"name": "x", "namespace": "user-a"}, "roleRef": {"kind": "Role", "name": "x"},
            "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": "ctl"}]}
    assert _rights([role, bind]) == {"pods-exec"}
    parent = {"kind": "ClusterRole", "metadata": {"name": "agg"}, "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"to-agg": "true"}}]}}
    child = {"kind": "ClusterRole", "metadata": {"name": "child", "labels": {"to-agg": "true"}}, "rules": [rule(["batch"], ["jobs"], ["create"])]}
    crb = {"kind": "ClusterRoleBinding", "metadata": {"name": "agg"}, "roleRef": {"kind": "ClusterRole", "name": "agg"},
           "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": "ctl"}]}
    assert _rights([parent, child, crb]) == {"workloads-create"}


def test_groups_of_every_service_account_are_audited_and_never_allowed():
    objs = _objs([rule([""], ["secrets"], ["list"])], subject={"kind": "Group", "name": "system:serviceaccounts", "apiGroup": RBAC})
    allow = {"demo": [{"account": "*", "right": "secrets-read", "where": "cluster", "reason": "no"}]}
    (f,) = rbac_audit.audit_objects(objs, allow)
    assert f["account"] == "group:system:serviceaccounts" and not f["allowed"]


def test_a_failure_is_one_line_naming_the_account_the_rule_and_the_fix():
    (f,) = rbac_audit.audit_objects(_objs([rule([""], ["pods/exec"], ["create"])]), {})
    assert not f["allowed"] and "\n" not in f["line"]
    assert f["line"].startswith("ctl/robot runs commands in pods") and "ClusterRoleBinding/r" in f["line"]
    assert "create pods/exec [core]" in f["line"] and "drop pods/exec" in f["line"] and "demo's component.yaml `rights:`" in f["line"]
    assert rbac_audit.failures([f]) == [f["line"]]


@pytest.mark.parametrize("where,binding,role_ns,allowed", [
    ("cluster", "ClusterRoleBinding", None, True),
    ("users", "ClusterRoleBinding", None, False),      # allowed in users' namespaces, not cluster-wide
    ("users", "RoleBinding", "user-alice", True),
    ("users", "RoleBinding", "kube-system", False),
    ("own", "RoleBinding", "user-alice", False),
])
def test_an_allowance_holds_only_where_it_says(where, binding, role_ns, allowed):
    allow = {"demo": [{"account": "robot", "right": "pods-exec", "where": where, "reason": "signals steps"}]}
    (f,) = rbac_audit.audit_objects(_objs([rule([""], ["pods/exec"], ["create"])], binding, role_ns=role_ns), allow)
    assert f["allowed"] is allowed and f["reason"] == ("signals steps" if allowed else "")


def test_an_allowance_holds_for_its_own_component_and_account_only():
    allow = {"other": [{"account": "robot", "right": "pods-exec", "reason": "x"}],
             "demo": [{"account": "someone-else", "right": "pods-exec", "reason": "x"}]}
    (f,) = rbac_audit.audit_objects(_objs([rule([""], ["pods/exec"], ["create"])]), allow)
    assert not f["allowed"]


@pytest.mark.parametrize("entry,message", [
    ({"account": "a", "right": "pods-eXec", "reason": "x"}, "names no known right"),
    ({"account": "a", "right": "pods-exec", "where": "everywhere", "reason": "x"}, "where is one of"),
    ({"account": "a", "right": "pods-exec", "reason": " "}, "needs an account and a reason"),
])
def test_a_bad_allowance_is_named(entry, message):
    (line,) = rbac_audit.check_allowances({"demo": [entry]})
    assert line.startswith("demo: ") and message in line
