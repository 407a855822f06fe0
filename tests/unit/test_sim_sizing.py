"""Simulator control-plane settings follow the node count: small clusters get the defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance import orchestrator
from appliance.providers.sim import SimProvider
from appliance.providers.sim.processes import COMPONENTS, PORT_KEYS
from appliance.providers.sim.sizing import LARGE, LARGE_NODES, SMALL, sizing
from appliance.schema import ClusterSpec, NodeClass


def test_small_clusters_get_go_and_kubernetes_defaults():
    for nodes in (0, 1, 6, LARGE_NODES - 1):
        t = sizing(nodes)
        assert t.size == "small" and t.go_gc == {}
        assert (t.max_requests_inflight, t.max_mutating_requests_inflight) == (400, 200)
        assert t.kwok_parallelism < LARGE.kwok_parallelism and t.etcd_snapshot_count < LARGE.etcd_snapshot_count


def test_large_clusters_keep_the_settings_measured_at_1000_nodes():
    for nodes in (LARGE_NODES, 1000):
        t = sizing(nodes)
        assert t.size == "large" and t.go_gc == {"GOGC": "400", "GOMEMLIMIT": "3GiB"}
        assert (t.max_requests_inflight, t.kwok_parallelism, t.etcd_snapshot_count) == (3000, 64, 50000)


def test_a_size_can_be_forced():
    assert sizing(1, "large") is LARGE and sizing(1000, "small") is SMALL


def _argv(tmp_path: Path, spec: ClusterSpec) -> dict[str, list[str]]:
    p = SimProvider(spec, tmp_path)
    bins = {c: Path("/bin", c) for c in COMPONENTS}
    ports = dict.fromkeys(PORT_KEYS, 1)
    return {c: p.control_plane.argv(c, bins, ports) for c in COMPONENTS}


def test_one_node_cluster_runs_its_control_plane_with_the_small_settings(tmp_path):
    argv = _argv(tmp_path, ClusterSpec(node_classes=[NodeClass(name="cpu", count=1)]))
    assert "--max-requests-inflight=400" in argv["kube-apiserver"]
    assert "--snapshot-count=10000" in argv["etcd"] and f"--quota-backend-bytes={2 * 2**30}" in argv["etcd"]
    assert "--kube-api-qps=100" in argv["kube-controller-manager"]
    assert "--concurrent-job-syncs=5" in argv["kube-controller-manager"]


def test_thousand_nodes_or_a_forced_large_size_run_with_the_large_settings(tmp_path):
    for spec in (ClusterSpec(node_classes=[NodeClass(name="dgx", count=1000)]),
                 ClusterSpec(node_classes=[NodeClass(name="cpu", count=1)], sim={"sizing": "large"})):
        argv = _argv(tmp_path, spec)
        assert "--max-requests-inflight=3000" in argv["kube-apiserver"]
        assert "--snapshot-count=50000" in argv["etcd"] and f"--quota-backend-bytes={8 * 2**30}" in argv["etcd"]
        assert "--concurrent-job-syncs=10" in argv["kube-controller-manager"]


@pytest.mark.parametrize("profile,sets,size", [
    ("laptop", [], "small"),
    ("sim-dgx-pod", [], "small"),
    ("sim-dgx-pod", ["cluster.sim.sizing=large"], "large"),
    ("sim-dgx-pod", ["cluster.sim.tuning=large"], "large"),  # the key's former name, still read
])
def test_profiles_on_the_simulator(tmp_path, profile, sets, size):
    spec = orchestrator.load_for(profile, sets, "sim")[0].profile.cluster
    assert SimProvider(spec, tmp_path).sizing.size == size
