"""Control-plane settings sized to the simulated cluster.

A thousand kwok nodes and ten thousand pods need a lazy Go garbage collector, deep request queues,
a long etcd raft log, many kwok workers and fast API clients (bench/bench_sim.py measured them). On
a one-node laptop the same settings only make the heaps grow: GOGC=400 lets each process hold five
times its live heap. Small clusters get Go's and Kubernetes' defaults instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

#: from this many simulated nodes on, the large settings apply
LARGE_NODES = 100


@dataclass(frozen=True)
class Sizing:
    """Settings of one size; `go_gc` is added to every control-plane process's environment."""

    size: Literal["small", "large"]
    go_gc: dict[str, str] = field(default_factory=dict)
    max_requests_inflight: int = 400  # kube-apiserver defaults
    max_mutating_requests_inflight: int = 200
    etcd_quota_bytes: int = 2 * 2**30  # etcd defaults
    etcd_snapshot_count: int = 10000
    kwok_parallelism: int = 4  # kwok's default
    scheduler_qps: int = 100
    scheduler_burst: int = 200
    kcm_qps: int = 100
    kcm_burst: int = 200
    concurrent_syncs: int = 5  # replicaset, deployment and job controllers (their defaults)


SMALL = Sizing("small")
LARGE = Sizing(
    "large",
    # control-plane heaps churn hard under thousands of pods: collect less often, bounded by a memory cap
    go_gc={"GOGC": "400", "GOMEMLIMIT": "3GiB"},
    max_requests_inflight=3000,
    max_mutating_requests_inflight=1500,
    etcd_quota_bytes=8 * 2**30,
    etcd_snapshot_count=50000,
    kwok_parallelism=64,  # kwok is latency-bound (one patch per pod): overlap more of them
    scheduler_qps=2000,
    scheduler_burst=4000,
    kcm_qps=1000,
    kcm_burst=2000,
    concurrent_syncs=10,
)


def sizing(nodes: int, size: Literal["auto", "small", "large"] = "auto") -> Sizing:
    """The settings for a cluster of `nodes` simulated nodes; `size` other than auto forces one."""
    if size == "auto":
        size = "large" if nodes >= LARGE_NODES else "small"
    return LARGE if size == "large" else SMALL
