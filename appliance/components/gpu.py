"""nvidia-device-plugin: advertises `nvidia.com/gpu` on nodes labelled `nvidia.com/gpu.present=true`."""

from __future__ import annotations

from pydantic import Field

from appliance.components import Options, Resources, register
from appliance.components.objects import ObjectsComponent

NAMESPACE = "kube-system"
NAME = "nvidia-device-plugin"
GPU_NODES = {"nvidia.com/gpu.present": "true"}


class DevicePluginOpts(Options):
    image: str = Field("nvcr.io/nvidia/k8s-device-plugin:v0.17.0", description="pinned official image")
    mig_strategy: str = Field("none", pattern="^(none|single|mixed)$")


@register
class NvidiaDevicePlugin(ObjectsComponent):
    name = NAME
    description = "NVIDIA device plugin DaemonSet on GPU nodes (none scheduled on hosts without GPUs)"
    Opts = DevicePluginOpts

    def requests(self) -> Resources:
        return Resources(10, 32)  # per GPU node; zero pods where no node is labelled

    def objects(self) -> list[dict]:
        labels = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/managed-by": "appliance"}
        return [{
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": labels},
            "spec": {
                "selector": {"matchLabels": {"app.kubernetes.io/name": NAME}},
                "updateStrategy": {"type": "RollingUpdate"},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "nodeSelector": GPU_NODES,
                        "priorityClassName": "system-node-critical",
                        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                        "containers": [{
                            "name": "device-plugin",
                            "image": self.options.image,
                            "env": [{"name": "MIG_STRATEGY", "value": self.options.mig_strategy},
                                    {"name": "FAIL_ON_INIT_ERROR", "value": "true"}],
                            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                            "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
                            "volumeMounts": [{"name": "device-plugins", "mountPath": "/var/lib/kubelet/device-plugins"}],
                        }],
                        "volumes": [{"name": "device-plugins", "hostPath": {"path": "/var/lib/kubelet/device-plugins"}}],
                    },
                },
            },
        }]
