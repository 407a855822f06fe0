"""platform-base: the appliance's own namespace and the priority classes workloads use."""

from __future__ import annotations

from appliance.components import register
from appliance.components.objects import ObjectsComponent

NAMESPACE = "appliance-system"
PRIORITIES = {"appliance-serving": 2000, "appliance-training": 1000, "appliance-batch": 100}


@register
class PlatformBase(ObjectsComponent):
    name = "platform-base"
    description = "appliance-system namespace and priority classes (serving > training > batch)"

    def objects(self) -> list[dict]:
        labels = {"app.kubernetes.io/managed-by": "appliance"}
        objs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE, "labels": labels}}]
        for name, value in PRIORITIES.items():
            objs.append({
                "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                "metadata": {"name": name, "labels": labels},
                "value": value, "globalDefault": False, "preemptionPolicy": "PreemptLowerPriority",
                "description": f"appliance {name.split('-', 1)[1]} workloads",
            })
        return objs
