"""The notebooks component: users as user-profiles offers them, logins generated once and kept (the hub
holds hashes only), GPU server options checked against the users, the hub config's server options."""

import base64
import json
import runpy
import sys
import types

import pytest

from appliance.components import CATALOG
from appliance.components.notebooks import hooks
from appliance.errors import UserError


class FakeKube:
    """A cluster whose profile lists `users` (user-profiles offers them), with Secrets and servers' pods."""

    kubeconfig = "/nonexistent/kubeconfig"

    def __init__(self, users, secrets=None, pods=(), classes=()):
        self.users, self.secrets, self.pods, self.deleted, self.classes = users, secrets or {}, list(pods), [], list(classes)

    def storage_classes(self):
        return self.classes

    def list_labelled(self, api_version, kind, selector):
        assert kind == "Pod"
        return self.pods

    def get(self, api_version, kind, name, namespace=None):
        data = self.secrets.get((namespace, name))
        if data is None:
            return None
        return types.SimpleNamespace(to_dict=lambda: {"data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}})

    def internal_ips(self):
        return ["172.18.0.2"]

    def delete(self, objs):
        self.deleted += [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in objs]


def _notebooks(kube, **options):
    """The component as `components.enabled` makes it: given the profile's users."""
    comp = CATALOG["notebooks"](options)
    comp.given = {"users": kube.users}
    return comp


def _objects(kube, **options):
    return _notebooks(kube, **options).objects(kube, crds=False)


def _find(objs, kind, name, namespace=None):
    (o,) = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name
            and (namespace is None or o["metadata"].get("namespace") == namespace)]
    return o


def test_each_user_gets_a_generated_login_kept_across_renders():
    kube = FakeKube(["alice", "bob"], {("user-alice", "notebook-login"): {"password": "kept-one"}})
    objs = _objects(kube)
    alice = _find(objs, "Secret", "notebook-login", "user-alice")["stringData"]
    bob = _find(objs, "Secret", "notebook-login", "user-bob")["stringData"]
    assert alice == {"username": "alice", "password": "kept-one"}
    assert len(bob["password"]) >= 20 and bob["password"] != _find(_objects(FakeKube(["bob"])), "Secret", "notebook-login")["stringData"]["password"]
    hashes = _find(objs, "Secret", "logins", "notebooks")["stringData"]
    assert hashes == {"alice": hooks._digest("alice", "kept-one"), "bob": hooks._digest("bob", bob["password"])}
    assert "kept-one" not in json.dumps(_find(objs, "Secret", "logins"))


def test_the_hub_may_spawn_only_in_users_namespaces():
    objs = _objects(FakeKube(["alice", "bob"]))
    bindings = {o["metadata"]["namespace"] for o in objs if o["kind"] == "RoleBinding"}
    assert bindings == {"user-alice", "user-bob"}
    watch = _find(objs, "ClusterRole", "appliance:notebooks:watch")
    assert {v for r in watch["rules"] for v in r["verbs"]} == {"get", "list", "watch"}


def test_an_unknown_gpu_user_is_one_clear_line():
    with pytest.raises(UserError) as e:
        _objects(FakeKube(["alice"]), gpu_users=["carol"])
    assert "carol" in str(e.value) and "alice" in str(e.value) and str(e.value).count("— fix:") == 1


def test_homes_get_a_class_like_the_default_one_whose_volumes_are_kept(tmp_path, monkeypatch):
    default = {"metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
               "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer", "reclaimPolicy": "Delete"}
    kube = FakeKube(["alice"], classes=[{"metadata": {"name": "other"}, "provisioner": "x"}, default])
    homes = _find(_objects(kube), "StorageClass", hooks.HOMES)
    assert (homes["reclaimPolicy"], homes["provisioner"], homes["volumeBindingMode"]) == ("Retain", "rancher.io/local-path", "WaitForFirstConsumer")
    c, _ = _hub_config(tmp_path, monkeypatch, dict(_notebooks(kube).context(kube)["settings"], image="nb:1"))
    assert c.KubeSpawner.storage_class == hooks.HOMES
    policy = _find(_objects(kube), "ValidatingAdmissionPolicy", "appliance-notebooks-homes")  # tenants may not name the class
    assert hooks.HOMES in policy["spec"]["validations"][0]["expression"] and "user-'" in policy["spec"]["matchConditions"][0]["expression"]
    nothing = FakeKube(["alice"], classes=[{"metadata": {"name": "other"}, "provisioner": "x"}])  # no default class: none of ours
    assert not [o for o in _objects(nothing) if o["kind"] in ("StorageClass", "ValidatingAdmissionPolicy") and "homes" in o["metadata"]["name"]]
    c, _ = _hub_config(tmp_path, monkeypatch, dict(_notebooks(nothing).context(nothing)["settings"], image="nb:1"))
    assert not hasattr(c.KubeSpawner, "storage_class")


def _hub_config(tmp_path, monkeypatch, settings):
    """Load the hub's config file (beside its settings, as mounted) with stand-ins for JupyterHub's loader
    and packages; returns (the config object, the file's globals)."""
    (tmp_path / "settings.json").write_text(json.dumps(settings))
    (tmp_path / "jupyterhub_config.py").write_text((hooks.HERE / "jupyterhub_config.py").read_text())

    class Config(types.SimpleNamespace):
        def __getattr__(self, name):
            setattr(self, name, types.SimpleNamespace())
            return getattr(self, name)

    class Authenticator:
        def add_user(self, user):
            return "added"

    class ApiException(Exception):
        def __init__(self, status):
            self.status = status

    class KubeSpawner:  # its progress: the pod's events, one after a while, then the spawn is over
        async def progress(self):
            import asyncio

            for message in self.pod_events:
                await asyncio.sleep(0.2)
                yield {"message": message}

    stub = types.ModuleType("stub")
    stub.Authenticator, stub.KubeSpawner, stub.ApiException = Authenticator, KubeSpawner, ApiException
    stub.CustomObjectsApi = lambda api_client: api_client  # the tests' stand-in client answers as the custom objects API
    for mod in ("jupyterhub", "jupyterhub.auth", "kubespawner", "kubernetes_asyncio", "kubernetes_asyncio.client"):
        monkeypatch.setitem(sys.modules, mod, stub)
    c = Config()
    return c, runpy.run_path(str(tmp_path / "jupyterhub_config.py"), init_globals={"get_config": lambda: c})


def test_gpu_server_offered_only_to_listed_users(tmp_path, monkeypatch):
    kube = FakeKube(["alice", "bob"])
    settings = dict(_notebooks(kube, gpu_users=["alice"], gpus=2).context(kube)["settings"], image="nb:1")
    c, ns = _hub_config(tmp_path, monkeypatch, settings)
    offer = ns["server_options"]
    user = lambda n: types.SimpleNamespace(user=types.SimpleNamespace(name=n))  # noqa: E731
    assert [o["slug"] for o in offer(user("alice"))] == ["cpu", "gpu"]
    assert [o["slug"] for o in offer(user("bob"))] == ["cpu"]
    gpu = offer(user("alice"))[1]["kubespawner_override"]
    assert gpu["extra_resource_limits"] == {"nvidia.com/gpu": "2"}
    assert c.KubeSpawner.cpu_limit == 1.0 and c.KubeSpawner.cpu_guarantee == 0.1 and c.KubeSpawner.mem_limit == "2G"
    assert c.KubeSpawner.service_account == "{username}" and c.KubeSpawner.image == "nb:1"


def _hub_settings(**more) -> dict:
    return {"users": ["alice", "bob"], "gpu_users": [], "cull_idle": 0, "start_timeout": 60, "cpu": "1", "memory": "1Gi",
            "cpu_request": "100m", "memory_request": "128Mi", "home_size": "1Gi", "gpus": 1, "namespace": "notebooks",
            "image": "nb:1", "subdomain_host": "", "storage_class": "", **more}


def test_a_gpu_server_is_queued_where_its_user_has_a_queue_and_the_spawn_page_says_why_it_waits(tmp_path, monkeypatch):
    import asyncio

    c, ns = _hub_config(tmp_path, monkeypatch, _hub_settings())
    spawner_class, exc = ns["UserNamespaceSpawner"], sys.modules["kubespawner"].ApiException

    class Queues:  # the custom objects API of a namespace with (or without) the LocalQueue `default`
        def __init__(self, status=None):
            self.status = status

        async def get_namespaced_custom_object(self, group, version, namespace, plural, name):
            assert (group, plural, name, namespace) == ("kueue.x-k8s.io", "localqueues", "default", "user-alice")
            if self.status:
                raise exc(self.status)
            return {}

    def pod(limits):
        return types.SimpleNamespace(metadata=types.SimpleNamespace(labels={"component": "singleuser-server"}),
                                     spec=types.SimpleNamespace(containers=[types.SimpleNamespace(resources=types.SimpleNamespace(limits=limits))]))

    def hook(api, limits):
        spawner = spawner_class()
        spawner.namespace, spawner.api = "user-alice", types.SimpleNamespace(api_client=api)
        labels = asyncio.run(c.KubeSpawner.modify_pod_hook(spawner, pod(limits))).metadata.labels
        return labels.get("kueue.x-k8s.io/queue-name"), spawner.queued

    assert hook(Queues(), {"nvidia.com/gpu": "1"}) == ("default", True)
    assert hook(Queues(404), {"nvidia.com/gpu": "1"}) == (None, False)  # no queue (or no Kueue): scheduled as before
    assert hook(Queues(), {"cpu": "1"}) == (None, False)  # a CPU server is never queued
    with pytest.raises(exc):
        hook(Queues(403), {"nvidia.com/gpu": "1"})  # anything else is not taken for "no queue"
    why = ns["queue_reason"]
    pending = {"type": "QuotaReserved", "status": "False", "message": "couldn't assign flavors to pod set main: resource nvidia.com/gpu unavailable in ClusterQueue"}

    def wl(owner, *conds):
        return {"metadata": {"ownerReferences": [{"kind": "Pod", "name": owner}]}, "spec": {"queueName": "default"}, "status": {"conditions": list(conds)}}

    assert why([wl("jupyter-bob", pending), wl("jupyter-alice", pending)], "jupyter-alice") == f"waiting in queue default: {pending['message']}"
    assert why([wl("jupyter-alice", {"type": "QuotaReserved", "status": "True", "message": "ok"})], "jupyter-alice") is None
    assert why([wl("jupyter-alice", pending, {"type": "Finished", "status": "True"})], "jupyter-alice") is None  # an old spawn's
    assert why([wl("jupyter-alice")], "jupyter-alice") is None and why([], "jupyter-alice") is None

    class Workloads:  # the custom objects API of alice's namespace while her server waits
        async def list_namespaced_custom_object(self, group, version, namespace, plural):
            return {"items": [wl("jupyter-alice", pending)]}

    async def spawn_page(queued):
        spawner = spawner_class()
        spawner.namespace, spawner.pod_name, spawner.queue_poll, spawner.queued = "user-alice", "jupyter-alice", 0.05, queued
        spawner.api, spawner.pod_events = types.SimpleNamespace(api_client=Workloads()), ["created", "gated"]
        return [m["message"] async for m in spawner.progress()]

    told = asyncio.run(spawn_page(True))
    assert told == [f"waiting in queue default: {pending['message']}", "created", "gated"]  # once, though asked each poll
    assert asyncio.run(spawn_page(False)) == ["created", "gated"]


def test_the_hub_admits_a_user_with_their_password_only(tmp_path, monkeypatch):
    import asyncio

    _, ns = _hub_config(tmp_path, monkeypatch, _hub_settings())
    (tmp_path / "logins").mkdir()
    (tmp_path / "logins" / "alice").write_text(hooks._digest("alice", "s3cret"))
    auth = ns["SecretAuthenticator"]()
    login = lambda u, p: asyncio.run(auth.authenticate(None, {"username": u, "password": p}))  # noqa: E731
    assert login("alice", "s3cret") == "alice"
    assert login("alice", "wrong") is None and login("bob", "s3cret") is None and login("carol", "s3cret") is None


def test_server_pods_are_changed_by_no_tenant_but_by_the_platforms_controllers():
    policy = _find(_objects(FakeKube(["alice", "bob"])), "ValidatingAdmissionPolicy", "appliance-notebooks-servers")
    tenant = next(v["expression"] for v in policy["spec"]["variables"] if v["name"] == "tenant")
    assert "startsWith('system:serviceaccount:user-')" in tenant and '["alice", "bob"]' in tenant  # accounts of theirs, and them
    (check,) = policy["spec"]["validations"]
    assert check["expression"] == "!variables.server || (request.operation == 'UPDATE' && !variables.tenant)"
    assert policy["spec"]["matchConditions"][0]["expression"].endswith(":hub'")  # the hub is not checked


def test_status_says_where_each_server_runs_or_why_it_waits():
    running = {"metadata": {"name": "jupyter-alice", "labels": {"appliance.dev/owner": "alice"}}, "spec": {"nodeName": "w1"},
               "status": {"phase": "Running"}}
    pending = {"metadata": {"name": "jupyter-bob", "labels": {"appliance.dev/owner": "bob"}}, "spec": {},
               "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                                                              "message": "0/2 nodes are available: 1 Insufficient nvidia.com/gpu"}]}}
    opts = CATALOG["notebooks"]().options
    got = hooks.notes(opts, FakeKube([], pods=[running, pending]))
    assert got[1:] == ["server of alice: Running on w1", "server of bob: Pending 0/2 nodes are available: 1 Insufficient nvidia.com/gpu"]
    assert got[0].startswith("servers share the hub's origin") and hooks.notes(opts, FakeKube([]))[1:] == ["no servers running"]
    per_user = CATALOG["notebooks"]({"subdomain_host": "https://hub.example.org"}).options
    assert hooks.notes(per_user, FakeKube([]))[0] == "servers on per-user origins (https://NAME.hub.example.org/)"


LOOPBACK = [{"container_port": 30080, "host_port": 8000, "listen_address": "127.0.0.1"}]


@pytest.mark.parametrize("option, mappings, want", [
    ("auto", LOOPBACK, "http://localhost:8000"),  # kind on loopback: every *.localhost name is the host itself
    ("auto", [{"container_port": 30080, "host_port": 8000}], ""),  # on every address: LAN users have no wildcard name
    ("auto", [], ""),  # a node's address (ci, bare metal)
    ("off", LOOPBACK, ""),
    ("https://hub.example.org", [], "https://hub.example.org"),
])
def test_each_user_gets_an_origin_where_a_wildcard_name_reaches_the_hub(option, mappings, want):
    opts = CATALOG["notebooks"]({"subdomain_host": option}).options
    assert hooks._origin(opts, mappings) == want
    assert hooks._hub_url(opts, FakeKube([]), mappings) == (want + "/" if want else "http://127.0.0.1:8000/" if mappings else "http://172.18.0.2:30080/")


def test_a_bad_subdomain_host_is_refused():
    from pydantic import ValidationError

    for bad in ("localhost:8000", "http://Hub.example.org", "http://x.org/path", "*.example.org"):
        with pytest.raises(ValidationError):
            CATALOG["notebooks"]({"subdomain_host": bad})


def test_auto_reads_the_port_mappings_the_cluster_was_made_with(tmp_path, monkeypatch):
    monkeypatch.setenv("APPLIANCE_STATE", str(tmp_path))
    (tmp_path / "c1").mkdir()
    (tmp_path / "c1" / "state.json").write_text(json.dumps({"provider": "kind", "port_mappings": LOOPBACK}))
    kube = FakeKube(["alice"])
    kube.kubeconfig = str(tmp_path / "c1" / "kubeconfig")
    assert hooks._port_mappings(kube) == LOOPBACK
    (config,) = [o for o in _objects(kube) if o["kind"] == "ConfigMap"]
    assert json.loads(config["data"]["settings.json"])["subdomain_host"] == "http://localhost:8000"
    (tmp_path / "c1" / "state.json").write_text(json.dumps({"provider": "baremetal", "port_mappings": []}))
    assert hooks._port_mappings(kube) == [] and hooks._port_mappings(FakeKube([])) == []


def _settings(**options):
    kube = FakeKube(["alice", "bob"])
    return dict(_notebooks(kube, **options).context(kube)["settings"], image="nb:1")


def test_per_user_origins_route_by_host_and_leave_users_their_config(tmp_path, monkeypatch):
    objs = _objects(FakeKube(["alice"]), subdomain_host="http://localhost:8000")
    assert "--host-routing" in _find(objs, "Deployment", "proxy")["spec"]["template"]["spec"]["containers"][0]["args"]
    c, _ = _hub_config(tmp_path, monkeypatch, _settings(subdomain_host="http://localhost:8000"))
    assert c.JupyterHub.subdomain_host == "http://localhost:8000"
    assert c.KubeSpawner.disable_user_config is False


def test_one_origin_loads_no_user_config_and_the_hub_is_hardened(tmp_path, monkeypatch):
    objs = _objects(FakeKube(["alice"]), subdomain_host="off")
    assert "--host-routing" not in _find(objs, "Deployment", "proxy")["spec"]["template"]["spec"]["containers"][0]["args"]
    c, ns = _hub_config(tmp_path, monkeypatch, _settings(subdomain_host="off"))
    assert not hasattr(c.JupyterHub, "subdomain_host") and c.KubeSpawner.disable_user_config is True
    assert c.JupyterHub.tornado_settings == {"cookie_options": {"samesite": "Lax"}}
    assert c.Authenticator.allow_existing_users is False and c.Authenticator.delete_invalid_users is True
    # the server: isolated Python (no user site, not the home on sys.path), its process not dumpable
    python, isolated, dash_c, code = c.KubeSpawner.extra_container_config["command"]
    assert (python, isolated, dash_c) == ("python3", "-I", "-c") and "prctl(4, 0" in code and "jupyterhub.singleuser" in code
    compile(code, "launch", "exec")


def test_a_user_removed_from_the_profile_is_no_user_of_the_hub(tmp_path, monkeypatch):
    """Their namespace stays (their data), their account goes: no login, no spawn rights, and the hub deletes
    them (tokens and sessions with them) when it starts; `up` stops their server."""
    kube = FakeKube(["alice"])  # bob: no longer in the profile
    objs = _objects(kube)
    assert {o["metadata"]["namespace"] for o in objs if o["kind"] == "RoleBinding"} == {"user-alice"}
    assert [o["metadata"]["namespace"] for o in objs if o["kind"] == "Secret" and o["metadata"]["name"] == "notebook-login"] == ["user-alice"]
    assert set(_find(objs, "Secret", "logins")["stringData"]) == {"alice"}
    c, ns = _hub_config(tmp_path, monkeypatch, dict(_notebooks(kube).context(kube)["settings"], image="nb:1"))
    auth = ns["SecretAuthenticator"]()
    assert auth.add_user(types.SimpleNamespace(name="alice")) == "added"
    with pytest.raises(ValueError, match="bob is no longer a user"):
        auth.add_user(types.SimpleNamespace(name="bob"))
    pod = lambda u: {"metadata": {"name": f"jupyter-{u}", "namespace": f"user-{u}", "labels": {"appliance.dev/owner": u}}}  # noqa: E731
    kube.pods = [pod("alice"), pod("bob")]
    assert "stopped the servers of bob" in hooks.after_apply(CATALOG["notebooks"]().options, kube, users=kube.users)
    assert kube.deleted == [("user-bob", "jupyter-bob")]


def test_the_hubs_configuration_is_a_new_object_when_the_users_change():
    """`up` re-applies a component whose objects are missing: a ConfigMap named after its content makes a
    removed user (a change in another component) reach the hub."""
    def config(kube):
        objs = _objects(kube)
        (cm,) = [o for o in objs if o["kind"] == "ConfigMap"]
        volumes = _find(objs, "Deployment", "hub")["spec"]["template"]["spec"]["volumes"]
        assert {"name": "config", "configMap": {"name": cm["metadata"]["name"]}} in volumes
        return cm["metadata"]["name"]

    both, alice = config(FakeKube(["alice", "bob"])), config(FakeKube(["alice"]))
    assert both.startswith("hub-config-") and alice.startswith("hub-config-") and both != alice
    assert config(FakeKube(["alice", "bob"])) == both
