"""network-policy: the agent's image, built from its module with our queue fallback added (see
images/network-policy/queue_compat.go: kernels without nftables' queue expression, CONFIG_NFT_QUEUE, refuse
every rule the agent writes and it then enforces nothing; the fallback queues through the xtables NFQUEUE
target where a probe finds the native expression refused)."""

from __future__ import annotations

import shutil
from pathlib import Path

from appliance import paths
from appliance.components.decl import Go
from appliance.images import builds

#: our addition to the module's package networkpolicy, and the upstream lines that then call it
QUEUE_COMPAT = paths.shipped("images", "network-policy", "queue_compat.go")
#: our addition judging every new connection from a pod address (--pod-cidrs), to its own node too
POD_SOURCES = QUEUE_COMPAT.with_name("pod_sources.go")
EVALUATE = "func (c *Controller) evaluatePacket(ctx context.Context, p packet) bool {\n"
NATIVE_QUEUE = """\tqueue := &expr.Queue{Num: uint16(c.config.QueueID)}
\tif c.config.FailOpen {
\t\tqueue.Flag = expr.QueueFlagBypass
\t}
"""


def _patch(src: Path) -> None:
    """Add QUEUE_COMPAT and POD_SOURCES to a writable copy of the module source and make controller.go use
    them: both queue verdicts through queueExpr, the pod-source rules right before the first (the POSTROUTING
    chain's set rules), unknown pod sources refused first in evaluatePacket."""
    controller = src / "pkg" / "networkpolicy" / "controller.go"
    text = controller.read_text()
    if text.count(NATIVE_QUEUE) != 2 or text.count(EVALUATE) != 1:
        raise builds.BuildError(f"expected the native queue expression twice and evaluatePacket once in {controller}")
    text = text.replace(NATIVE_QUEUE, "\tc.podSourceChains(nft, table, chain)\n\tqueue := c.queueExpr()\n", 1)
    text = text.replace(NATIVE_QUEUE, "\tqueue := c.queueExpr()\n")
    controller.write_text(text.replace(EVALUATE, EVALUATE + "\tif c.unknownPodSource(p) {\n\t\treturn false\n\t}\n"))
    shutil.copy(QUEUE_COMPAT, controller.with_name("zz_appliance_queue_compat.go"))
    shutil.copy(POD_SOURCES, controller.with_name("zz_appliance_pod_sources.go"))


def _binary(go: Go) -> Path:
    """The agent (component.yaml's `go:`), built statically from the patched module source; cached by version and patch."""
    out = paths.cache_dir("components", "go", go.module.replace("/", "_"), f"{go.version}-{builds.file_hash(QUEUE_COMPAT, POD_SOURCES, Path(__file__))}")
    return builds.patched_go_binary(go.module, go.version, go.package, out / "netpol", _patch)


def image(go: Go) -> tuple[str, Path]:
    """(ref, docker-archive): the static binary at the upstream image's path (`go.path`)."""
    return builds.binary_image(_binary(go), "appliance.local/kube-network-policies", go.path)


def context(options, kube) -> dict:
    """`pod_cidrs`: the nodes' pod address ranges (none without a cluster), whose every new connection the agent judges."""
    if kube is None:
        return {"pod_cidrs": []}
    from kubernetes import client

    nodes = client.CoreV1Api(kube.api).list_node().items
    return {"pod_cidrs": sorted({c for n in nodes for c in (n.spec.pod_cid_rs or ([n.spec.pod_cidr] if n.spec.pod_cidr else []))})}
