"""Tenant isolation on a real API server (the simulator): bob's attacks of the tenant-attacks scenario refused
(externalIPs by the API server's own admission plugin, the rest by user-profiles' policies, quota and limits;
the egress probes need a data plane and run on kind), and a user who leaves the profile: their tokens stop
working, their namespace stays closed."""

import time

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from appliance import doctor, orchestrator, report
from appliance.e2e import SCENARIOS_DIR, scenario
from appliance.kube import Kube
from tests.integration.clusters import cluster, load, scenario_passes

pytestmark = [pytest.mark.integration]
BASE = ("platform-base", "user-profiles")
NAME = "it-tenants-sim"
USERS = ["alice", "bob", "carol"]


@pytest.fixture(scope="module")
def sim():
    with cluster("laptop", "sim", [f"cluster.name={NAME}", f"components.user-profiles.options.users={USERS}"], BASE) as up:
        yield up


def test_tenant_attacks_are_refused_with_their_controls_allowed(sim, tmp_path):
    _, result = sim
    r = scenario_passes(result, "sim", BASE, "tenant-attacks", tmp_path, skips_for=("network-policy", "nvidia-device-plugin", "monitoring",
                                                                               "pipelines", "tuning", "notebooks", "kserve", "training-operator", "database",
                                                                               "queues",  # its steps: test_queues_sim
                                                                               "tracking"))  # a pod: kind's (test_netpol_kind)
    skipped = [s.name for s in r.steps if s.status == "skipped"]
    attacks = scenario.load(SCENARIOS_DIR / "tenant-attacks.yaml")
    gated = [s.name for s in [*attacks.steps, *attacks.cleanup] if set(s.components) - set(BASE)]
    assert skipped == gated and any("probe" in n for n in skipped)  # the egress probes: no data plane here
    assert sum(s.status == "passed" for s in r.steps) >= 14


def test_doctor_reports_what_the_cluster_enforces(sim):
    _, result = sim
    kube = Kube(result["kubeconfig"])
    checks = {c.name: c for c in doctor.isolation(kube, enforced=False)}
    assert {n for n, c in checks.items() if c.status != "pass"} == set(), checks
    assert set(checks) == {"external-ips", "tenant-policies", "seccomp-default", "controller-rights", "ns/user-alice", "ns/user-bob", "ns/user-carol"}
    assert "allowed by its component" in checks["controller-rights"].detail
    assert "objects only" in checks["ns/user-bob"].detail and "baseline" in checks["ns/user-bob"].detail
    kube.delete([{"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "user-limits", "namespace": "user-bob"}}])
    bob = next(c for c in doctor.isolation(kube, enforced=False) if c.name == "ns/user-bob")
    assert bob.status == "fail" and "LimitRange user-limits" in bob.detail and "appliance up" in bob.fix
    assert orchestrator.up(load("laptop", "sim", [f"cluster.name={NAME}", f"components.user-profiles.options.users={USERS}"], BASE),
                           "sim", report.make())["ran"] == ["user-profiles"]  # drift repaired


def _as(kube: Kube, user: str):
    return client.CoreV1Api(config.new_client_from_config_dict(kube.kubeconfig_for(f"user-{user}", user, 600)))


def _status(api) -> int:
    try:
        api.list_namespaced_pod("user-carol")
        return 200
    except ApiException as e:
        return e.status


def test_a_user_who_leaves_loses_their_tokens_and_keeps_a_closed_namespace(sim):
    profile, result = sim
    kube = Kube(result["kubeconfig"])
    carol = _as(kube, "carol")
    carol.list_namespaced_pod("user-carol")  # her token works while she is listed
    gone = load("laptop", "sim", [f"cluster.name={NAME}", "components.user-profiles.options.users=[alice, bob]"], BASE)
    after = orchestrator.up(gone, "sim", report.make())
    assert "user-profiles" in after["ran"] and not after["failed"]
    with pytest.raises(ApiException) as e:
        carol.list_namespaced_pod("user-carol")
    assert e.value.status == 403  # her role binding went at once
    deadline = time.monotonic() + 30  # the API server keeps a token's authentication for 10 s
    while (status := _status(carol)) != 401 and time.monotonic() < deadline:
        time.sleep(1)
    assert status == 401  # the service account her token was bound to is gone: the token with it
    core = client.CoreV1Api(kube.api)
    ns = core.read_namespace("user-carol")
    assert ns.metadata.labels["appliance.dev/departed"] == "true" and ns.metadata.labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert {p.metadata.name for p in client.NetworkingV1Api(kube.api).list_namespaced_network_policy("user-carol").items} == {"departed-deny-all"}
    assert core.read_namespaced_resource_quota("departed", "user-carol").spec.hard["pods"] == "0"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},  # restricted, so the quota is what refuses it
           "spec": {"securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": "10m", "memory": "8Mi"}},
                                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}]}}
    with pytest.raises(ApiException) as e:
        core.create_namespaced_pod("user-carol", pod, dry_run="All")
    assert "exceeded quota" in e.value.body  # nothing runs there any more, even by an admin's hand
    assert orchestrator.up(gone, "sim", report.make())["ran"] == []  # a no-op once closed
    closed = next(c for c in doctor.isolation(kube, enforced=False) if c.name == "ns/user-carol")
    assert closed.status == "pass" and "departed" in closed.detail
    back = orchestrator.up(profile, "sim", report.make())  # she comes back: her namespace opens again
    assert not back["failed"]
    labels = core.read_namespace("user-carol").metadata.labels
    assert "appliance.dev/departed" not in labels and labels["pod-security.kubernetes.io/enforce"] == "baseline"
    _as(kube, "carol").list_namespaced_pod("user-carol")
