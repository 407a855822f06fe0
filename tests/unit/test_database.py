"""The database component: passwords made once and kept, what its manifests admit, StatefulSet readiness."""

import base64

from appliance import kube as kube_mod
from appliance.components import CATALOG, database
from appliance.components.database import hooks


class _Kube:
    """Answers `get` for one Secret (the credentials), nothing else."""

    def __init__(self, data: dict[str, str] | None):
        self.data = data

    def get(self, api_version, kind, name, namespace=None):
        if kind != "Secret" or self.data is None:
            return None
        d = {"data": {k: base64.b64encode(v.encode()).decode() for k, v in self.data.items()}}
        return type("Live", (), {"to_dict": lambda self: d})()

    def internal_ips(self):
        return ["172.18.0.2"]


def _secret(objs):
    (s,) = [o for o in objs if o["kind"] == "Secret"]
    return {k: base64.b64decode(v).decode() for k, v in s["data"].items()}


def test_passwords_are_generated_once_and_kept():
    first = hooks._passwords({}, ["katib"])
    assert set(first) == {"postgres", "katib"} and len(set(first.values())) == 2
    assert all(len(v) >= 24 for v in first.values())
    again = hooks._passwords(first, ["katib", "argo"])
    assert again["postgres"] == first["postgres"] and again["katib"] == first["katib"]
    assert again["argo"] not in first.values()


def test_a_second_up_renders_the_same_secret_and_pod_template():
    comp = CATALOG["database"]({"clients": ["katib"]})
    made = _secret(comp.objects(_Kube(None), crds=False))
    assert made["postgres"] and made["katib"] and made["postgres"] != made["katib"]
    live = _Kube(made)
    objs1, objs2 = comp.objects(live, crds=False), comp.objects(live, crds=False)
    assert _secret(objs1) == made == _secret(objs2)
    hashes = {o["spec"]["template"]["metadata"]["annotations"]["appliance.dev/credentials"]
              for o in objs1 + objs2 if o["kind"] == "StatefulSet"}
    assert len(hashes) == 1


def test_client_credentials_come_from_the_secret():
    got = database.credentials(_Kube({"postgres": "s", "katib": "k"}), "database", "katib")
    assert got == {"host": "postgres.database.svc", "port": "5432", "user": "katib", "database": "katib", "password": "k"}
    assert database.credentials(_Kube(None), "database", "katib")["password"] == ""


def test_restricted_non_root_on_a_claim_and_only_clients_admitted():
    objs = CATALOG["database"]({"client_namespaces": ["katib"]}).objects(crds=False)
    ns = next(o for o in objs if o["kind"] == "Namespace")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    sts = next(o for o in objs if o["kind"] == "StatefulSet")
    pod = sts["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] != 0
    (c,) = pod["containers"]
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]} and not c["securityContext"]["allowPrivilegeEscalation"]
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    (np,) = [o for o in objs if o["kind"] == "NetworkPolicy"]
    (rule,) = np["spec"]["ingress"]
    assert rule["from"] and all(f["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "katib"}} for f in rule["from"])
    none = CATALOG["database"]({"client_namespaces": []}).objects(crds=False)
    assert next(o for o in none if o["kind"] == "NetworkPolicy")["spec"]["ingress"] == []


def test_statefulset_ready_only_when_its_pods_are():
    def live(status, generation=2):
        d = {"metadata": {"generation": generation}, "spec": {"replicas": 1}, "status": status}
        return type("Live", (), {"to_dict": lambda self: d})()

    assert not kube_mod._is_ready("StatefulSet", live({"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1}))
    assert not kube_mod._is_ready("StatefulSet", live({"observedGeneration": 1, "readyReplicas": 1, "updatedReplicas": 1}))
    assert kube_mod._is_ready("StatefulSet", live({"observedGeneration": 2, "readyReplicas": 1, "updatedReplicas": 1}))
