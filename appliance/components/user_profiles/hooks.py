"""user-profiles: the nodes' addresses, which each user namespace's default policy admits."""

from __future__ import annotations

import ipaddress


def context(options, kube) -> dict:
    """`node_cidrs`: every node's InternalIP as a single-address CIDR (none without a cluster)."""
    if kube is None:
        return {"node_cidrs": []}
    from kubernetes import client

    nodes = client.CoreV1Api(kube.api).list_node().items
    addrs = sorted({a.address for n in nodes for a in n.status.addresses or [] if a.type == "InternalIP"})
    return {"node_cidrs": [str(ipaddress.ip_network(a)) for a in addrs]}
