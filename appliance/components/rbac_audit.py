"""Dangerous rights of service accounts: what each holds through its RoleBindings and ClusterRoleBindings
(rendered manifests, or read from a running cluster), compared with the rights each component allows its
own accounts in its `component.yaml` (`rights:`, one entry with a reason per right). A right no entry
allows is a failure, with one line naming the account, the rule and the fix."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

from appliance.components.kit import COMPONENT_LABEL

#: the API server's own default policy (system:controller:*, system:node, ...): Kubernetes', not ours
BOOTSTRAP = ("kubernetes.io/bootstrapping", "rbac-defaults")
#: groups every service account (or everyone) is in: rights given to them are given to each account
SA_GROUPS = ("system:serviceaccounts", "system:authenticated", "system:unauthenticated")
#: the namespaces of users (user-profiles makes `user-<name>`)
USER_PREFIX = "user-"
READ = {"get", "list", "watch"}
WRITE = {"create", "update", "patch", "delete", "deletecollection"}
#: resources whose create runs pods of any spec (under any service account of that namespace)
WORKLOADS = {"": {"replicationcontrollers"}, "apps": {"deployments", "statefulsets", "daemonsets", "replicasets"},
             "batch": {"jobs", "cronjobs"}}
ADMISSION = {"admissionregistration.k8s.io": {"mutatingwebhookconfigurations", "validatingwebhookconfigurations",
                                              "validatingadmissionpolicies", "validatingadmissionpolicybindings",
                                              "mutatingadmissionpolicies", "mutatingadmissionpolicybindings"}}
#: right → (what it means, how to narrow it)
RIGHTS: dict[str, tuple[str, str]] = {
    "wildcard": ("'*' in verbs or resources", "list the verbs and resources the controller uses"),
    "pods-create": ("creates pods outside its own namespace",
                    "grant pod create by RoleBindings in the namespaces it works in"),
    "workloads-create": ("creates Deployments, Jobs, ... (pods of any spec) outside its own namespace",
                         "grant it by RoleBindings in the namespaces it works in"),
    "secrets-read": ("reads Secrets outside its own namespace",
                     "name the Secrets (resourceNames) or read them by a Role in its namespace"),
    "secrets-write": ("writes Secrets outside its own namespace",
                      "name the Secrets (resourceNames) or write them by a Role in its namespace"),
    "pods-exec": ("runs commands in pods (pods/exec or pods/attach)", "drop pods/exec and pods/attach"),
    "escalate": ("grants rights it does not hold (escalate on roles)", "drop escalate"),
    "bind": ("binds roles whose rights it does not hold (bind)", "drop bind"),
    "impersonate": ("acts as other users, groups or service accounts (impersonate)", "drop impersonate"),
    "admission-write": ("writes admission webhooks or policies without resourceNames",
                        "name its own configurations (resourceNames; create cannot be narrowed so)"),
    "nodes-proxy": ("reaches kubelets' API through the API server (nodes/proxy)", "scrape /metrics by nonResourceURLs or nodes/metrics"),
    "token-create": ("mints tokens for service accounts outside its own namespace (serviceaccounts/token)",
                     "grant it by a Role in the namespace of the accounts it needs"),
    "persistentvolumes-create": ("creates PersistentVolumes (a hostPath volume any claim can bind)", "let a provisioner make volumes"),
}
#: where an allowance holds: anywhere, only in users' namespaces (and its own), only in its own namespace
WHERE = ("cluster", "users", "own")


def _match(values: Iterable[str], value: str) -> bool:
    return "*" in values or value in values


def _can(rule: dict, group: str, resources: Iterable[str], verbs: Iterable[str]) -> list[str]:
    """The resources of `resources` (in API `group`) on which `rule` grants any of `verbs`."""
    if rule.get("nonResourceURLs") or not _match(rule.get("apiGroups") or [], group):
        return []
    if not any(_match(rule.get("verbs") or [], v) for v in verbs):
        return []
    return [r for r in resources if _match(rule.get("resources") or [], r)]


def rule_rights(rule: dict, own: bool) -> list[str]:
    """The dangerous rights one PolicyRule grants; `own`: it holds in the account's own namespace only."""
    named = bool(rule.get("resourceNames"))
    out = []
    if "*" in (rule.get("verbs") or []) or "*" in (rule.get("resources") or []):
        out.append("wildcard")
    if not own and _can(rule, "", ["pods"], ["create"]):
        out.append("pods-create")
    if not own and any(_can(rule, g, rs, ["create"]) for g, rs in WORKLOADS.items()):
        out.append("workloads-create")
    if not own and not named and _can(rule, "", ["secrets"], READ):
        out.append("secrets-read")
    if not own and not named and _can(rule, "", ["secrets"], WRITE):
        out.append("secrets-write")
    # a websocket exec is a GET on pods/exec (authorized as `get` before Kubernetes 1.35)
    if _can(rule, "", ["pods/exec", "pods/attach"], ["create", "get"]):
        out.append("pods-exec")
    for verb in ("escalate", "bind"):
        if _can(rule, "rbac.authorization.k8s.io", ["roles", "clusterroles"], [verb]):
            out.append(verb)
    if any(_can(rule, g, ["users", "groups", "serviceaccounts", "uids", "userextras/*", "userextras"], ["impersonate"])
           for g in ("", "authentication.k8s.io")):
        out.append("impersonate")
    if any(_can(rule, g, rs, ["create"]) or (not named and _can(rule, g, rs, ["update", "patch", "delete", "deletecollection"]))
           for g, rs in ADMISSION.items()):
        out.append("admission-write")
    if _can(rule, "", ["nodes/proxy"], ["get", "create", "update", "patch", "delete"]):
        out.append("nodes-proxy")
    if not own and _can(rule, "", ["serviceaccounts/token"], ["create"]):
        out.append("token-create")
    if _can(rule, "", ["persistentvolumes"], ["create"]):
        out.append("persistentvolumes-create")
    return out


def _text(rule: dict) -> str:
    """A rule in one line: `get,list secrets (names a,b)` or `get /metrics`."""
    if rule.get("nonResourceURLs"):
        return f"{','.join(rule.get('verbs') or [])} {','.join(rule['nonResourceURLs'])}"
    groups = [g or "core" for g in rule.get("apiGroups") or []]
    names = f" (names {','.join(rule['resourceNames'])})" if rule.get("resourceNames") else ""
    return f"{','.join(rule.get('verbs') or [])} {','.join(rule.get('resources') or [])} [{','.join(groups)}]{names}"


def _labels(obj: dict) -> dict:
    return (obj.get("metadata") or {}).get("labels") or {}


def _rules(role: dict, cluster_roles: dict[str, dict]) -> list[dict]:
    """A role's rules; an aggregated ClusterRole's from the ClusterRoles its selectors match (as the API
    server fills them in) where it lists none itself."""
    if role.get("rules") or not role.get("aggregationRule"):
        return role.get("rules") or []
    out = []
    for sel in role["aggregationRule"].get("clusterRoleSelectors") or []:
        want = sel.get("matchLabels") or {}
        for other in cluster_roles.values():
            if other is not role and want and all(_labels(other).get(k) == v for k, v in want.items()):
                out += other.get("rules") or []
    return out


def _accounts(binding: dict) -> list[tuple[str, str]]:
    """(account, its namespace) of each subject that is a service account, or a group of them."""
    out = []
    for s in binding.get("subjects") or []:
        if s.get("kind") == "ServiceAccount":
            ns = s.get("namespace") or binding["metadata"].get("namespace") or ""
            out.append((f"{ns}/{s['name']}", ns))
        elif s.get("kind") == "Group" and s.get("name", "").startswith(SA_GROUPS):
            out.append((f"group:{s['name']}", ""))  # never allowed: no namespace is a group's own
    return out


def _in_scope(where: str, scope: str | None, own_ns: str) -> bool:
    if where == "cluster":
        return True
    if scope is None:
        return False
    return scope == own_ns or (where == "users" and scope.startswith(USER_PREFIX))


def allowances() -> dict[str, list[dict]]:
    """component → its `rights:` entries ({account, right, where, reason})."""
    from appliance.components import CATALOG

    return {name: [r.model_dump() for r in c.decl.rights] for name, c in CATALOG.items()}


def check_allowances(allow: dict[str, list[dict]]) -> list[str]:
    """What is wrong with the allow lists: unknown rights or places, entries with no reason."""
    bad = []
    for comp, entries in allow.items():
        for e in entries:
            if e.get("right") not in RIGHTS:
                bad.append(f"{comp}: rights entry {e} names no known right ({', '.join(RIGHTS)})")
            if e.get("where", "cluster") not in WHERE:
                bad.append(f"{comp}: rights entry {e}: where is one of {', '.join(WHERE)}")
            if not str(e.get("reason") or "").strip() or not e.get("account"):
                bad.append(f"{comp}: rights entry {e} needs an account and a reason")
    return bad


def audit_objects(objs: Iterable[dict], allow: dict[str, list[dict]] | None = None) -> list[dict]:
    """Every dangerous right each service account holds through the RBAC objects among `objs` (Kubernetes'
    own default bindings left out), one dict per (account, right, place): account (`namespace/name` or
    `group:<name>`), component (the binding's, by its label), right, where (`cluster-wide` or `namespace <ns>`),
    rules, via, allowed, reason (the allowance's), fix and line (one line for a failure). `allow` defaults
    to the components' `rights:`. Bindings to roles not among `objs` (built-in ones, when auditing rendered
    manifests) give right `unresolved`."""
    allow = allowances() if allow is None else allow
    objs = [o for o in objs if o]
    cluster_roles = {o["metadata"]["name"]: o for o in objs if o.get("kind") == "ClusterRole"}
    roles = {(o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objs if o.get("kind") == "Role"}
    found: dict[tuple, dict] = {}
    for b in objs:
        if b.get("kind") not in ("RoleBinding", "ClusterRoleBinding") or _labels(b).get(BOOTSTRAP[0]) == BOOTSTRAP[1]:
            continue
        scope = b["metadata"].get("namespace") if b["kind"] == "RoleBinding" else None
        ref = b.get("roleRef") or {}
        role = cluster_roles.get(ref.get("name")) if ref.get("kind") == "ClusterRole" else roles.get((scope, ref.get("name")))
        via = f"{b['kind']}/{b['metadata']['name']}" + (f" in {scope}" if scope else "")
        comp = _labels(b).get(COMPONENT_LABEL)
        for account, own_ns in _accounts(b):
            own = scope is not None and scope == own_ns
            if role is None:
                hits = [("unresolved", f"{ref.get('kind')}/{ref.get('name')} (not among the objects: audit a running cluster)")]
            else:
                hits = [(r, f"{ref['kind']}/{ref['name']}: {_text(rule)}")
                        for rule in _rules(role, cluster_roles) for r in rule_rights(rule, own)]
            for right, rule_text in hits:
                key = (account, right, scope)
                f = found.setdefault(key, {"account": account, "component": comp, "right": right,
                                           "where": f"namespace {scope}" if scope else "cluster-wide", "rules": [], "via": via,
                                           "_scope": scope, "_own": own_ns})
                if rule_text not in f["rules"]:
                    f["rules"].append(rule_text)
    out = []
    for f in found.values():
        scope, own_ns = f.pop("_scope"), f.pop("_own")
        name = f["account"].rpartition("/")[2]
        entry = next((e for e in allow.get(f["component"] or "", []) if e.get("right") == f["right"]
                      and fnmatch.fnmatchcase(name, str(e.get("account"))) and not f["account"].startswith("group:")
                      and _in_scope(e.get("where", "cluster"), scope, own_ns)), None)
        what, fix = RIGHTS.get(f["right"], ("binds a role the audit cannot see", "audit the running cluster"))
        if entry is None and f["component"]:
            fix += f" (or allow it, with the reason, in {f['component']}'s component.yaml `rights:`)"
        f.update(allowed=entry is not None, reason=(entry or {}).get("reason", ""), fix=fix,
                 line=f"{f['account']} {what} ({f['where']}, {f['via']}: {'; '.join(f['rules'])}): {fix}")
        out.append(f)
    return sorted(out, key=lambda f: (f["component"] or "~", f["account"], f["right"], f["where"]))


def failures(findings: Iterable[dict]) -> list[str]:
    """The lines of the findings no allowance covers."""
    return [f["line"] for f in findings if not f["allowed"]]


def read_cluster(api) -> list[dict]:
    """The RBAC objects of a running cluster, as manifests (dicts with the API's field names). `api`: a
    kubernetes ApiClient or an `appliance.kube.Kube`."""
    from kubernetes import client

    api = getattr(api, "api", api)
    rbac = client.RbacAuthorizationV1Api(api)
    out = []
    for kind, items in (("ClusterRole", rbac.list_cluster_role().items), ("Role", rbac.list_role_for_all_namespaces().items),
                        ("ClusterRoleBinding", rbac.list_cluster_role_binding().items),
                        ("RoleBinding", rbac.list_role_binding_for_all_namespaces().items)):
        out += [dict(api.sanitize_for_serialization(i), kind=kind) for i in items]
    return out


def audit_cluster(api, allow: dict[str, list[dict]] | None = None) -> list[dict]:
    """`audit_objects` on a running cluster's RBAC (`api`: a kubernetes ApiClient or an `appliance.kube.Kube`)."""
    return audit_objects(read_cluster(api), allow)
