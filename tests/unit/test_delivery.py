"""Image delivery: upstream vs local decision, push naming, node mirrors, schema checks."""

import http.server
import threading

import pytest
from pydantic import ValidationError

from appliance import components, profiles
from appliance.images import delivery as D
from appliance.images import registry as R
from appliance.procs import free_ports
from appliance.schema import ImagesSpec


@pytest.mark.parametrize("ref,host", [
    ("docker.io/kubeflow/training-operator:v1", "docker.io"),
    ("kubeflow/training-operator:v1", "docker.io"),
    ("busybox", "docker.io"),
    ("nvcr.io/nvidia/k8s-device-plugin:v0.17.0", "nvcr.io"),
    ("localhost:5000/x:1", "localhost:5000"),
    ("appliance.local/trainer:stub", "appliance.local"),
])
def test_registry_of(ref, host):
    assert R.registry_of(ref) == host


def test_endpoint_prefers_the_mirror():
    assert R.endpoint_for("docker.io", {}) == "https://registry-1.docker.io"
    assert R.endpoint_for("ghcr.io", {}) == "https://ghcr.io"
    assert R.endpoint_for("docker.io", {"docker.io": "http://10.0.0.5:5000"}) == "http://10.0.0.5:5000"


@pytest.fixture
def v2_server():
    """A loopback HTTP server answering /v2/ with 401 (what a registry wanting a token says)."""

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(401 if self.path == "/v2/" else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_auto_takes_upstream_when_the_mirror_answers(v2_server):
    d = D.decide(ImagesSpec(mirrors={"docker.io": v2_server}), ["docker.io/kserve/kserve-controller:v0.14.1"])
    assert d.source == "upstream" and "docker.io" in d.why


def test_auto_builds_locally_when_a_registry_is_unreachable():
    port = free_ports(1)[0]
    d = D.decide(ImagesSpec(mirrors={"docker.io": f"http://127.0.0.1:{port}"}), ["kubeflow/training-operator:v1"])
    assert d.source == "local" and "unreachable" in d.why and str(port) in d.why


def test_explicit_source_does_not_probe():
    d = D.decide(ImagesSpec(source="upstream", mirrors={"docker.io": "http://127.0.0.1:9"}), ["x/y:1"])
    assert d.source == "upstream" and "set by" in d.why


def test_upstream_delivery_builds_only_images_without_upstream(monkeypatch):
    built = []

    def build(name):
        def f():
            built.append(name)
            return f"appliance.local/{name}:abc", None
        return f

    imgs = [D.ComponentImage("op", "docker.io/org/op:v1", build("op")), D.ComponentImage("stub", "", build("stub"))]
    refs = D.Delivery("upstream").provide(None, imgs)
    assert refs == {"op": "docker.io/org/op:v1", "stub": "appliance.local/stub:abc"} and built == ["stub"]
    refs = D.Delivery("local").provide(None, imgs)
    assert refs["op"] == "appliance.local/op:abc" and built == ["stub", "op", "stub"]


def test_push_keeps_the_repository_path_and_pushes_aliases(monkeypatch, tmp_path):
    pushed = []
    monkeypatch.setattr(R, "push_archive", lambda archive, ep, repo, tag: pushed.append((ep.url, repo, tag)))
    D.push(tmp_path / "a.tar", "appliance.local/trainer:0123", "http://10.1.2.3:5000", ("appliance.local/trainer:stub",))
    assert pushed == [("http://10.1.2.3:5000", "trainer", "0123"), ("http://10.1.2.3:5000", "trainer", "stub")]
    with pytest.raises(D.DeliveryError, match="only appliance.local/"):
        D.push(tmp_path / "a.tar", "docker.io/x/y:1", "reg:5000")


def test_node_mirrors_map_appliance_local_to_the_push_registry():
    assert D.node_mirrors(ImagesSpec()) == {}
    m = D.node_mirrors(ImagesSpec(registry="reg.internal:5000", mirrors={"docker.io": "http://cache:5000"}))
    assert m == {"docker.io": "http://cache:5000", "appliance.local": "https://reg.internal:5000"}


@pytest.mark.parametrize("field,value,msg", [
    ("registry", "http://bad host", "not a registry address"),
    ("mirrors", {"docker.io": "cache:5000"}, "must be an http"),
    ("source", "remote", "Input should be"),
])
def test_bad_images_settings_are_rejected(field, value, msg):
    with pytest.raises(ValidationError, match=msg):
        ImagesSpec(**{field: value})


def test_profile_images_error_names_the_field():
    from appliance.errors import ProfileError

    with pytest.raises(ProfileError) as e:
        profiles.load("laptop", ["cluster.images.source=remote"], "kind")
    assert "cluster.images.source" in str(e.value)


def test_components_of_a_profile_share_one_delivery():
    p = profiles.load("laptop", ["components.kserve.enabled=true", "cluster.images.source=local"], "kind").profile
    comps = components.enabled(p)
    shared = {id(c.delivery) for c in comps.values()}
    assert len(shared) == 1
    ups = next(iter(comps.values())).delivery.upstreams
    assert "docker.io/kserve/kserve-controller:v0.14.1" in ups and any("training-operator" in u for u in ups)
    assert next(iter(comps.values())).delivery.decision().source == "local"


def test_kind_config_writes_containerd_mirrors():
    from appliance.providers.kind.config import kind_config

    p = profiles.load("laptop", ["cluster.images.registry=http://172.18.0.9:5000"], "kind").profile
    cfg = kind_config(p.cluster, "img")
    patch = cfg["containerdConfigPatches"][0]
    assert 'registry.mirrors."appliance.local"]' in patch and 'endpoint = ["http://172.18.0.9:5000"]' in patch
    assert "containerdConfigPatches" not in kind_config(profiles.load("laptop", [], "kind").profile.cluster, "img")


def test_pod_problems_name_the_reason_and_the_last_error(monkeypatch):
    from types import SimpleNamespace as NS

    from kubernetes import client

    from appliance.kube import Kube

    crash = NS(state=NS(waiting=NS(reason="CrashLoopBackOff", message="back-off 40s")),
               last_state=NS(terminated=NS(reason="StartError", exit_code=128, message='exec: "/manager": no such file')))
    pull = NS(state=NS(waiting=NS(reason="ImagePullBackOff", message="Back-off pulling image x")), last_state=None)
    creating = NS(state=NS(waiting=NS(reason="ContainerCreating", message="")), last_state=None)
    pods = NS(items=[NS(metadata=NS(name="p1"), status=NS(init_container_statuses=None, container_statuses=[crash, creating])),
                     NS(metadata=NS(name="p2"), status=NS(init_container_statuses=[pull], container_statuses=None))])
    seen = {}

    class Core:
        def __init__(self, api):
            pass

        def list_namespaced_pod(self, ns, label_selector):
            seen["args"] = (ns, label_selector)
            return pods

    monkeypatch.setattr(client, "CoreV1Api", Core)
    kube = Kube.__new__(Kube)
    kube.api = None
    workload = NS(to_dict=lambda: {"spec": {"selector": {"matchLabels": {"app": "x"}}}})
    why = kube.pod_problems("ns1", workload)
    assert seen["args"] == ("ns1", "app=x")
    assert 'p1: CrashLoopBackOff: last run: StartError (exit code 128): exec: "/manager": no such file' in why
    assert "p2: ImagePullBackOff: Back-off pulling image x" in why and "ContainerCreating" not in why


def test_push_to_a_silent_registry_is_one_clear_error(tmp_path):
    from appliance.images.archive import FileEntry, ImageSpec, write_docker_archive, write_layer

    layer = tmp_path / "l.tar"
    write_layer([FileEntry("hello", data=b"hi", mode=0o644)], layer)
    write_docker_archive(ImageSpec("appliance.local/x:1", [layer]), tmp_path / "x.tar")
    port = free_ports(1)[0]
    with pytest.raises(D.DeliveryError) as e:
        D.push(tmp_path / "x.tar", "appliance.local/x:1", f"http://127.0.0.1:{port}")
    assert f"127.0.0.1:{port}" in str(e.value) and "ConnectionRefusedError" in str(e.value) and "cluster.images.registry" in str(e.value)


def test_an_image_two_components_share_is_pushed_once_with_both_aliases(monkeypatch):
    pushed = []
    monkeypatch.setattr(D, "push", lambda archive, ref, registry, aliases: pushed.append((ref, aliases)))
    same = lambda: ("appliance.local/trainer:abc", "a.tar")  # noqa: E731
    imgs = [D.ComponentImage("pytorch-init", "docker.io/library/alpine:3.20", same, ("appliance.local/trainer:stub",)),
            D.ComponentImage("trainer", "", same, ("appliance.local/trainer:stub", "appliance.local/trainer:x"))]
    refs = D.Delivery("local", registry="reg:5000").provide(None, imgs)
    assert refs == {"pytorch-init": "appliance.local/trainer:abc", "trainer": "appliance.local/trainer:abc"}
    assert pushed == [("appliance.local/trainer:abc", ("appliance.local/trainer:stub", "appliance.local/trainer:x"))]


def test_only_images_no_pod_on_a_tainted_control_plane_can_run_skip_it(monkeypatch):
    """kind with a worker: its control plane is tainted NoSchedule. An image only the component's own
    untolerating workloads run skips it; a DaemonSet's that tolerates it, one no template runs (users' pods run
    it), and one with an alias (a name users' pods give it) go to every node."""
    from appliance.components.kit import control_plane_free

    loaded = []
    monkeypatch.setattr(D, "node_list", lambda kube: [])
    monkeypatch.setattr(D, "node_containers", lambda kube, listed: ["c-control-plane", "c-worker"])
    monkeypatch.setattr(D, "schedulable", lambda listed, nodes: ["c-worker"])
    monkeypatch.setattr(D, "load_image_into_nodes", lambda kube, archive, ref, aliases, nodes: loaded.append((ref, nodes)))
    build = lambda ref: (lambda: (ref, None))  # noqa: E731
    imgs = [D.ComponentImage(n, "", build(f"appliance.local/{n}:1")) for n in ("agent", "hub", "notebook", "exporter")]
    imgs.append(D.ComponentImage("trainer", "", build("appliance.local/trainer:1"), aliases=("appliance.local/trainer:stub",)))
    ready = D.Delivery("local").prepare(imgs)
    tolerating = [{"key": D.CONTROL_PLANE_TAINT, "operator": "Exists", "effect": "NoSchedule"}]
    pod = lambda image, **kw: {"spec": {"template": {"spec": {"containers": [{"image": image}], **kw}}}}  # noqa: E731
    objs = [{"kind": "DaemonSet", **pod(ready.refs["agent"], tolerations=tolerating)},
            {"kind": "Deployment", **pod(ready.refs["hub"])},
            {"kind": "DaemonSet", **pod(ready.refs["exporter"], tolerations=[{"operator": "Exists"}])},
            {"kind": "Deployment", **pod(ready.refs["trainer"])}]
    assert control_plane_free(objs) == {ready.refs["hub"], ready.refs["trainer"]}
    ready.deliver(object(), workers_only=control_plane_free(objs))
    everywhere = ["c-control-plane", "c-worker"]
    assert dict(loaded) == {"appliance.local/agent:1": everywhere, "appliance.local/hub:1": ["c-worker"],
                            "appliance.local/notebook:1": everywhere, "appliance.local/exporter:1": everywhere,
                            "appliance.local/trainer:1": everywhere}
    loaded.clear()
    ready.deliver(object())  # nothing said: every node
    assert all(nodes == everywhere for _, nodes in loaded) and len(loaded) == 5


def test_schedulable_nodes_leave_out_a_tainted_control_plane_unless_it_is_alone():
    from types import SimpleNamespace as NS

    def nodes(*tainted):
        return [NS(metadata=NS(name=n), spec=NS(taints=[NS(key=D.CONTROL_PLANE_TAINT, effect="NoSchedule")] if n in tainted else None))
                for n in ("c-control-plane", "c-worker")]

    assert D.schedulable(nodes("c-control-plane"), ["c-control-plane", "c-worker"]) == ["c-worker"]
    assert D.schedulable(nodes(), ["c-control-plane", "c-worker"]) == ["c-control-plane", "c-worker"]
    assert D.schedulable(nodes("c-control-plane", "c-worker"), ["c-control-plane", "c-worker"]) == ["c-control-plane", "c-worker"]
