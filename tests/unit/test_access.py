"""What users may do with a component's kinds (aggregated roles) and the Pod Security of platform pods."""

import pytest

from appliance.components import CATALOG
from appliance.components.access import AGGREGATE

AGG_EDIT, AGG_VIEW = AGGREGATE + "edit", AGGREGATE + "view"


def _objects(name):
    return CATALOG[name]().objects(crds=False)


@pytest.mark.parametrize("name,group,kinds", [
    ("training-operator", "kubeflow.org", {"pytorchjobs", "tfjobs", "mpijobs"}),
    ("kserve", "serving.kserve.io", {"inferenceservices", "servingruntimes", "inferencegraphs", "trainedmodels"}),
])
def test_components_join_the_namespace_roles(name, group, kinds):
    roles = [o for o in _objects(name) if o["kind"] == "ClusterRole" and AGGREGATE[:-1] in str(o["metadata"]["labels"])]
    edit = next(r for r in roles if r["metadata"]["labels"].get(AGG_EDIT) == "true")
    view = next(r for r in roles if r["metadata"]["labels"].get(AGG_VIEW) == "true")
    full = next(r for r in edit["rules"] if "create" in r["verbs"])
    assert full["apiGroups"] == [group] and set(full["resources"]) == kinds and "delete" in full["verbs"]
    assert view["rules"][0]["verbs"] == ["get", "list", "watch"] and kinds <= set(view["rules"][0]["resources"])
    assert "create" not in str(view["rules"])


def _restricted_violations(pod_spec: dict) -> list[str]:
    """The `restricted` Pod Security rules our controllers must meet (the subset their specs can touch)."""
    out = []
    pod_sc = pod_spec.get("securityContext") or {}
    if pod_spec.get("hostNetwork") or pod_spec.get("hostPID") or pod_spec.get("hostIPC"):
        out.append("host namespaces")
    if any("hostPath" in v for v in pod_spec.get("volumes") or []):
        out.append("hostPath volume")
    for c in pod_spec["containers"]:
        sc = c.get("securityContext") or {}
        if sc.get("privileged") or sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{c['name']}: privilege escalation")
        if sc.get("capabilities", {}).get("drop") != ["ALL"]:
            out.append(f"{c['name']}: capabilities not dropped")
        if not (sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")):
            out.append(f"{c['name']}: may run as root")
        if (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
            out.append(f"{c['name']}: no seccomp profile")
    return out


@pytest.mark.parametrize("name", ["platform-base", "training-operator", "kserve"])
def test_platform_namespaces_enforce_restricted_and_their_pods_meet_it(name):
    objs = _objects(name)
    for ns in (o for o in objs if o["kind"] == "Namespace"):
        assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for dep in (o for o in objs if o["kind"] == "Deployment"):
        assert _restricted_violations(dep["spec"]["template"]["spec"]) == []
