"""NetworkPolicy enforcement (issue 11 D) and user namespaces' Pod Security (11 C), without a cluster: the
network-policy agent's objects, the default policy of each user namespace, the profiles and the scenario."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from appliance import profiles
from appliance.components import CATALOG, Resources
from appliance.components.network_policy import hooks as netpol
from appliance.e2e import scenario
from appliance.images import builds
from appliance.providers.sim import provider as sim

ROOT = Path(__file__).resolve().parents[2]


def by_kind(objs: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for o in objs:
        out.setdefault(o["kind"], []).append(o)
    return out


# ----------------------------------------------------------------------------- the agent


def test_agent_runs_on_every_node_with_net_admin_only():
    comp = CATALOG["network-policy"]()
    (ds,) = by_kind(comp.objects(None, {"kube-network-policies": "appliance.local/kube-network-policies:abc"}))["DaemonSet"]
    assert ds["metadata"]["namespace"] == "kube-system"
    pod = ds["spec"]["template"]["spec"]
    assert pod["hostNetwork"] and pod["tolerations"] == [{"operator": "Exists"}] and pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    (c,) = pod["containers"]
    assert c["image"] == "appliance.local/kube-network-policies:abc" and c["command"] == ["/bin/netpol"]
    sc = c["securityContext"]
    assert sc["capabilities"] == {"drop": ["ALL"], "add": ["NET_ADMIN"]} and not sc.get("privileged")
    assert sc["runAsUser"] == 0 and sc["allowPrivilegeEscalation"] is False  # added capabilities need root
    assert "--hostname-override=$(NODE_NAME)" in c["args"] and {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}} in c["env"]
    assert "--metrics-bind-address=127.0.0.1:9080" in c["args"]  # the node's network: not on every interface
    assert c["readinessProbe"]["httpGet"] == {"host": "127.0.0.1", "port": 9080, "path": "/metrics"}
    assert "--fail-open" not in c["args"]  # policies hold while the agent restarts
    (opened,) = by_kind(CATALOG["network-policy"]({"fail_open": True}).objects())["DaemonSet"]
    assert "--fail-open" in opened["spec"]["template"]["spec"]["containers"][0]["args"]


def test_agent_requests_are_small_and_match_the_pod():
    comp = CATALOG["network-policy"]()
    r = comp.requests()
    assert r == Resources(10, 48) and r.cpu_m <= 20 and r.memory_mi <= 50
    (ds,) = by_kind(comp.objects())["DaemonSet"]
    assert ds["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "10m", "memory": "48Mi"}


def test_agent_rbac_reads_pods_namespaces_and_policies_only():
    objs = by_kind(CATALOG["network-policy"]().objects())
    (role,) = [r for r in objs["ClusterRole"] if r["metadata"]["name"] == "kube-network-policies"]
    granted = {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}
    assert granted == {(g, r, v) for g, r in (("", "pods"), ("", "namespaces"), ("networking.k8s.io", "networkpolicies"))
                       for v in ("list", "watch")}
    (binding,) = objs["ClusterRoleBinding"]
    (sa,) = objs["ServiceAccount"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": "kube-system"}]
    assert objs["DaemonSet"][0]["spec"]["template"]["spec"]["serviceAccountName"] == sa["metadata"]["name"]


def test_agent_image_is_built_from_the_pinned_module_or_given():
    (img,) = CATALOG["network-policy"]().images()
    go = CATALOG["network-policy"].decl.images["kube-network-policies"].go
    assert (go.module, go.version) == ("sigs.k8s.io/kube-network-policies", "v0.8.0")
    assert img.upstream == "registry.k8s.io/networking/kube-network-policies:v0.8.0"
    assert (img.build.func, img.build.args) == (netpol.image, (go,))
    assert CATALOG["network-policy"]({"image": "example.org/netpol:1"}).images() == []


def test_build_patch_makes_both_queue_verdicts_fall_back_to_the_xtables_target_and_judges_pod_sources(tmp_path):
    pkg = tmp_path / "pkg" / "networkpolicy"
    pkg.mkdir(parents=True)
    controller = pkg / "controller.go"
    controller.write_text(f"func a() {{\n{netpol.NATIVE_QUEUE}}}\nfunc b() {{\n{netpol.NATIVE_QUEUE}}}\n{netpol.EVALUATE}\tlogger := 1\n}}\n")
    netpol._patch(tmp_path)
    text = controller.read_text()
    assert text.count("\tqueue := c.queueExpr()\n") == 2 and "expr.Queue" not in text
    a, b = text.split("func b()")
    assert "c.podSourceChains(nft, table, chain)\n\tqueue := c.queueExpr()" in a and "podSourceChains" not in b  # the POSTROUTING chain's only
    assert netpol.EVALUATE + "\tif c.unknownPodSource(p) {\n\t\treturn false\n\t}\n\tlogger" in text
    compat = (pkg / "zz_appliance_queue_compat.go").read_text()
    assert "package networkpolicy" in compat and "func (c *Controller) queueExpr() expr.Any" in compat
    assert 'Name: "NFQUEUE", Rev: 3' in compat
    sources = (pkg / "zz_appliance_pod_sources.go").read_text()
    assert "nftables.ChainHookInput" in sources and 'flag.String("pod-cidrs"' in sources


def test_build_patch_refuses_an_upstream_it_does_not_know(tmp_path):
    pkg = tmp_path / "pkg" / "networkpolicy"
    pkg.mkdir(parents=True)
    (pkg / "controller.go").write_text(f"func a() {{\n{netpol.NATIVE_QUEUE}}}\n{netpol.EVALUATE}}}\n")
    with pytest.raises(builds.BuildError, match="native queue expression twice"):
        netpol._patch(tmp_path)
    (pkg / "controller.go").write_text(f"func a() {{\n{netpol.NATIVE_QUEUE}}}\nfunc b() {{\n{netpol.NATIVE_QUEUE}}}\n")
    with pytest.raises(builds.BuildError, match="evaluatePacket once"):
        netpol._patch(tmp_path)


def test_the_agent_is_built_once_from_a_patched_copy_of_the_module(monkeypatch, tmp_path):
    """builds.patched_go_binary: the module copied writable, the patch applied, `go build` there, cached by
    version and patch (the path the hook always used)."""
    module = tmp_path / "modcache" / "kube-network-policies"
    (module / "cmd").mkdir(parents=True)
    (module / "cmd" / "main.go").write_text("package main\n")
    (module / "cmd" / "main.go").chmod(0o444)
    monkeypatch.setenv("APPLIANCE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(builds, "module_dir", lambda m, v: module)
    ran = []

    def go_build(cmd, cwd, env, log):
        ran.append((cmd, (Path(cwd) / "cmd" / "main.go").read_text(), env["CGO_ENABLED"], log))
        Path(cmd[cmd.index("-o") + 1]).write_text("agent")
        return ""

    monkeypatch.setattr(builds, "_run", go_build)
    monkeypatch.setattr(netpol, "_patch", lambda src: (src / "cmd" / "main.go").write_text("package main // patched\n"))
    go = SimpleNamespace(module="sigs.k8s.io/kube-network-policies", version="v0.9.0", package="cmd")
    binary = netpol._binary(go)
    assert binary.read_text() == "agent" and binary.name == "netpol"
    assert binary.parent.name.startswith("v0.9.0-") and binary.parent.parent.name == "sigs.k8s.io_kube-network-policies"
    (cmd, source, cgo, log), = ran
    assert cmd[-1] == "./cmd" and source == "package main // patched\n" and cgo == "0" and log == binary.parent / "netpol.build.log"
    assert netpol._binary(go) == binary and len(ran) == 1  # cached
    assert [p.name for p in binary.parent.iterdir()] == ["netpol"]  # the writable copy is gone


def test_the_agent_judges_every_pod_range_of_the_cluster(monkeypatch):
    import kubernetes.client

    nodes = [SimpleNamespace(spec=SimpleNamespace(pod_cid_rs=["10.244.1.0/24"], pod_cidr="10.244.1.0/24")),
             SimpleNamespace(spec=SimpleNamespace(pod_cid_rs=None, pod_cidr="10.244.0.0/24")),
             SimpleNamespace(spec=SimpleNamespace(pod_cid_rs=None, pod_cidr=None))]
    monkeypatch.setattr(kubernetes.client, "CoreV1Api", lambda api: SimpleNamespace(list_node=lambda: SimpleNamespace(items=nodes)))
    (ds,) = by_kind(CATALOG["network-policy"]().objects(SimpleNamespace(api=None, internal_ips=lambda: [])))["DaemonSet"]
    assert "--pod-cidrs=10.244.0.0/24,10.244.1.0/24" in ds["spec"]["template"]["spec"]["containers"][0]["args"]
    (bare,) = by_kind(CATALOG["network-policy"]().objects())["DaemonSet"]
    assert not [a for a in bare["spec"]["template"]["spec"]["containers"][0]["args"] if a.startswith("--pod-cidrs")]


# ----------------------------------------------------------------------------- user namespaces


def _cluster(monkeypatch, *nodes):
    """A kube whose nodes have these (type, address) lists."""
    import kubernetes.client

    from appliance.kube import Kube

    items = [SimpleNamespace(status=SimpleNamespace(addresses=[SimpleNamespace(type=t, address=a) for t, a in n])) for n in nodes]
    monkeypatch.setattr(kubernetes.client, "CoreV1Api", lambda api: SimpleNamespace(list_node=lambda: SimpleNamespace(items=items)))
    kube = Kube.__new__(Kube)
    kube.api = None
    kube.list_labelled = lambda *a: []  # no user has left
    api = {"Service": {"spec": {"clusterIP": "10.96.0.1", "ports": [{"port": 443}]}},
           "Endpoints": {"subsets": [{"addresses": [{"ip": "172.18.0.2"}], "ports": [{"port": 6443}]}]}}
    kube.get = lambda version, kind, name, ns=None: SimpleNamespace(to_dict=lambda: api[kind])
    return kube


def user_objects(kube=None) -> dict[str, list[dict]]:
    return by_kind(CATALOG["user-profiles"]({"users": ["alice", "bob"]}).objects(kube))


def test_user_namespaces_enforce_pod_security_baseline():
    for ns in user_objects()["Namespace"]:
        labels = ns["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
        assert labels["pod-security.kubernetes.io/warn"] == labels["pod-security.kubernetes.io/audit"] == "restricted"


def test_each_user_namespace_admits_itself_the_platform_and_the_nodes_only(monkeypatch):
    kube = _cluster(monkeypatch, [("InternalIP", "172.18.0.2")], [("InternalIP", "fc00:f853:ccd:e793::3")])
    pols = [p for p in user_objects(kube)["NetworkPolicy"] if p["metadata"]["name"] == "default-ingress"]
    assert sorted(p["metadata"]["namespace"] for p in pols) == ["user-alice", "user-bob"]
    for p in pols:
        spec = p["spec"]
        assert spec["podSelector"] == {} and spec["policyTypes"] == ["Ingress"]  # every pod (egress: default-egress)
        (rule,) = spec["ingress"]
        assert "ports" not in rule
        own, platform, *blocks = rule["from"]
        assert own == {"podSelector": {}}  # no namespaceSelector: this namespace only
        (expr,) = platform["namespaceSelector"]["matchExpressions"]
        assert (expr["key"], expr["operator"]) == ("kubernetes.io/metadata.name", "In")
        assert set(expr["values"]) == {"appliance-system", "kubeflow", "kserve", "katib", "monitoring", "kube-system"}  # katib: the controller calls suggestion pods; monitoring: Prometheus scrapes
        assert not any(v.startswith("user-") for v in expr["values"])
        assert blocks == [{"ipBlock": {"cidr": "172.18.0.2/32"}}, {"ipBlock": {"cidr": "fc00:f853:ccd:e793::3/128"}}]


def test_the_policy_admits_the_cluster_nodes_internal_addresses_only(monkeypatch):
    kube = _cluster(monkeypatch, [("InternalIP", "172.18.0.3"), ("Hostname", "cp")], [("InternalIP", "172.18.0.2"), ("ExternalIP", "203.0.113.9")])
    (pol, _egress) = by_kind(CATALOG["user-profiles"]({"users": ["alice"]}).objects(kube))["NetworkPolicy"]
    assert [p["ipBlock"]["cidr"] for p in pol["spec"]["ingress"][0]["from"] if "ipBlock" in p] == ["172.18.0.2/32", "172.18.0.3/32"]


# ----------------------------------------------------------------------------- profiles, simulator, scenario


@pytest.mark.parametrize("name", ["laptop", "ci", "dgx"])
def test_profiles_enforce_policies_where_nodes_have_a_data_plane(name):
    assert profiles.load(name).profile.components["network-policy"].enabled


def test_simulator_keeps_policies_as_objects_and_says_so(monkeypatch, tmp_path):
    laptop = profiles.load("laptop", [], "sim").profile
    assert not laptop.components["network-policy"].enabled
    p = sim.SimProvider(laptop.cluster, tmp_path)
    monkeypatch.setattr(p.record, "load", lambda: {"procs": {}, "ports": {"kube-apiserver": 1}})
    assert "objects only" in p.status()["network_policy"]


def test_isolation_scenario_probes_from_both_sides():
    sc = scenario.load(ROOT / "e2e" / "scenarios" / "network-isolation.yaml")
    assert sc.providers == ["kind"] and "network-policy" in sc.components
    jobs = {o["metadata"]["namespace"]: (s.apply.as_, o["spec"]["template"]["spec"]["containers"][0]["args"])
            for s in sc.steps if s.kind == "apply" for o in s.apply.objects if o["kind"] == "Job"}
    assert jobs == {"user-bob": ("user-bob/bob", ["blocked"]), "user-alice": ("user-alice/alice", ["reach"]),
                    "appliance-system": ("", ["reach"])}


@pytest.mark.parametrize("name,pod_label", [("training-operator", {"app.kubernetes.io/name": "training-operator"}),
                                            ("kserve", {"control-plane": "kserve-controller-manager"})])
def test_controllers_admit_only_the_api_server_on_their_webhook_port(monkeypatch, name, pod_label):
    kube = _cluster(monkeypatch, [("InternalIP", "172.18.0.2")], [("InternalIP", "172.18.0.3")])
    comp = CATALOG[name]()
    kube.get = lambda *a, **k: None  # no Secret yet: kserve makes its certificate
    (pol,) = by_kind(comp.objects(kube, crds=False))["NetworkPolicy"]
    (rule,) = pol["spec"]["ingress"]
    assert pol["spec"]["podSelector"] == {"matchLabels": pod_label} and pol["spec"]["policyTypes"] == ["Ingress"]
    assert rule == {"from": [{"ipBlock": {"cidr": "172.18.0.2/32"}}, {"ipBlock": {"cidr": "172.18.0.3/32"}}], "ports": [{"port": 9443}]}
    (closed,) = by_kind(comp.objects(crds=False))["NetworkPolicy"]
    assert closed["spec"]["ingress"] == []  # rendered without a cluster: nothing may connect, never "from anywhere"
