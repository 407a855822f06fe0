"""The component kit: options from data, rendering, requests from pod templates, pruning by label."""

import json

import pytest
from pydantic import ValidationError

from appliance.components import kit
from appliance.errors import UserError
from appliance.runtime import Runtime


def _component(tmp_path, decl: str, manifests: dict[str, str]):
    folder = tmp_path / "demo_app"
    (folder / "manifests").mkdir(parents=True)
    (folder / "component.yaml").write_text(decl)
    for name, text in manifests.items():
        (folder / "manifests" / name).write_text(text)
    return kit.load(folder)


DECL = """\
name: demo-app
description: a demo
depends: [platform-base]
options:
  replicas: {type: integer, default: 2, ge: 1}
  mode: {enum: [fast, safe], default: safe}
  extra: {default: null}
  hosts: {list: true, default: [a]}
access:
  - {group: demo.example.com, resources: [widgets]}
"""
DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: demo, namespace: demo, labels: {{ labels | json }}}
spec:
  replicas: {{ options.replicas }}
  selector: {matchLabels: {app: demo}}
  template:
    metadata: {labels: {app: demo}}
    spec:
      containers:
        - name: c
          image: demo:1
          args: [--mode={{ options.mode }}]
          resources: {requests: {cpu: 50m, memory: 64Mi}}
"""


def test_options_are_typed_and_unknown_keys_refused(tmp_path):
    cls = _component(tmp_path, DECL, {"d.yaml": DEPLOY})
    assert cls.name == "demo-app" and cls.depends == ("platform-base",)
    o = cls({"replicas": 3}).options
    assert (o.replicas, o.mode, o.extra, o.hosts) == (3, "safe", None, ["a"])
    for bad in ({"replicas": 0}, {"mode": "slow"}, {"nope": 1}):
        with pytest.raises(ValidationError):
            cls(bad)


def test_a_component_with_host_workloads_gets_the_runtime_option(tmp_path):
    """`runtime` is the kit's: added (first) where `host:` declares workloads, nowhere else, never declared."""
    host = "images:\n  c: {go: {module: example.com/c, version: v1, package: cmd/c}}\nhost: {deployment: demo, image: c}\n"
    cls = _component(tmp_path, DECL + host, {"d.yaml": DEPLOY})
    field = cls.Opts.model_fields["runtime"]
    assert list(cls.Opts.model_fields)[0] == "runtime" and field.default == "auto" and "demo as pods" in field.description
    assert cls({"runtime": "host"}).options.runtime == "host" and cls().on_host is False
    assert cls(runtime=Runtime(pods_run=False)).on_host and not cls({"runtime": "in-cluster"}, Runtime(pods_run=False)).on_host
    with pytest.raises(ValidationError):
        cls({"runtime": "pod"})
    assert "runtime" not in _component(tmp_path / "plain", DECL, {"d.yaml": DEPLOY}).Opts.model_fields
    with pytest.raises(UserError, match="the kit adds option `runtime`"):
        _component(tmp_path / "declared", DECL.replace("options:\n", "options:\n  runtime: {default: auto}\n") + host, {"d.yaml": DEPLOY})


def test_render_labels_every_object_and_adds_the_user_roles(tmp_path):
    objs = _component(tmp_path, DECL, {"d.yaml": DEPLOY})({"mode": "fast"}).objects()
    assert [o["kind"] for o in objs] == ["Deployment", "ClusterRole", "ClusterRole"]
    assert all(o["metadata"]["labels"][kit.COMPONENT_LABEL] == "demo-app" for o in objs)
    assert objs[0]["spec"]["template"]["spec"]["containers"][0]["args"] == ["--mode=fast"]
    assert objs[1]["rules"][0]["resources"] == ["widgets"]


def test_requests_are_summed_from_pod_templates(tmp_path):
    cls = _component(tmp_path, DECL, {"d.yaml": DEPLOY})
    assert cls({"replicas": 3}).requests() == kit.Resources(150, 192)


def test_a_folder_must_be_named_as_its_component(tmp_path):
    with pytest.raises(ValueError, match="demo_app"):
        _component(tmp_path, DECL.replace("name: demo-app", "name: other"), {"d.yaml": DEPLOY})


def test_an_undefined_template_variable_is_an_error(tmp_path):
    cls = _component(tmp_path, DECL, {"d.yaml": DEPLOY.replace("options.mode", "options.speed")})
    with pytest.raises(Exception, match="speed"):
        cls().objects()


class FakeKube:
    """Enough of appliance.kube.Kube for pruning: objects by (kind, namespace, name)."""

    def __init__(self):
        self.objs: dict[tuple, dict] = {}
        self.policies: dict[str, str] = {}  # volume -> reclaim policy (the provisioner's default: Delete)

    def apply(self, objs):
        objs = list(objs)
        for o in objs:
            self.objs[(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"])] = json.loads(json.dumps(o))
        return len(objs)

    def delete(self, objs):
        for o in objs:
            self.objs.pop((o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]), None)

    def get(self, api_version, kind, name, namespace=None):
        o = self.objs.get((kind, namespace or "", name))
        return type("Live", (), {"to_dict": lambda self: o})() if o else None

    def internal_ips(self):
        return []

    def missing(self, objs):
        return [o["metadata"]["name"] for o in objs if (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) not in self.objs]

    def list_labelled(self, api_version, kind, selector):
        k, v = selector.split("=")
        return [o for (kd, _, _), o in self.objs.items() if kd == kind and o["metadata"].get("labels", {}).get(k) == v]

    def claims(self, namespace=None):
        return [{"namespace": ns, "name": n, "volume": f"pv-{ns}-{n}"} for (kd, ns, n) in self.objs
                if kd == "PersistentVolumeClaim" and namespace in (None, ns)]

    def reclaim(self, volume, policy):
        changed = self.policies.get(volume, "Delete") != policy
        self.policies[volume] = policy
        return changed


def test_upgrade_prunes_what_the_manifests_dropped_and_keeps_marked_objects(tmp_path):
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s, namespace: demo%s}\n"
    keep = ", annotations: {appliance.dev/keep-on-prune: 'true'}"
    files = {"a.yaml": cm % ("one", ""), "b.yaml": cm % ("two", ""), "c.yaml": cm % ("kept", keep), "d.yaml": DEPLOY}
    kube = FakeKube()
    first = _component(tmp_path, DECL, files)
    first().install(kube)
    assert {k[2] for k in kube.objs} >= {"one", "two", "kept", "demo"}
    (tmp_path / "demo_app" / "manifests" / "b.yaml").unlink()
    (tmp_path / "demo_app" / "manifests" / "c.yaml").unlink()
    (tmp_path / "demo_app" / "manifests" / "d.yaml").unlink()  # a whole kind goes: found through the inventory
    summary = kit.load(tmp_path / "demo_app")().install(kube)
    names = {k[2] for k in kube.objs}
    assert "pruned 2" in summary and {"one", "kept"} <= names and not {"two", "demo"} & names
    assert kit.load(tmp_path / "demo_app")().remove(kube) == ["ConfigMap/kept"]  # marked: data
    assert {k[2] for k in kube.objs if k[1] == "demo"} == {"kept"}
    assert kit.load(tmp_path / "demo_app")().remove(kube, delete_data=True) == []
    assert not any(k[0] in ("ConfigMap", "Deployment") and k[1] == "demo" for k in kube.objs)


CLAIMED = """apiVersion: v1
kind: Namespace
metadata: {name: demo}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: store, namespace: demo}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
"""


def test_claims_and_the_namespaces_holding_them_are_never_pruned_and_removed_only_with_their_data(tmp_path):
    kube = FakeKube()
    summary = _component(tmp_path, DECL, {"a.yaml": CLAIMED, "d.yaml": DEPLOY})().install(kube)
    assert "volumes kept when their claims go (Retain): demo/store" in summary and kube.policies == {"pv-demo-store": "Retain"}
    assert "Retain" not in kit.load(tmp_path / "demo_app")().install(kube)  # already kept: said once
    (tmp_path / "demo_app" / "manifests" / "a.yaml").unlink()  # the manifests drop the claim and its namespace
    summary = kit.load(tmp_path / "demo_app")().install(kube)
    assert "left the manifests but kept, holding data: Namespace/demo, PersistentVolumeClaim/store" in summary
    assert {("Namespace", "", "demo"), ("PersistentVolumeClaim", "demo", "store")} <= set(kube.objs)
    (tmp_path / "demo_app" / "manifests" / "a.yaml").write_text(CLAIMED)
    comp = kit.load(tmp_path / "demo_app")()
    assert comp.remove(kube) == ["Namespace/demo", "PersistentVolumeClaim/store"]
    assert not any(k[0] == "Deployment" for k in kube.objs) and kube.policies == {"pv-demo-store": "Retain"}
    assert comp.remove(kube, delete_data=True) == [] and not kube.objs and kube.policies == {"pv-demo-store": "Delete"}


def test_a_kind_no_longer_served_has_nothing_to_prune():
    from types import SimpleNamespace

    import kubernetes  # noqa: F401 - the package before its `dynamic` module, as the appliance imports them
    from kubernetes.dynamic.exceptions import ResourceNotFoundError

    from appliance.kube import Kube

    def gone(**kw):
        raise ResourceNotFoundError("no kind ClusterServingRuntime")

    kube = Kube.__new__(Kube)
    kube.dynamic = SimpleNamespace(resources=SimpleNamespace(get=gone))
    assert kube.list_labelled("serving.kserve.io/v1alpha1", "ClusterServingRuntime", "appliance.dev/component=kserve") == []


def test_a_secrets_values_are_read_as_text():
    """kube.secret_data: a live Secret's base64 data decoded, {} where it or the cluster is missing;
    kube.decoded: a rendered Secret's stringData over its data."""
    import base64

    from appliance.kube import decoded, secret_data

    live = {"data": {"password": base64.b64encode(b"s3cret").decode()}}

    class Kube:
        def get(self, api_version, kind, name, namespace=None):
            assert (api_version, kind) == ("v1", "Secret")
            return type("Live", (), {"to_dict": lambda self: live})() if (namespace, name) == ("ns", "login") else None

    assert secret_data(Kube(), "login", "ns") == {"password": "s3cret"}
    assert secret_data(Kube(), "other", "ns") == {} and secret_data(None, "login", "ns") == {}
    assert decoded({"data": live["data"], "stringData": {"password": "plain", "user": "u"}}) == {"password": "plain", "user": "u"}
    assert decoded({"metadata": {}}) == {}


def test_a_new_version_of_a_component_has_a_new_revision(tmp_path):
    """`up` re-applies a component whose manifests changed (the planner's fingerprint holds the revision)."""
    comp = _component(tmp_path, DECL, {"10-deploy.yaml": DEPLOY})
    before = comp().revision()
    assert comp().revision() == before
    (comp.folder / "manifests" / "10-deploy.yaml").write_text(DEPLOY.replace("app: demo", "app: demo2"))
    assert comp().revision() != before


def test_a_deployment_is_ready_once_its_new_pods_are_available():
    """As `kubectl rollout status`: a Recreate rollout's new pod not ready yet (Available still True from
    before), or an old pod still running beside the new one, is not ready."""
    from appliance.kube import _is_ready

    def live(**status):
        d = {"metadata": {"generation": 2}, "spec": {"replicas": 1},
             "status": {"observedGeneration": 2, "conditions": [{"type": "Available", "status": "True"}], **status}}
        return type("Live", (), {"to_dict": lambda self: d})()

    assert not _is_ready("Deployment", live(replicas=1, updatedReplicas=1, availableReplicas=0))
    assert not _is_ready("Deployment", live(replicas=2, updatedReplicas=1, availableReplicas=2))
    assert _is_ready("Deployment", live(replicas=1, updatedReplicas=1, availableReplicas=1))


def test_ready_renders_once_then_checks_what_it_kept(tmp_path, monkeypatch):
    """`up` polls ready() every second: the manifests are rendered once (or taken from install), not per poll."""
    comp = _component(tmp_path, DECL, {"deploy.yaml": DEPLOY})()
    renders, asked = [], []
    real = comp.objects
    monkeypatch.setattr(comp, "objects", lambda *a, **k: renders.append(1) or real(*a, **k))

    class Kube:
        def internal_ips(self):
            return []

        def missing(self, objs):
            asked.append([o["metadata"]["name"] for o in objs])
            return ["Deployment demo/demo"] if len(asked) < 3 else []

    assert comp.ready(Kube()) == (False, "Deployment demo/demo")
    assert comp.ready(Kube())[0] is False and comp.ready(Kube()) == (True, "")
    assert len(renders) == 1 and asked[0] == asked[-1] and "demo" in asked[0]


def test_a_namespace_being_deleted_is_waited_for_before_the_component_makes_it_again(tmp_path, monkeypatch):
    kube = FakeKube()
    kube.objs[("Namespace", "", "demo")] = {"kind": "Namespace", "metadata": {"name": "demo", "deletionTimestamp": "2026-12-07T00:00:00Z"}}
    polls = []

    def gone_after_two(check, timeout, what, poll=2.0, **kw):
        while not check()[0]:
            polls.append(check()[1])
            if len(polls) == 2:
                del kube.objs[("Namespace", "", "demo")]  # the namespace controller finishes
    monkeypatch.setattr(kit.wait, "until", gone_after_two)
    _component(tmp_path, DECL, {"a.yaml": CLAIMED, "d.yaml": DEPLOY})().install(kube)
    assert polls == ["namespace demo is still being deleted"] * 2 and ("Namespace", "", "demo") in kube.objs
    assert "deletionTimestamp" not in kube.objs[("Namespace", "", "demo")]["metadata"]


def test_the_crd_of_a_kind_users_create_is_kept_by_a_removal_a_platform_kinds_is_not(tmp_path):
    crd = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: %s}\nspec: {group: demo.example.com}\n"
    kube = FakeKube()
    comp = _component(tmp_path, DECL, {"a.yaml": crd % "widgets.demo.example.com", "b.yaml": crd % "internals.demo.example.com"})()
    comp.install(kube)
    assert comp.remove(kube) == ["CustomResourceDefinition/widgets.demo.example.com"]  # `access` names widgets: users' data
    assert {k[2] for k in kube.objs if k[0] == "CustomResourceDefinition"} == {"widgets.demo.example.com"}
