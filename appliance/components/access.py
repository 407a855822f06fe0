"""Who may do what: ClusterRoles that aggregate a component's kinds into the built-in namespace roles
(`edit`, `admin` and `view`), so whoever is bound to `edit` in a namespace may use them there and nowhere
else; and the Pod Security level a namespace enforces."""

from __future__ import annotations

AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"
EDIT_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]
VIEW_VERBS = ["get", "list", "watch"]
#: labels of a platform namespace: the API server admits only pods meeting the `restricted` standard
RESTRICTED = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn", "audit")}
#: pod-level settings the `restricted` standard asks for beyond each container's own
RESTRICTED_POD = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}


def user_roles(component: str, group: str, resources: list[str], labels: dict[str, str], read: list[str] = ()) -> list[dict]:
    """Two ClusterRoles: full use of `resources` (in API `group`) joins `edit` and `admin`, with reading
    `read` (kinds the component's controller makes for them: users watch them, never write them); reading
    all of them and their status joins `view`."""
    def role(suffix: str, to: tuple[str, ...], rules: list[dict]) -> dict:
        return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": f"appliance:{component}:{suffix}",
                             "labels": {**labels, **{AGGREGATE + r: "true" for r in to}}},
                "rules": rules}

    readable = list(read) + [r + "/status" for r in [*resources, *read]]
    return [
        role("edit", ("edit", "admin"), [{"apiGroups": [group], "resources": list(resources), "verbs": EDIT_VERBS},
                                         {"apiGroups": [group], "resources": readable, "verbs": VIEW_VERBS}]),
        role("view", ("view",), [{"apiGroups": [group], "resources": list(resources) + readable, "verbs": VIEW_VERBS}]),
    ]
