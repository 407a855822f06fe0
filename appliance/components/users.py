"""user-profiles: one namespace per user, the user may edit only their own namespace; its pods are reached
only from that namespace, the platform's namespaces and the nodes (Pod Security `baseline` enforced)."""

from __future__ import annotations

import ipaddress
import re

from pydantic import Field, field_validator

from appliance.components import Options, register
from appliance.components.objects import ObjectsComponent


class UserOpts(Options):
    users: list[str] = Field(default_factory=lambda: ["alice", "bob"])
    gpu_quota: int | None = Field(None, ge=0, description="max nvidia.com/gpu requested per user namespace")

    @field_validator("users")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        for u in v:
            if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?", u):
                raise ValueError(f"user '{u}' must be a lowercase DNS label")
        return v


def namespace(user: str) -> str:
    return f"user-{user}"


#: namespaces whose pods may reach every user's pods (the appliance, the training and serving controllers,
#: the cluster's own add-ons), selected by the name label Kubernetes sets on every namespace
PLATFORM_NAMESPACES = ("appliance-system", "kubeflow", "kserve", "kube-system")
#: Pod Security: `baseline` refused at admission (no host network, ports or paths, no privileged pods: the
#: network policy below relies on that); `restricted` warned about and audited
POD_SECURITY = {"pod-security.kubernetes.io/enforce": "baseline",
                "pod-security.kubernetes.io/warn": "restricted", "pod-security.kubernetes.io/audit": "restricted"}


def default_policy(ns: str, labels: dict, nodes: list[str]) -> dict:
    """Ingress to every pod of `ns` from its own pods, the platform namespaces' pods and the `nodes`
    addresses (the API server's service proxy, e.g. the e2e predict requests, comes from its node's
    address); nothing from other users. Probes from a pod's own kubelet come from the node as root, which
    the enforcing agent never queues. Egress is not limited."""
    peers = [
        {"podSelector": {}},
        {"namespaceSelector": {"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": list(PLATFORM_NAMESPACES)}]}},
    ]
    peers += [{"ipBlock": {"cidr": str(ipaddress.ip_network(a))}} for a in nodes]
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "default-ingress", "namespace": ns, "labels": labels},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"from": peers}]},
    }


def node_addresses(kube) -> list[str]:
    """Every node's InternalIP addresses."""
    from kubernetes import client

    nodes = client.CoreV1Api(kube.api).list_node().items
    return sorted({a.address for n in nodes for a in n.status.addresses or [] if a.type == "InternalIP"})


@register
class UserProfiles(ObjectsComponent):
    name = "user-profiles"
    description = ("a namespace per user with RBAC (user and service account bound to `edit`), Pod Security baseline, "
                   "a default NetworkPolicy (ingress from the namespace, the platform and the nodes) and an optional GPU quota")
    depends = ("platform-base",)
    Opts = UserOpts

    def objects(self, nodes: list[str] = ()) -> list[dict]:
        """Every object; `nodes`: the addresses the default policy admits (install reads them from the cluster)."""
        objs: list[dict] = []
        for user in self.options.users:
            ns = namespace(user)
            labels = {"app.kubernetes.io/managed-by": "appliance", "appliance.dev/owner": user}
            objs += [
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {**labels, **POD_SECURITY}}},
                {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": user, "namespace": ns, "labels": labels}},
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                    "metadata": {"name": f"{user}-edit", "namespace": ns, "labels": labels},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
                    "subjects": [
                        {"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"},
                        {"kind": "ServiceAccount", "name": user, "namespace": ns},
                    ],
                },
                default_policy(ns, labels, list(nodes)),
            ]
            if self.options.gpu_quota is not None:
                objs.append({
                    "apiVersion": "v1", "kind": "ResourceQuota",
                    "metadata": {"name": "gpu", "namespace": ns, "labels": labels},
                    "spec": {"hard": {"requests.nvidia.com/gpu": str(self.options.gpu_quota)}},
                })
        return objs

    def install(self, kube) -> str:
        return f"applied {kube.apply(self.objects(node_addresses(kube)))} objects"
