"""Scenario helper: a hostPath PersistentVolume pinned to one schedulable node, and its claim.

    python3 ../models/pv.py NAMESPACE CLAIM [--delete]

Works on clusters without a storage provisioner (the kind node image has none): every pod using the
claim lands on the PV's node, so a trainer's output is there for the model server."""

from __future__ import annotations

import sys

from kubernetes import client, config
from kubernetes.client.rest import ApiException


def _wait_gone(read, timeout: float = 90) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if read() is None:
                return
        except ApiException as e:
            if e.status == 404:
                return
            raise
        time.sleep(1)


def main(argv: list[str]) -> int:
    ns, claim = argv[0], argv[1]
    config.load_kube_config()
    core = client.CoreV1Api()
    pv_name = f"e2e-{ns}-{claim}"
    if "--delete" in argv:
        for call in (lambda: core.delete_namespaced_persistent_volume_claim(claim, ns), lambda: core.delete_persistent_volume(pv_name)):
            try:
                call()
            except ApiException as e:
                if e.status != 404:
                    raise
        _wait_gone(lambda: core.read_persistent_volume(pv_name))
        print("deleted")
        return 0
    # a PV of the same name still going away (an earlier run) would swallow the create below
    _wait_gone(lambda: core.read_persistent_volume(pv_name) if core.read_persistent_volume(pv_name).metadata.deletion_timestamp else None)
    nodes = [n for n in core.list_node().items
             if not any(t.effect in ("NoSchedule", "NoExecute") for t in (n.spec.taints or []))]
    if not nodes:
        print("no schedulable node", file=sys.stderr)
        return 1
    node = sorted(n.metadata.name for n in nodes)[0]
    pv = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pv_name, "labels": {"appliance.dev/e2e": "true"}},
          "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "persistentVolumeReclaimPolicy": "Delete",
                   "storageClassName": "", "claimRef": {"namespace": ns, "name": claim},
                   "hostPath": {"path": f"/var/lib/appliance-e2e/{ns}/{claim}", "type": "DirectoryOrCreate"},
                   "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                       {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}}}
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": claim, "namespace": ns},
           "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "", "volumeName": pv_name,
                    "resources": {"requests": {"storage": "1Gi"}}}}
    for create in (lambda: core.create_persistent_volume(pv), lambda: core.create_namespaced_persistent_volume_claim(ns, pvc)):
        try:
            create()
        except ApiException as e:
            if e.status != 409:
                raise
    print(f"pv {pv_name} on node {node}, claim {ns}/{claim}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
