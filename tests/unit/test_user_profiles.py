"""Tenant isolation (issue 22) without a cluster: what user-profiles renders per user (quota, limits, egress,
admission policies), users who left, user names, the platform priority and the API servers' admission plugins."""

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from appliance import profiles
from appliance.components import CATALOG
from appliance.components.kit import PLATFORM_PRIORITY
from appliance.errors import ProfileError
from appliance.providers.base import ADMISSION_PLUGINS
from appliance.providers.kind.config import kind_config
from appliance.providers.sim.processes import PORT_KEYS, ControlPlane
from appliance.providers.sim.sizing import Sizing

ROOT = Path(__file__).resolve().parents[2]


def kube(owners=(), api_ips=("172.18.0.2",)):
    """A stand-in for the cluster the hooks read: user namespaces with these owners, the API server's
    Service and endpoints."""
    found = {"Service": {"spec": {"clusterIP": "10.96.0.1", "ports": [{"port": 443}]}},
             "Endpoints": {"subsets": [{"addresses": [{"ip": ip} for ip in api_ips], "ports": [{"port": 6443}]}]}}
    return SimpleNamespace(
        list_labelled=lambda v, kind, sel: [{"metadata": {"name": f"user-{o}", "labels": {"appliance.dev/owner": o}}} for o in owners],
        get=lambda v, kind, name, ns=None: SimpleNamespace(to_dict=lambda: found[kind]),
        internal_ips=lambda: ["172.18.0.2", "172.18.0.3"])


def objects(options=None, cluster=None) -> list[dict]:
    return CATALOG["user-profiles"](options or {"users": ["alice", "bob"]}).objects(cluster)


def named(objs, kind, name, ns):
    (o,) = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name and o["metadata"].get("namespace") == ns]
    return o


def test_the_components_that_depend_on_it_get_its_users():
    """One definition of the users: the profile's list, offered to notebooks and pipelines (their per-user
    objects), not read back from the cluster; a component that does not depend on user-profiles gets none."""
    from appliance import components

    comps = components.enabled(profiles.load("laptop", ["components.user-profiles.options.users=[carol, alice]"], "kind").profile)
    assert comps["notebooks"].given == comps["pipelines"].given
    assert comps["notebooks"].given["users"] == ["carol", "alice"]
    assert comps["notebooks"].given["quota"] == comps["notebooks"].given["ceiling"] == {"gpu": None, "cpu": "8", "memory": "32Gi"}
    assert comps["tuning"].given == {} and comps["user-profiles"].given == {}
    for name in ("notebooks", "pipelines"):
        spaces = {o["metadata"].get("namespace") for o in comps[name].objects(crds=False)}
        assert {s for s in spaces if s and s.startswith("user-")} == {"user-alice", "user-carol"}


def test_each_user_gets_a_quota_and_default_requests():
    objs = objects({"users": ["alice"], "gpu_quota": 16, "cpu_quota": "64", "memory_quota": "512Gi"})
    hard = named(objs, "ResourceQuota", "user-quota", "user-alice")["spec"]["hard"]
    assert hard == {"requests.cpu": "64", "requests.memory": "512Gi", "requests.storage": "100Gi", "pods": "100",
                    "persistentvolumeclaims": "20", "services": "50", "configmaps": "200", "secrets": "200",
                    "requests.nvidia.com/gpu": "16"}
    (lim,) = named(objs, "LimitRange", "user-limits", "user-alice")["spec"]["limits"]
    assert lim == {"type": "Container", "defaultRequest": {"cpu": "100m", "memory": "256Mi"}, "max": {"cpu": "64", "memory": "512Gi"}}
    assert "requests.nvidia.com/gpu" not in named(objects({"users": ["alice"]}), "ResourceQuota", "user-quota", "user-alice")["spec"]["hard"]


def test_the_ceilings_raise_the_resource_quota_not_the_limit_range():
    """What queues lets a user borrow up to: the ResourceQuota holds the ceilings, one container still at most the quota."""
    objs = objects({"users": ["alice"], "gpu_quota": 16, "gpu_ceiling": 32, "cpu_quota": "64", "cpu_ceiling": "128",
                    "memory_quota": "512Gi", "memory_ceiling": "1Ti"})
    hard = named(objs, "ResourceQuota", "user-quota", "user-alice")["spec"]["hard"]
    assert (hard["requests.nvidia.com/gpu"], hard["requests.cpu"], hard["requests.memory"]) == ("32", "128", "1Ti")
    (lim,) = named(objs, "LimitRange", "user-limits", "user-alice")["spec"]["limits"]
    assert lim["max"] == {"cpu": "64", "memory": "512Gi"}


def test_the_quota_bounds_mig_instances_at_the_share_the_gpu_ceiling_is_of_all_gpus():
    """A tenant cannot take every MIG instance (queues or not): 32 whole H100s and one cut all-balanced (8 GPUs)
    make 40; a ceiling of 32 GPUs is 4/5 of each profile's instances. No GPU quota: nothing bounded."""
    def gpu_node(alloc, count):
        return {"metadata": {"name": "n", "labels": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.count": str(count)}},
                "status": {"allocatable": alloc}, "spec": {}}
    nodes = [gpu_node({"nvidia.com/gpu": "8"}, 8) for _ in range(4)]
    nodes.append(gpu_node({"nvidia.com/gpu": "0", "nvidia.com/mig-1g.10gb": "16", "nvidia.com/mig-2g.20gb": "8", "nvidia.com/mig-3g.40gb": "8"}, 8))
    cluster = kube()
    cluster.list_labelled = lambda v, kind, sel: nodes if kind == "Node" else []
    objs = objects({"users": ["alice"], "gpu_quota": 16, "gpu_ceiling": 32}, cluster)
    hard = named(objs, "ResourceQuota", "user-quota", "user-alice")["spec"]["hard"]
    assert {k: v for k, v in hard.items() if "nvidia.com" in k} == {
        "requests.nvidia.com/gpu": "32", "requests.nvidia.com/mig-1g.10gb": "12", "requests.nvidia.com/mig-2g.20gb": "6",
        "requests.nvidia.com/mig-3g.40gb": "6"}
    bare = named(objects({"users": ["alice"]}, cluster), "ResourceQuota", "user-quota", "user-alice")["spec"]["hard"]
    assert not [k for k in bare if "nvidia.com" in k]


def test_egress_reaches_the_namespace_dns_api_server_and_tenant_facing_platform_pods_only():
    pol = named(objects(cluster=kube()), "NetworkPolicy", "default-egress", "user-alice")["spec"]
    assert pol["podSelector"] == {} and pol["policyTypes"] == ["Egress"]
    own, dns, platform, service, endpoints = pol["egress"]
    assert own == {"to": [{"podSelector": {}}]}
    assert dns["ports"] == [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]
    assert dns["to"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                          "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}]
    assert platform == {"to": [{"namespaceSelector": {"matchExpressions": [{"key": "appliance.dev/owner", "operator": "DoesNotExist"}]},
                                "podSelector": {"matchLabels": {"appliance.dev/serves-tenants": "true"}}}]}
    assert service == {"to": [{"ipBlock": {"cidr": "10.96.0.1/32"}}], "ports": [{"port": 443, "protocol": "TCP"}]}
    assert endpoints == {"to": [{"ipBlock": {"cidr": "172.18.0.2/32"}}], "ports": [{"port": 6443, "protocol": "TCP"}]}
    opened = named(objects({"users": ["alice"], "egress_cidrs": ["192.0.2.10/32"]}, kube()), "NetworkPolicy", "default-egress", "user-alice")
    assert opened["spec"]["egress"][-1] == {"to": [{"ipBlock": {"cidr": "192.0.2.10/32"}}]}


def test_the_platform_pods_tenants_reach_are_labelled():
    """The pods the default egress lets users reach: the artifact store, Katib's db-manager, the hub."""
    seen = set()
    for name in ("pipelines", "tuning", "notebooks"):
        for o in CATALOG[name]().objects(crds=False):
            if o["kind"] in ("Deployment", "StatefulSet") and o["spec"]["template"]["metadata"]["labels"].get("appliance.dev/serves-tenants") == "true":
                seen.add(o["metadata"]["name"])
    assert seen == {"artifact-store", "katib-db-manager", "hub"}


def test_policies_bind_to_user_namespaces_and_name_the_user_priority_classes():
    objs = objects()
    pols = {o["metadata"]["name"]: o for o in objs if o["kind"] == "ValidatingAdmissionPolicy"}
    assert set(pols) == {"appliance-user-service-exposure", "appliance-user-priority", "appliance-user-networkpolicies"}
    bindings = {o["spec"]["policyName"]: o["spec"]["validationActions"] for o in objs if o["kind"] == "ValidatingAdmissionPolicyBinding"}
    assert bindings == dict.fromkeys(pols, ["Deny"])
    for p in pols.values():
        assert p["spec"]["failurePolicy"] == "Fail"
        assert p["spec"]["matchConstraints"]["namespaceSelector"] == {"matchExpressions": [{"key": "appliance.dev/owner", "operator": "Exists"}]}
    classes = {o["metadata"]["name"]: o["value"] for o in CATALOG["platform-base"]().objects() if o["kind"] == "PriorityClass"}
    users = CATALOG["user-profiles"]().options.priority_classes
    assert set(users) < set(classes) and PLATFORM_PRIORITY in classes and PLATFORM_PRIORITY not in users
    assert all(classes[PLATFORM_PRIORITY] > classes[c] for c in users)
    assert "'appliance-batch'" not in pols["appliance-user-priority"]["spec"]["validations"][0]["expression"]  # a JSON list, quoted once
    net = pols["appliance-user-networkpolicies"]["spec"]["validations"][0]["expression"]
    assert "system:serviceaccount:user-" in net and '["alice", "bob"]' in net


def test_every_platform_workload_runs_at_the_platform_priority():
    for name, cls in CATALOG.items():
        for o in cls().objects(crds=False):
            if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
                got = o["spec"]["template"]["spec"]["priorityClassName"]
                assert got in (PLATFORM_PRIORITY, "system-node-critical"), (name, o["metadata"]["name"], got)


def test_a_user_who_left_keeps_a_closed_namespace_and_loses_their_identity():
    objs = objects({"users": ["alice"]}, kube(owners=["alice", "carol"]))
    assert not [o for o in objs if o["kind"] in ("ServiceAccount", "RoleBinding") and o["metadata"]["namespace"] == "user-carol"]
    ns = named(objs, "Namespace", "user-carol", None)
    assert ns["metadata"]["annotations"] == {"appliance.dev/keep-on-prune": "true"}
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    deny = named(objs, "NetworkPolicy", "departed-deny-all", "user-carol")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}  # no rule: nothing in or out
    assert named(objs, "ResourceQuota", "departed", "user-carol")["spec"]["hard"]["pods"] == "0"
    assert [o["metadata"]["name"] for o in objs if o["kind"] == "Namespace"] == ["user-alice", "user-carol"]


@pytest.mark.parametrize("name, what", [
    ("yes", "reads as a boolean or null in YAML"), ("off", "reads as a boolean or null in YAML"),
    ("null", "reads as a boolean or null in YAML"), ("ann--marie", "holds '--'"),
    ("123", "should match pattern"), ("-bob", "should match pattern"), ("Bob", "should match pattern"),
    ("a", "should match pattern"), ("x" * 41, "should match pattern")])
def test_user_names_yaml_would_misread_are_refused_in_one_line(name, what):
    with pytest.raises(ProfileError) as e:
        profiles.load("laptop", [f'components.user-profiles.options.users=["alice", "{name}"]'], "sim")
    line = e.value.line()
    assert what in line and "components.user-profiles.options.users.1" in line and "\n" not in line and e.value.code == 2


def test_a_user_listed_twice_is_refused():
    with pytest.raises(ProfileError) as e:
        profiles.load("laptop", ['components.user-profiles.options.users=["alice", "alice"]'], "sim")
    assert "listed twice" in e.value.line()


def test_unquoted_yaml_words_are_refused_before_any_template():
    with pytest.raises(ProfileError) as e:
        profiles.load("laptop", ["components.user-profiles.options.users=[alice, yes]"], "sim")
    assert "valid string" in e.value.line() and "True" in e.value.line()


def test_every_provider_denies_service_external_ips(tmp_path):
    assert "DenyServiceExternalIPs" in ADMISSION_PLUGINS
    cfg = kind_config(profiles.load("laptop", [], "kind").profile.cluster, "img")
    cluster, kubelet = (yaml.safe_load(p) for p in cfg["kubeadmConfigPatches"])
    assert cluster["apiServer"]["extraArgs"]["enable-admission-plugins"] == ",".join(ADMISSION_PLUGINS)
    assert kubelet == {"kind": "KubeletConfiguration", "seccompDefault": True}
    role = yaml.safe_load((ROOT / "playbooks/roles/kubernetes/defaults/main.yml").read_text())
    assert tuple(role["kubernetes_admission_plugins"]) == ADMISSION_PLUGINS
    template = (ROOT / "playbooks/roles/kubernetes/templates/kubeadm-config.yaml.j2").read_text()
    assert "enable-admission-plugins" in template and "seccompDefault: true" in template
    sim = profiles.load("laptop", [], "sim").profile.cluster
    plane = ControlPlane(sim, tmp_path, Sizing("small"), "c", "c", tmp_path / "kubeconfig")
    argv = plane.argv("kube-apiserver", {"kube-apiserver": Path("kube-apiserver")}, dict.fromkeys(PORT_KEYS, 1))
    assert "--enable-admission-plugins=NodeRestriction,DenyServiceExternalIPs" in argv
