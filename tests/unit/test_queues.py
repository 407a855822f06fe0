"""queues component (Kueue) without a cluster: the declaration, the queue objects per user from user-profiles'
users and quotas, one flavor per GPU product, the Configuration, the webhooks and the RBAC."""

import json
from types import SimpleNamespace

import pytest
import yaml

from appliance import components, profiles
from appliance.components import CATALOG
from appliance.errors import ProfileError
from appliance.runtime import Runtime

H100, A100 = "NVIDIA-H100-80GB-HBM3", "NVIDIA-A100-SXM4-80GB"


def node(product, gpus=8, taints=()):
    return {"metadata": {"name": f"n-{product}", "labels": {"nvidia.com/gpu.product": product}},
            "status": {"allocatable": {"nvidia.com/gpu": str(gpus)}},
            "spec": {"taints": [{"key": k, "value": "present", "effect": "NoSchedule"} for k in taints]}}


def cluster(*nodes):
    """A stand-in for the cluster the hooks read: these GPU nodes, no Secrets."""
    return SimpleNamespace(list_labelled=lambda v, kind, sel: list(nodes) if kind == "Node" else [],
                           get=lambda *a, **k: None, internal_ips=lambda: ["172.18.0.2"])


def queues(users=("alice", "bob"), profile=None, runtime=None, **options):
    """The component as `components.enabled` makes it: given user-profiles' offers."""
    comp = CATALOG["queues"](options, runtime or Runtime(pods_run=True))
    comp.given = CATALOG["user-profiles"]({"users": list(users), **(profile or {})}).offers()
    return comp


def find(objs, kind, name=None, ns=None):
    return [o for o in objs if o["kind"] == kind and name in (None, o["metadata"]["name"]) and ns in (None, o["metadata"].get("namespace"))]


DGX = {"gpu_quota": 16, "gpu_ceiling": 32, "cpu_quota": "448", "cpu_ceiling": "896", "memory_quota": "4Ti", "memory_ceiling": "8Ti"}


def test_declared_and_in_the_dgx_profiles():
    c = CATALOG["queues"]()
    assert {"user-profiles", "training-operator"} <= set(c.depends)
    assert c.decl.images["kueue"].go.module == "sigs.k8s.io/kueue" and c.decl.images["kueue"].go.version == "v0.18.2"
    assert c.decl.crds.paths == ["apis/kueue/v1beta2"] and "generateEmbeddedObjectMeta=true" in c.decl.crds.options
    assert c.decl.host[0].private_paths == ["/etc/kueue/metrics/certs"]
    comps = components.enabled(profiles.load("sim-dgx-pod", [], "sim").profile)
    assert comps["queues"].given["users"] == ["alice", "bob"] and comps["queues"].given["ceiling"]["gpu"] == 32


def test_each_user_gets_a_cluster_queue_in_one_cohort_and_a_default_local_queue():
    objs = queues(profile=DGX, weights=["bob=2"]).objects(cluster(node(H100), node(H100)), crds=False)
    for user, weight in (("alice", "1"), ("bob", "2")):
        (cq,) = find(objs, "ClusterQueue", f"user-{user}")
        spec = cq["spec"]
        assert spec["cohortName"] == "users" and spec["fairSharing"] == {"weight": weight}
        assert spec["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": f"user-{user}"}}
        assert spec["preemption"]["reclaimWithinCohort"] == "Any"
        cpu, gpu = spec["resourceGroups"]
        assert cpu["coveredResources"] == ["cpu", "memory"] and cpu["flavors"][0]["name"] == "default"
        assert cpu["flavors"][0]["resources"] == [{"name": "cpu", "nominalQuota": "448", "borrowingLimit": "448000m"},
                                                  {"name": "memory", "nominalQuota": "4Ti", "borrowingLimit": "4194304Mi"}]
        assert gpu["flavors"] == [{"name": "gpu-nvidia-h100-80gb-hbm3",
                                   "resources": [{"name": "nvidia.com/gpu", "nominalQuota": 16, "borrowingLimit": 16}]}]
        (lq,) = find(objs, "LocalQueue", "default", f"user-{user}")
        assert lq["spec"] == {"clusterQueue": f"user-{user}"}
    assert len(find(objs, "ClusterQueue")) == len(find(objs, "LocalQueue")) == 2


def test_gpus_of_no_users_quota_are_the_cohorts_lent_by_weight():
    """32 H100s, three users with 8 each: the other 8 are the cohort's; none left over, no Cohort object."""
    three = ("alice", "bob", "carol")
    objs = queues(users=three, profile={"gpu_quota": 8, "gpu_ceiling": 32}, weights=["carol=2"]).objects(
        cluster(*[node(H100) for _ in range(4)]), crds=False)
    (co,) = find(objs, "Cohort", "users")
    assert co["spec"]["resourceGroups"] == [{"coveredResources": ["nvidia.com/gpu"], "flavors": [
        {"name": "gpu-nvidia-h100-80gb-hbm3", "resources": [{"name": "nvidia.com/gpu", "nominalQuota": 8}]}]}]
    assert [find(objs, "ClusterQueue", f"user-{u}")[0]["spec"]["fairSharing"]["weight"] for u in three] == ["1", "1", "2"]
    assert not find(queues(profile=DGX).objects(cluster(node(H100), node(H100), node(H100), node(H100)), crds=False), "Cohort")
    assert not find(queues().objects(cluster(node(H100)), crds=False), "Cohort")  # no GPU quota: each user's quota is every GPU


def test_mig_instances_are_accounted_beside_whole_gpus_in_their_products_flavor():
    """Two whole H100 nodes and one cut into MIG instances (mixed): 24 GPUs. alice and bob have 6 (a ceiling of
    12): a quarter (half) of each MIG profile's instances; what no user holds is the cohort's."""
    mig = {"metadata": {"name": "n-mig", "labels": {"nvidia.com/gpu.product": H100, "nvidia.com/gpu.count": "8"}},
           "status": {"allocatable": {"nvidia.com/gpu": "0", "nvidia.com/mig-1g.10gb": "16", "nvidia.com/mig-3g.40gb": "8"}}, "spec": {}}
    objs = queues(profile={"gpu_quota": 6, "gpu_ceiling": 12}).objects(cluster(node(H100), node(H100), mig), crds=False)
    (gpu,) = [g for g in find(objs, "ClusterQueue", "user-alice")[0]["spec"]["resourceGroups"] if "nvidia.com/gpu" in g["coveredResources"]]
    assert gpu["coveredResources"] == ["nvidia.com/gpu", "nvidia.com/mig-1g.10gb", "nvidia.com/mig-3g.40gb"]
    assert gpu["flavors"] == [{"name": "gpu-nvidia-h100-80gb-hbm3", "resources": [
        {"name": "nvidia.com/gpu", "nominalQuota": 6, "borrowingLimit": 6},
        {"name": "nvidia.com/mig-1g.10gb", "nominalQuota": 4, "borrowingLimit": 4},
        {"name": "nvidia.com/mig-3g.40gb", "nominalQuota": 2, "borrowingLimit": 2}]}]
    (co,) = find(objs, "Cohort", "users")
    assert [r["nominalQuota"] for r in co["spec"]["resourceGroups"][0]["flavors"][0]["resources"]] == [4, 8, 4]
    only = queues().objects(cluster(mig), crds=False)  # no GPU quota, no whole GPU: every instance, no borrowing
    assert find(only, "ClusterQueue", "user-bob")[0]["spec"]["resourceGroups"][1]["flavors"][0]["resources"][1] == {
        "name": "nvidia.com/mig-1g.10gb", "nominalQuota": 16, "borrowingLimit": 0}


def test_without_ceilings_users_borrow_nothing_and_jobs_over_quota_wait():
    objs = queues(profile={"gpu_quota": 4}).objects(cluster(node(H100)), crds=False)
    cq = find(objs, "ClusterQueue", "user-alice")[0]["spec"]
    assert cq["resourceGroups"][1]["flavors"][0]["resources"] == [{"name": "nvidia.com/gpu", "nominalQuota": 4, "borrowingLimit": 0}]
    assert cq["resourceGroups"][0]["flavors"][0]["resources"][0]["borrowingLimit"] == "0m"


def test_one_flavor_per_gpu_product_with_its_nodes_taints_and_the_quota_split_by_share():
    objs = queues(profile={"gpu_quota": 12, "gpu_ceiling": 24}).objects(
        cluster(node(H100, 8, ["nvidia.com/gpu"]), node(H100, 8, ["nvidia.com/gpu"]), node(A100, 8)), crds=False)
    flavors = {f["metadata"]["name"]: f.get("spec") for f in find(objs, "ResourceFlavor")}
    assert flavors == {"default": None,
                       "gpu-nvidia-a100-sxm4-80gb": {"nodeLabels": {"nvidia.com/gpu.product": A100}},
                       "gpu-nvidia-h100-80gb-hbm3": {"nodeLabels": {"nvidia.com/gpu.product": H100},
                                                     "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]}}
    gpu = find(objs, "ClusterQueue", "user-alice")[0]["spec"]["resourceGroups"][1]["flavors"]
    assert [(f["name"], f["resources"][0]["nominalQuota"], f["resources"][0]["borrowingLimit"]) for f in gpu] == [
        ("gpu-nvidia-a100-sxm4-80gb", 4, 4), ("gpu-nvidia-h100-80gb-hbm3", 8, 8)]


def test_without_a_gpu_quota_each_user_may_use_every_gpu_of_a_product_and_without_nodes_no_gpu_group():
    objs = queues().objects(cluster(node(H100, 8), node(H100, 8)), crds=False)
    gpu = find(objs, "ClusterQueue", "user-bob")[0]["spec"]["resourceGroups"][1]["flavors"][0]["resources"]
    assert gpu == [{"name": "nvidia.com/gpu", "nominalQuota": 16, "borrowingLimit": 0}]
    bare = queues().objects(crds=False)
    assert [f["metadata"]["name"] for f in find(bare, "ResourceFlavor")] == ["default"]
    assert len(find(bare, "ClusterQueue", "user-bob")[0]["spec"]["resourceGroups"]) == 1


def test_the_queue_objects_and_webhooks_wait_for_kueue():
    now, late, _ = (c := queues(profile=DGX))._split(c.objects(cluster(node(H100)), crds=False))
    assert {o["kind"] for o in late} == {"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "ResourceFlavor", "ClusterQueue", "LocalQueue"}
    assert not {o["kind"] for o in now} & {"ClusterQueue", "LocalQueue"}


def _config(objs) -> dict:
    (cm,) = find(objs, "ConfigMap", "kueue-manager-config")
    return yaml.safe_load(cm["data"]["controller_manager_config.yaml"])


def test_the_configuration_queues_jobs_of_user_namespaces_with_its_own_certificates_off():
    objs = queues(namespace="kq").objects(crds=False)
    cfg = _config(objs)
    assert cfg["apiVersion"] == "config.kueue.x-k8s.io/v1beta2" and cfg["namespace"] == "kq"
    assert cfg["integrations"]["frameworks"] == ["batch/job", "kubeflow.org/pytorchjob", "kubeflow.org/tfjob", "pod"]
    assert cfg["internalCertManagement"] == {"enable": False} and cfg["leaderElection"] == {"leaderElect": False}
    assert cfg["webhook"]["certDir"] == "/etc/kueue/metrics/certs" and cfg["metrics"] == {"bindAddress": "0"}
    assert cfg["managedJobsNamespaceSelector"]["matchExpressions"][0] == {"key": "appliance.dev/owner", "operator": "Exists"}
    assert not cfg["manageJobsWithoutQueueName"] and "fairSharing" in cfg
    assert all(v is False for v in cfg["featureGates"].values())
    (dep,) = find(objs, "Deployment")
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "cert", "mountPath": "/etc/kueue/metrics/certs", "readOnly": True} in c["volumeMounts"]
    other = queues(namespace="kq2").objects(crds=False)
    assert find(other, "Deployment")[0]["spec"]["template"]["metadata"]["annotations"] != dep["spec"]["template"]["metadata"]["annotations"]


def test_on_the_host_webhooks_call_loopback_and_listen_there():
    c = queues(runtime=Runtime(pods_run=False))
    objs = c.objects(crds=False)
    assert c.on_host and not find(objs, "Service")
    cfg = _config(objs)
    assert cfg["webhook"]["host"] == "127.0.0.1" and cfg["health"]["healthProbeBindAddress"].startswith("127.0.0.1:")
    hooks = [h for o in objs if o["kind"].endswith("WebhookConfiguration") for h in o["webhooks"]]
    assert len(hooks) == 15 and all(h["clientConfig"]["url"].startswith("https://127.0.0.1:9443/") for h in hooks)
    jobs = [h for h in hooks if h["rules"][0]["apiGroups"] != ["kueue.x-k8s.io"]]
    assert len(jobs) == 8 and all(h["namespaceSelector"]["matchExpressions"][0]["key"] == "appliance.dev/owner" for h in jobs)
    pods = [h for h in jobs if h["rules"][0]["resources"] == ["pods"]]  # only pods that name a queue reach Kueue
    assert [h["name"] for h in pods] == ["mpod.kb.io", "vpod.kb.io"]
    assert all(h["objectSelector"] == {"matchExpressions": [{"key": "kueue.x-k8s.io/queue-name", "operator": "Exists"}]} for h in pods)
    assert not any("objectSelector" in h for h in hooks if h not in pods)


def test_rbac_writes_no_queue_object_kind_for_users_and_no_secret_or_pod_write_for_kueue_outside_user_namespaces():
    objs = queues().objects(crds=False)
    (role,) = find(objs, "ClusterRole", "kueue-controller-manager")
    rules = {(g, r): set(rule["verbs"]) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert ("", "secrets") not in rules and rules[("", "pods")] == {"get", "list", "watch"}
    assert "create" not in rules[("batch", "jobs")] and "create" not in rules[("kueue.x-k8s.io", "clusterqueues")]
    assert not any(g == "admissionregistration.k8s.io" or g == "apiextensions.k8s.io" for g, _ in rules)
    pods = {(b["metadata"]["namespace"], b["roleRef"]["name"]) for b in find(objs, "RoleBinding")}
    assert pods == {("user-alice", "kueue-user-pods"), ("user-bob", "kueue-user-pods")}
    assert not [b for b in find(objs, "ClusterRoleBinding") if b["roleRef"]["name"] == "kueue-user-pods"]
    (users,) = find(objs, "ClusterRole", "queues-user-read")
    assert users["rules"] == [{"apiGroups": ["kueue.x-k8s.io"], "resources": ["localqueues", "localqueues/status", "workloads", "workloads/status"],
                               "verbs": ["get", "list", "watch"]}]


@pytest.mark.parametrize(("options", "text"), [({"weights": ["bob=1", "bob=2"]}, "weight of bob given twice")])
def test_bad_options_are_one_line(options, text):
    with pytest.raises(ProfileError, match=text):
        CATALOG["queues"].check_options(CATALOG["queues"](options).options)


def test_a_ceiling_below_its_quota_is_refused():
    up = CATALOG["user-profiles"]
    with pytest.raises(ProfileError, match="gpu_ceiling 8 is below gpu_quota 16"):
        up.check_options(up({"gpu_quota": 16, "gpu_ceiling": 8}).options)
    with pytest.raises(ProfileError, match="memory_ceiling 1Ti is below memory_quota 4Ti"):
        up.check_options(up({"memory_quota": "4Ti", "memory_ceiling": "1Ti"}).options)


def test_status_answers_how_much_who_borrows_and_why_a_job_waits():
    cq = {"metadata": {"name": "user-alice"},
          "spec": {"resourceGroups": [{"coveredResources": ["cpu"], "flavors": [{"name": "default", "resources": [{"name": "cpu", "nominalQuota": "4"}]}]},
                                      {"coveredResources": ["nvidia.com/gpu"], "flavors": [
                                          {"name": "gpu-x", "resources": [{"name": "nvidia.com/gpu", "nominalQuota": 16, "borrowingLimit": 16}]}]}]},
          "status": {"pendingWorkloads": 1, "admittedWorkloads": 2, "flavorsUsage": [
              {"name": "gpu-x", "resources": [{"name": "nvidia.com/gpu", "total": "24", "borrowed": "8"}]}]}}
    waiting = {"metadata": {"name": "job-big-1a2b3", "namespace": "user-alice", "ownerReferences": [{"kind": "Job", "name": "big"}]},
               "status": {"conditions": [{"type": "QuotaReserved", "status": "False", "message": "insufficient unused quota for nvidia.com/gpu"}]}}
    running = {"metadata": {"name": "job-small-4c5d6", "namespace": "user-alice"},
               "status": {"conditions": [{"type": "QuotaReserved", "status": "True"}, {"type": "Admitted", "status": "True"}]}}
    done = {"metadata": {"name": "job-old", "namespace": "user-bob"}, "status": {"conditions": [{"type": "Finished", "status": "True"}]}}
    fresh = {"metadata": {"name": "job-new", "namespace": "user-bob"}}
    cq["spec"]["fairSharing"] = {"weight": "2"}
    cohort = {"metadata": {"name": "users"}, "spec": {"resourceGroups": [{"flavors": [
        {"name": "gpu-x", "resources": [{"name": "nvidia.com/gpu", "nominalQuota": 8}]}, {"name": "gpu-y", "resources": [{"name": "nvidia.com/gpu", "nominalQuota": 4}, {"name": "nvidia.com/mig-1g.10gb", "nominalQuota": 3}]}]}]}}
    objs = {"ClusterQueue": [cq], "Workload": [waiting, running, done, fresh], "Cohort": [cohort]}
    kube = SimpleNamespace(list_labelled=lambda v, kind, sel: objs.get(kind, []))
    assert CATALOG["queues"]().notes(kube) == [
        "cohort users: 12 GPUs and 3 MIG instances in no user's quota, lent by fair-sharing weight (user-alice 2)",
        "user-alice: 24 GPUs in use (8 borrowed) of a quota of 16 (+16 borrowable); 1 pending, 2 admitted",
        "waiting: user-alice/big (Job): insufficient unused quota for nvidia.com/gpu",
        "waiting: user-bob/job-new (Workload): not yet considered by Kueue"]
    assert json.dumps(CATALOG["queues"]().notes(SimpleNamespace(list_labelled=lambda *a: []))) == '["no queues"]'
