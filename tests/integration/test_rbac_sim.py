"""The RBAC audit against a real API server (the simulator): every component's service accounts, roles and
bindings applied as `up` renders them, read back and audited live (the built-in `edit` users hold resolved
by the API server); the API server's own answer (SubjectAccessReview) agrees with what the audit says each
controller can and cannot do; and each dangerous pattern, bound live, is found."""

import pytest

from appliance import components
from appliance.components import CATALOG, rbac_audit
from appliance.kube import Kube
from appliance.schema import ComponentSpec, Profile
from tests.integration.clusters import cluster

pytestmark = [pytest.mark.integration, pytest.mark.slow]
BASE = ("platform-base", "user-profiles")
RBAC_KINDS = ("Namespace", "ServiceAccount", "ClusterRole", "Role", "ClusterRoleBinding", "RoleBinding")
RBAC = "rbac.authorization.k8s.io"


@pytest.fixture(scope="module")
def kube():
    with cluster("sim-dgx-pod", "sim", ["cluster.name=it-rbac-sim"], BASE) as (_, up):
        assert not up["failed"]
        yield Kube(up["kubeconfig"])


@pytest.fixture(scope="module")
def stack(kube):
    """Every component's RBAC objects (and the namespaces and accounts they name), as rendered for users
    alice and bob, applied to the cluster."""
    profile = Profile(name="all", components={n: ComponentSpec() for n in CATALOG})  # user-profiles' default users
    objs = [o for c in components.enabled(profile).values() for o in c.objects(crds=False) if o["kind"] in RBAC_KINDS]
    kube.apply(sorted(objs, key=lambda o: RBAC_KINDS.index(o["kind"])))
    return rbac_audit.audit_cluster(kube)


def test_the_stack_holds_no_dangerous_right_outside_the_allow_lists(stack):
    ours = [f for f in stack if f["component"]]
    assert [f["line"] for f in ours if not f["allowed"]] == []
    assert not [f for f in stack if f["right"] == "unresolved"]
    # users' own accounts: the built-in `edit` (resolved by the API server, with the kinds components join to it)
    user = {(f["account"], f["right"], f["where"]) for f in ours if f["component"] == "user-profiles"}
    assert {("user-alice/alice", "pods-exec", "namespace user-alice"), ("user-bob/bob", "impersonate", "namespace user-bob")} <= user
    assert {r for _, r, _ in user} == {"pods-exec", "impersonate"}


def test_the_audit_reads_a_live_cluster_from_an_api_client_too(kube, stack):
    assert rbac_audit.audit_cluster(kube.api) == stack


def _can(kube, account: str, verb: str, resource: str, namespace: str = "", group: str = "", name: str = "", sub: str = "") -> bool:
    """The API server's answer: may service account `ns/name` do this?"""
    from kubernetes import client

    ns, sa = account.split("/")
    attrs = client.V1ResourceAttributes(verb=verb, resource=resource, namespace=namespace or None, group=group,
                                        name=name or None, subresource=sub or None)
    review = client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
        user=f"system:serviceaccount:{ns}:{sa}", groups=["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"],
        resource_attributes=attrs))
    return client.AuthorizationV1Api(kube.api).create_subject_access_review(review).status.allowed


@pytest.mark.parametrize("account,ask,allowed", [
    # KServe reads a named Secret, but lists none and makes no pods itself
    ("kserve/kserve-controller-manager", ("get", "secrets", "user-alice"), True),
    ("kserve/kserve-controller-manager", ("list", "secrets", "user-alice"), False),
    ("kserve/kserve-controller-manager", ("create", "pods", "user-alice"), False),
    # Argo makes and signals step pods in users' namespaces only
    ("argo/workflow-controller", ("create", "pods", "user-alice"), True),
    ("argo/workflow-controller", ("create", "pods", "kube-system"), False),
    ("argo/workflow-controller", ("create", "pods", "user-bob", "", "", "exec"), True),
    ("argo/workflow-controller", ("create", "pods", "database", "", "", "exec"), False),
    ("argo/workflow-controller", ("get", "secrets", "user-alice", "", "artifact-store"), False),
    ("argo/workflow-controller", ("create", "configmaps", "argo"), True),          # memoization caches live there
    ("argo/workflow-controller", ("create", "configmaps", "kube-system"), False),
    # the training operator: its own cert Secret and webhook configuration, nobody else's
    ("kubeflow/training-operator", ("update", "secrets", "kubeflow", "", "training-operator-webhook-cert"), True),
    ("kubeflow/training-operator", ("get", "secrets", "database", "", "database-credentials"), False),
    ("kubeflow/training-operator", ("update", "validatingwebhookconfigurations", "", "admissionregistration.k8s.io",
                                    "validator.training-operator.kubeflow.org"), True),
    ("kubeflow/training-operator", ("update", "validatingwebhookconfigurations", "", "admissionregistration.k8s.io",
                                    "inferenceservice.serving.kserve.io"), False),
    # Katib: no Secrets, no PersistentVolumes
    ("katib/katib-controller", ("get", "secrets", "katib", "", "katib-db"), False),
    ("katib/katib-controller", ("create", "persistentvolumes", ""), False),
    # the hub spawns in users' namespaces only
    ("notebooks/hub", ("create", "pods", "user-bob"), True),
    ("notebooks/hub", ("create", "pods", "kserve"), False),
])
def test_the_api_server_agrees_with_the_narrowed_rights(kube, stack, account, ask, allowed):
    verb, resource, namespace, *rest = ask
    group, name, sub = (list(rest) + ["", "", ""])[:3]
    assert _can(kube, account, verb, resource, namespace, group, name, sub) is allowed


@pytest.mark.parametrize("rules,right", [
    ([{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}], "pods-exec"),
    ([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}], "secrets-read"),
    ([{"apiGroups": [RBAC], "resources": ["clusterroles"], "verbs": ["escalate", "bind"]}], "escalate"),
    ([{"apiGroups": ["admissionregistration.k8s.io"], "resources": ["validatingwebhookconfigurations"], "verbs": ["patch"]}], "admission-write"),
    ([{"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["get"]}], "nodes-proxy"),
    ([{"nonResourceURLs": ["*"], "verbs": ["*"]}], "wildcard"),
])
def test_a_dangerous_right_bound_live_is_found_and_fails(kube, stack, rules, right):
    meta = {"name": "rbac-audit-probe", "labels": {"appliance.dev/component": "tuning"}}
    objs = [{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "probe", "namespace": "default"}},
            {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole", "metadata": meta, "rules": rules},
            {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRoleBinding", "metadata": meta,
             "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": meta["name"]},
             "subjects": [{"kind": "ServiceAccount", "name": "probe", "namespace": "default"}]}]
    kube.apply(objs)
    try:
        found = [f for f in rbac_audit.audit_cluster(kube) if f["account"] == "default/probe"]
        assert right in {f["right"] for f in found} and not any(f["allowed"] for f in found)
        assert any("default/probe" in line and "rbac-audit-probe" in line for line in rbac_audit.failures(found))
    finally:
        kube.delete(objs[1:])
