"""NetworkPolicy enforced on a real kind cluster (issue 11 D, issue 22): the network-policy agent runs on both nodes of
the ci profile, and the network-isolation scenario shows bob's pod cannot reach alice's Service while alice's
own pod, a platform pod, the API server's service proxy and the kubelet's probes still can; the tenant-attacks
scenario, its egress probes included."""

import pytest

from appliance import e2e
from tests.integration.clusters import STACK_COMPONENTS

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.docker]
COMPONENTS = ("platform-base", "user-profiles", "network-policy", "training-operator")


@pytest.fixture(scope="module")
def kind(stack):
    """The stack cluster (conftest.py): (profile, result of its `up`)."""
    return stack


def test_agent_ready_on_every_node(kind):
    from kubernetes import client, config

    _, result = kind
    assert not result["failed"]
    api = config.new_client_from_config(config_file=result["kubeconfig"])
    ds = client.AppsV1Api(api).read_namespaced_daemon_set("kube-network-policies", "kube-system").status
    nodes = client.CoreV1Api(api).list_node().items
    assert ds.number_ready == ds.desired_number_scheduled == len(nodes) == 2


def test_network_isolation(kind, tmp_path):
    _, result = kind
    (r,) = e2e.run(result["kubeconfig"], "kind", set(COMPONENTS), "network-isolation", tmp_path)
    failed = [f"{s.name}: {s.message}" for s in r.steps if s.status == "failed"]
    assert r.passed, failed


def test_tenant_attacks(kind, tmp_path):
    """Issue 22: bob's attacks refused on kind, the egress probes included (none skipped: NetworkPolicy is enforced here)."""
    _, result = kind
    (r,) = e2e.run(result["kubeconfig"], "kind", set(STACK_COMPONENTS), "tenant-attacks", tmp_path)
    assert r.passed, [f"{s.name}: {s.message}" for s in r.steps if s.status == "failed"]
    assert not [s.name for s in r.steps if s.status == "skipped"]
