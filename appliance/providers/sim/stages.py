"""kwok configuration: node and pod lifecycle stages, written as one multi-document file.

Pods on simulated nodes go Running after `pod_startup_seconds`; pods owned by
a batch workload (Job, or a Kubeflow PyTorchJob/TFJob/MPIJob) go Succeeded
`pod_run_seconds` after that (a pod annotated `appliance.dev/sim-run-time: 30s` runs that long), unless
annotated `appliance.dev/sim-keep-running`; deleted pods are removed.
Nodes are initialised Ready at once and kept alive with leases.
"""

from __future__ import annotations

from pathlib import Path

import yaml

API = "kwok.x-k8s.io/v1alpha1"
BATCH_OWNERS = ("Job", "PyTorchJob", "TFJob", "MPIJob", "Workflow")  # owners whose pods run to completion
#: a pod annotated so runs until deleted, whatever its owner (scenarios that watch a job while it runs)
KEEP_RUNNING = "appliance.dev/sim-keep-running"
#: a batch pod's own run time (a Go duration, e.g. "30s"), in place of the profile's pod_run_seconds
RUN_TIME = "appliance.dev/sim-run-time"
#: kwok's status templates (Go templates), data files beside this module
_KWOK = Path(__file__).resolve().parent / "kwok"
_NODE_STATUS = (_KWOK / "node-status.tmpl").read_text()
_NODE_INIT = _NODE_STATUS + (_KWOK / "node-init.tmpl").read_text()
_POD_RUNNING = (_KWOK / "pod-running.tmpl").read_text()
_POD_SUCCEEDED = (_KWOK / "pod-succeeded.tmpl").read_text()


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


def stages(pod_startup_seconds: float = 0.0, pod_run_seconds: float = 5.0, lease_seconds: int = 40) -> list[dict]:
    node_ref = {"apiGroup": "v1", "kind": "Node"}
    pod_ref = {"apiGroup": "v1", "kind": "Pod"}
    ready_true = {"key": '.status.conditions.[] | select( .type == "Ready" ) | .status', "operator": "In", "values": ["True"]}
    not_deleting = {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"}
    out = [
        {
            "apiVersion": API, "kind": "Stage", "metadata": {"name": "node-initialize"},
            "spec": {
                "resourceRef": node_ref,
                "selector": {"matchExpressions": [
                    {"key": '.status.conditions.[] | select( .type == "Ready" ) | .status', "operator": "NotIn", "values": ["True"]},
                ]},
                "next": {"statusTemplate": _NODE_INIT},
            },
        },
        {
            "apiVersion": API, "kind": "Stage", "metadata": {"name": "node-heartbeat-with-lease"},
            "spec": {
                "resourceRef": node_ref,
                "selector": {"matchExpressions": [{"key": ".status.phase", "operator": "In", "values": ["Running"]}, ready_true]},
                # the lease says the node is alive; the status heartbeat only needs to be occasional
                "delay": {"durationMilliseconds": 600000, "jitterDurationMilliseconds": 610000},
                "next": {"statusTemplate": _NODE_STATUS},
            },
        },
        {
            "apiVersion": API, "kind": "Stage", "metadata": {"name": "pod-ready"},
            "spec": {
                "resourceRef": pod_ref,
                "selector": {"matchExpressions": [not_deleting, {"key": ".status.podIP", "operator": "DoesNotExist"}]},
                **({"delay": {"durationMilliseconds": _ms(pod_startup_seconds)}} if pod_startup_seconds > 0 else {}),
                "next": {"statusTemplate": _POD_RUNNING},
            },
        },
        {
            "apiVersion": API, "kind": "Stage", "metadata": {"name": "pod-complete"},
            "spec": {
                "resourceRef": pod_ref,
                "selector": {"matchExpressions": [
                    not_deleting,
                    {"key": ".status.phase", "operator": "In", "values": ["Running"]},
                    {"key": ".metadata.ownerReferences.[].kind", "operator": "In", "values": list(BATCH_OWNERS)},
                    {"key": f'.metadata.annotations["{KEEP_RUNNING}"]', "operator": "DoesNotExist"},
                ]},
                "delay": {"durationMilliseconds": _ms(pod_run_seconds),
                          "durationFrom": {"expressionFrom": f'.metadata.annotations["{RUN_TIME}"]'}},
                "next": {"statusTemplate": _POD_SUCCEEDED},
            },
        },
        {
            "apiVersion": API, "kind": "Stage", "metadata": {"name": "pod-delete"},
            "spec": {
                "resourceRef": pod_ref,
                "selector": {"matchExpressions": [{"key": ".metadata.deletionTimestamp", "operator": "Exists"}]},
                "next": {"finalizers": {"empty": True}, "delete": True},
            },
        },
    ]
    return out


def kwok_config(pod_startup_seconds: float, pod_run_seconds: float, parallelism: int = 16, lease_seconds: int = 40) -> str:
    conf = {
        "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
        "kind": "KwokConfiguration",
        "options": {
            "cidr": "10.244.0.1/16",
            "nodeIP": "10.240.0.1",
            "manageAllNodes": False,
            "manageNodesWithAnnotationSelector": "kwok.x-k8s.io/node=fake",
            "nodeLeaseDurationSeconds": lease_seconds,
            "podPlayStageParallelism": parallelism,
            "nodePlayStageParallelism": parallelism,
            "nodeLeaseParallelism": parallelism,
        },
    }
    docs = [conf] + stages(pod_startup_seconds, pod_run_seconds, lease_seconds)
    return yaml.safe_dump_all(docs, sort_keys=False, width=1000)
