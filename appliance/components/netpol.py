"""network-policy: enforces NetworkPolicy on every node with sigs.k8s.io/kube-network-policies, built here
from its Go module. The node image's CNI (ptp + host-local) stores policies but enforces none.

The agent runs on each node's network (NET_ADMIN): nftables sends the first packet of each connection to or
from a pod that some policy selects to an nfqueue, and the agent accepts or drops it. Traffic the node's
root processes make (kubelet probes, a local API server) is never queued. It talks to nftables over netlink
(no `nft` program), so the image is the static binary alone. The simulator has no data plane: there,
NetworkPolicies are objects only (the laptop profile disables this component on it).

Kernels without nftables' queue expression (CONFIG_NFT_QUEUE, unset on this project's CI kernel) refuse
every rule the agent writes, and it then enforces nothing: the build adds images/network-policy/
queue_compat.go, which queues through the xtables NFQUEUE target (nft_compat) where a probe finds the
native expression refused.

v0.8.0 exits on SIGTERM without removing its nftables table: with `fail_open: false` (the default), pods
that policies select lose new connections until the agent runs again, or until they restart."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import Field

from appliance import paths
from appliance.components import Component, ComponentImage, Options, Resources, builds, register
from appliance.components.kit import quantity_m as _quantity_m
from appliance.components.kit import quantity_mi as _quantity_mi

MODULE = "sigs.k8s.io/kube-network-policies"
VERSION = "v0.8.0"
#: the release's image (registry.k8s.io/networking/kube-network-policies:<tag>), used when the registry answers
UPSTREAM_IMAGE = f"registry.k8s.io/networking/kube-network-policies:{VERSION}"
PACKAGE = "cmd"
#: our addition to the module's package networkpolicy, and the upstream lines that then call it
QUEUE_COMPAT = Path(__file__).resolve().parents[2] / "images" / "network-policy" / "queue_compat.go"
NATIVE_QUEUE = """\tqueue := &expr.Queue{Num: uint16(c.config.QueueID)}
\tif c.config.FailOpen {
\t\tqueue.Flag = expr.QueueFlagBypass
\t}
"""
NAME = "kube-network-policies"
NAMESPACE = "kube-system"
BINARY = "/bin/netpol"  # where the upstream image has it
METRICS = "127.0.0.1:9080"  # loopback only: the agent shares the node's network
LABELS = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/managed-by": "appliance"}


class NetpolOpts(Options):
    image: str = Field("", description="use this image instead of building one")
    image_load: Literal["auto", "node-containers", "none"] = Field("auto", description="as training-operator's image_load")
    fail_open: bool = Field(False, description="accept new connections while the agent is not running (restarts); "
                            "false drops them: policies hold even then")
    cpu: str = "10m"
    memory: str = "48Mi"  # measured: 44 MiB RSS per node on a two-node kind cluster
    wait_seconds: int = Field(180, ge=0, description="how long install waits for the agent on every node")


def patch(src: Path) -> None:
    """Add QUEUE_COMPAT to a writable copy of the module source and make controller.go use it."""
    controller = src / "pkg" / "networkpolicy" / "controller.go"
    text = controller.read_text()
    if text.count(NATIVE_QUEUE) != 2:
        raise builds.BuildError(f"{MODULE}@{VERSION}: expected the native queue expression twice in {controller.name}")
    controller.write_text(text.replace(NATIVE_QUEUE, "\tqueue := c.queueExpr()\n"))
    shutil.copy(QUEUE_COMPAT, controller.with_name("zz_appliance_queue_compat.go"))


def binary() -> Path:
    """The agent, built statically from the patched module source; cached by version and patch."""
    out = paths.cache_dir("components", "go", MODULE.replace("/", "_"), f"{VERSION}-{builds.file_hash(QUEUE_COMPAT)}")
    binary = out / "netpol"
    if binary.is_file():
        return binary
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="netpol-", dir=out) as tmp:
        src = builds._writable_copy(builds.module_dir(MODULE, VERSION), Path(tmp, "src"))
        patch(src)
        builds._run(["nice", "-n", "10", builds.find_go() or "go", "build", "-trimpath", "-ldflags=-s -w", "-o", str(Path(tmp, "netpol")),
                     f"./{PACKAGE}"], cwd=src, env=builds._go_env(), log=out / "netpol.build.log")
        os.replace(Path(tmp, "netpol"), binary)
    return binary


def image() -> tuple[str, Path]:
    """(ref, docker-archive): the static binary at the upstream image's path."""
    return builds.binary_image(binary(), "appliance.local/kube-network-policies", BINARY)


def rbac_rules() -> list[dict]:
    """What the agent watches (the NetworkPolicy API only; the admin policy APIs stay off)."""
    return [
        {"apiGroups": [""], "resources": ["pods", "namespaces"], "verbs": ["list", "watch"]},
        {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": ["list", "watch"]},
    ]


def args(opts: NetpolOpts) -> list[str]:
    out = ["--hostname-override=$(NODE_NAME)", f"--metrics-bind-address={METRICS}"]
    return out + (["--fail-open"] if opts.fail_open else [])


def daemonset(opts: NetpolOpts, image_ref: str) -> dict:
    host, port = METRICS.split(":")
    container = {
        "name": "agent", "image": image_ref, "imagePullPolicy": "IfNotPresent",
        "command": [BINARY], "args": args(opts),
        "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
        "resources": {"requests": {"cpu": opts.cpu, "memory": opts.memory}, "limits": {"memory": "256Mi"}},
        "readinessProbe": {"httpGet": {"host": host, "port": int(port), "path": "/metrics"}, "periodSeconds": 5},
        # root with NET_ADMIN alone: nftables and nfqueue over netlink
        "securityContext": {"runAsUser": 0, "runAsNonRoot": False, "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"], "add": ["NET_ADMIN"]},
                            "seccompProfile": {"type": "RuntimeDefault"}},
    }
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": dict(LABELS)},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": NAME}},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": dict(LABELS)},
                "spec": {
                    "hostNetwork": True, "serviceAccountName": NAME, "priorityClassName": "system-node-critical",
                    "nodeSelector": {"kubernetes.io/os": "linux"}, "tolerations": [{"operator": "Exists"}],
                    "containers": [container],
                },
            },
        },
    }


@register
class NetworkPolicy(Component):
    name = "network-policy"
    description = f"enforces NetworkPolicy on every node ({MODULE} {VERSION}, nfqueue); the simulator keeps policies as objects only"
    Opts = NetpolOpts

    def requests(self) -> Resources:
        return Resources(_quantity_m(self.options.cpu), _quantity_mi(self.options.memory))  # per node

    def images(self) -> list[ComponentImage]:
        return [] if self.options.image else [ComponentImage(NAME, UPSTREAM_IMAGE, image)]

    def objects(self, image_ref: str = "") -> list[dict]:
        meta = {"name": NAME, "labels": dict(LABELS)}
        return [
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {**meta, "namespace": NAMESPACE}},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": meta, "rules": rbac_rules()},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": meta,
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NAME},
             "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]},
            daemonset(self.options, image_ref or self.options.image or "appliance.local/kube-network-policies:latest"),
        ]

    def install(self, kube) -> str:
        o = self.options
        ref = o.image or self.delivery.provide(kube, self.images(), o.image_load)[NAME]
        n = kube.apply(self.objects(ref))
        builds.wait_ready(lambda: self.ready(kube), o.wait_seconds, f"{NAME} DaemonSet in {NAMESPACE}")
        return f"applied {n} objects; image {ref} ({self.delivery.decision().source})"

    def remove(self, kube) -> None:
        kube.delete(reversed(self.objects()))

    def ready(self, kube) -> tuple[bool, str]:
        missing = kube.missing(self.objects())
        return (not missing, ", ".join(missing[:5]))
