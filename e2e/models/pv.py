"""Scenario helper (the cluster admin's part): a hostPath PersistentVolume pinned to one schedulable node,
reserved for the claim NAMESPACE/CLAIM, which the user then creates with their own token.

    python3 ../models/pv.py NAMESPACE CLAIM [--delete]

Every pod using the claim lands on the PV's node, so a trainer's output is there for the model server."""

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
        try:
            core.delete_persistent_volume(pv_name)
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
    try:
        core.create_persistent_volume(pv)
    except ApiException as e:
        if e.status != 409:
            raise
    print(f"pv {pv_name} on node {node} for claim {ns}/{claim}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
