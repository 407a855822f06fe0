"""platform-base: the appliance's own namespace, the priority classes workloads use, and CoreDNS sized
to the cluster (kubeadm's two replicas only add requests on a single node)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from appliance.components import Options, register
from appliance.components.access import RESTRICTED
from appliance.components.objects import ObjectsComponent

NAMESPACE = "appliance-system"
PRIORITIES = {"appliance-serving": 2000, "appliance-training": 1000, "appliance-batch": 100}


class PlatformOpts(Options):
    dns_replicas: int | Literal["auto"] = Field(
        "auto", description="CoreDNS replicas (kube-system/coredns, where the cluster has one); auto: 1 on a single node, else 2")


def dns_target(setting: int | Literal["auto"], nodes: int) -> int:
    if setting != "auto":
        return int(setting)
    return 1 if nodes <= 1 else 2


@register
class PlatformBase(ObjectsComponent):
    name = "platform-base"
    description = "appliance-system namespace, priority classes (serving > training > batch), CoreDNS sized to the cluster"
    Opts = PlatformOpts

    def objects(self) -> list[dict]:
        labels = {"app.kubernetes.io/managed-by": "appliance"}
        objs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE, "labels": {**labels, **RESTRICTED}}}]
        for name, value in PRIORITIES.items():
            objs.append({
                "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                "metadata": {"name": name, "labels": labels},
                "value": value, "globalDefault": False, "preemptionPolicy": "PreemptLowerPriority",
                "description": f"appliance {name.split('-', 1)[1]} workloads",
            })
        return objs

    def install(self, kube) -> str:
        return "; ".join(filter(None, [super().install(kube), self._size_dns(kube)]))

    def _size_dns(self, kube) -> str:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        apps = client.AppsV1Api(kube.api)
        try:
            scale = apps.read_namespaced_deployment_scale("coredns", "kube-system")
        except ApiException as e:
            if e.status == 404:
                return ""  # no CoreDNS Deployment (the simulator)
            raise
        want = dns_target(self.options.dns_replicas, len(client.CoreV1Api(kube.api).list_node().items))
        if scale.spec.replicas == want:
            return ""
        apps.patch_namespaced_deployment_scale("coredns", "kube-system", {"spec": {"replicas": want}})
        return f"CoreDNS {scale.spec.replicas} -> {want} replicas"
