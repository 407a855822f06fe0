"""queues on the simulator: Kueue built from its Go module runs as a supervised host process with its
webhooks on our certificate; alice's job over her quota waits with the reason and runs when her first ends,
she borrows bob's idle GPUs and he takes them back; bob cannot see or change her queue objects."""

import time

import pytest

from appliance import paths
from appliance.components import CATALOG
from appliance.kube import Kube
from appliance.runtime import Runtime, process
from tests.integration.clusters import MIG_NODE, cluster, rerun_keeps_the_process, scenario_passes, with_options

pytestmark = [pytest.mark.integration, pytest.mark.slow]
COMPONENTS = ("platform-base", "user-profiles", "training-operator", "queues")
NAME = "kueue-controller-manager"


def _component(profile):
    """The queues component of `profile` as `up` makes it (given user-profiles' users and quotas)."""
    comp = CATALOG["queues"](profile.components["queues"].options, Runtime(pods_run=False))
    comp.given = CATALOG["user-profiles"](profile.components["user-profiles"].options).offers()
    return comp


@pytest.fixture(scope="module")
def sim():
    with cluster("sim-dgx-pod", "sim", ["cluster.name=it-queues-sim", "cluster.sim.pod_run_seconds=3"], COMPONENTS, (MIG_NODE,)) as up:
        yield up


def test_up_runs_kueue_as_a_host_process_with_the_queues_of_each_user(sim):
    profile, result = sim
    assert not result["failed"] and "queues" in result["ran"]
    kube = Kube(result["kubeconfig"])
    comp = _component(profile)
    assert comp.ready(kube) == (True, "")
    host = process.HostProcess(process.controllers_dir(result["kubeconfig"]), NAME)
    assert host.folder == paths.state_dir(profile.cluster.name) / "controllers" and host.alive()
    flavors = {f["metadata"]["name"] for f in kube.list_labelled("kueue.x-k8s.io/v1beta2", "ResourceFlavor", "appliance.dev/component=queues")}
    assert flavors == {"default", "gpu-nvidia-h100-80gb-hbm3"}
    # the MIG node's instances: a share of them each (6 of 16 1g.10gb, a ceiling of 12), the rest the cohort's
    assert comp.notes(kube)[0].startswith("cohort users: 0 GPUs and 8 MIG instances in no user's quota") and len(comp.notes(kube)) == 3


def test_queues_scenario_passes(sim, tmp_path):
    _, result = sim
    start = time.monotonic()
    scenario_passes(result, "sim", COMPONENTS, "queues-sim", tmp_path)
    print(f"queues-sim: {time.monotonic() - start:.0f}s")


def test_the_training_scenario_passes_with_queues_on(sim, tmp_path):
    """The PyTorchJob is queued (suspended, then admitted) before the operator makes its pods."""
    _, result = sim
    scenario_passes(result, "sim", COMPONENTS, "pytorchjob-gpu", tmp_path)


def test_status_says_how_much_who_borrows_and_why_a_job_waits(sim):
    """The three questions of README's "Sharing GPUs", answered by `appliance status`: alice runs 32 GPUs (16
    borrowed from bob's idle quota) and her next job waits, with Kueue's reason."""
    from kubernetes import client

    from appliance import orchestrator, report

    profile, result = sim
    kube = Kube(result["kubeconfig"])
    batch = client.BatchV1Api(kube.api)

    def job(name: str, gpus: int) -> dict:
        pod = {"metadata": {"annotations": {"appliance.dev/sim-keep-running": "true"}},
               "spec": {"restartPolicy": "Never", "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
                        "containers": [{"name": "c", "image": "appliance.local/trainer:stub",
                                        "resources": {"limits": {"nvidia.com/gpu": 8}, "requests": {"cpu": "1", "memory": "1Gi"}}}]}}
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": "user-alice"},
                "spec": {"parallelism": gpus // 8, "completions": gpus // 8, "template": pod}}

    try:
        for j in (job("status-big", 32), job("status-next", 8)):
            batch.create_namespaced_job("user-alice", j)
            time.sleep(2)  # in this order
        want = ["user-alice: 32 GPUs in use (16 borrowed) of a quota of 16 (+16 borrowable); 1 pending, 1 admitted",
                "waiting: user-alice/status-next (Job): "]
        deadline, text = time.monotonic() + 60, ""
        while time.monotonic() < deadline:
            text = report.status_text(orchestrator.status(profile.cluster.name))
            if all(w in text for w in want):
                break
            time.sleep(2)
        assert all(w in text for w in want), text
        assert "insufficient unused quota for nvidia.com/gpu" in text.split("waiting: user-alice/status-next (Job): ")[1].splitlines()[0], text
    finally:
        for name in ("status-big", "status-next"):
            batch.delete_namespaced_job(name, "user-alice", propagation_policy="Background")


def test_rerun_is_noop_and_keeps_the_process(sim):
    rerun_keeps_the_process(*sim, NAME)


def test_mig_instances_are_queued_beside_whole_gpus(sim, tmp_path):
    """The MIG node's instances: alice's job for two 1g.10gb is admitted in her queue and lands there; bob's for
    14 (his share 6, borrowing up to 12) waits with Kueue's reason."""
    _, result = sim
    scenario_passes(result, "sim", COMPONENTS, "mig-placement", tmp_path, skips_for=("monitoring",))


def test_bobs_gpu_pods_go_through_his_queue_and_only_kueue_lifts_the_gate(sim, tmp_path):
    """tenant-attacks' queue steps (with their cleanup) on a real API server with Kueue: bob's GPU pod naming no
    queue refused, one naming his queue held by Kueue's gate, which he cannot lift. The scenario's other steps
    run on kind and in test_tenants_sim (this profile's users have DGX-sized limits those steps do not expect)."""
    import yaml

    from appliance import e2e
    from appliance.e2e import SCENARIOS_DIR

    _, result = sim
    full = yaml.safe_load((SCENARIOS_DIR / "tenant-attacks.yaml").read_text())
    mine = {**full, "name": "tenant-attacks-queues", "steps": [s for s in full["steps"] if "queues" in s.get("components", ())],
            "cleanup": [s for s in full["cleanup"] if "queues" in s.get("components", ())]}
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "tenant-attacks-queues.yaml").write_text(yaml.safe_dump(mine, sort_keys=False))
    (r,) = e2e.run(result["kubeconfig"], "sim", set(COMPONENTS), "tenant-attacks-queues", tmp_path / "out",
                   folders=[str(tmp_path / "scenarios")])
    assert len(mine["steps"]) == 3 and r.passed and all(s.status == "passed" for s in r.steps), \
        [(s.name, s.status, s.message) for s in r.steps]


def test_three_users_share_the_gpus_by_weight(sim, tmp_path):
    """Re-`up` with carol, 8 GPUs of quota each and her weight 2: the other 8 GPUs are the cohort's, and the
    fair-share scenario runs (admitted GPUs settle at 8/8/16, an idle share borrowed and reclaimed by preemption,
    never more admitted than the nodes hold)."""
    from appliance import orchestrator, report

    profile, result = sim
    three = with_options(with_options(profile, "user-profiles", users=["alice", "bob", "carol"], gpu_quota=8), "queues", weights=["carol=2"])
    assert not orchestrator.up(three, "sim", report.make())["failed"]
    cohort = Kube(result["kubeconfig"]).get("kueue.x-k8s.io/v1beta2", "Cohort", "users").to_dict()
    assert cohort["spec"]["resourceGroups"][0]["flavors"][0]["resources"][0] == {"name": "nvidia.com/gpu", "nominalQuota": 8}
    start = time.monotonic()
    scenario_passes(result, "sim", COMPONENTS, "gpu-fair-share", tmp_path)
    print(f"gpu-fair-share: {time.monotonic() - start:.0f}s")


def test_removal_leaves_no_kueue_kind_and_jobs_run_unqueued(sim):
    """Last: the stopped Kueue's finalizers are dropped, so its CRDs go; new jobs are no longer suspended."""
    from kubernetes import client

    profile, result = sim
    kube = Kube(result["kubeconfig"])
    _component(profile).remove(kube)
    ext = client.ApiextensionsV1Api(kube.api)
    for _ in range(30):
        left = [c.metadata.name for c in ext.list_custom_resource_definition().items if c.spec.group == "kueue.x-k8s.io"]
        if not left:
            break
        time.sleep(1)
    assert not left
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "after-queues", "namespace": "user-alice"},
           "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "appliance.local/trainer:stub"}]}}}}
    kube.apply([job])
    assert not client.BatchV1Api(kube.api).read_namespaced_job("after-queues", "user-alice").spec.suspend
