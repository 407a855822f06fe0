"""`NS JOB EXPERIMENT`: the PyTorchJob JOB and every trial of Katib experiment EXPERIMENT went through the
LocalQueue `default` of NS: each carries its label and has a Workload admitted by the ClusterQueue of NS."""

from __future__ import annotations

import sys

from jobs import KUEUE
from kubernetes import client, config


def main() -> None:
    config.load_kube_config()
    ns, job, experiment = sys.argv[1:4]
    crd = client.CustomObjectsApi()
    trials = [t["metadata"]["name"] for t in crd.list_namespaced_custom_object("kubeflow.org", "v1beta1", ns, "trials")["items"]
              if t["metadata"].get("labels", {}).get("katib.kubeflow.org/experiment") == experiment]
    owners = {w["metadata"]["ownerReferences"][0]["name"]: w for w in crd.list_namespaced_custom_object(*KUEUE, ns, "workloads")["items"]
              if w["metadata"].get("ownerReferences")}
    admitted = []
    for name in [job, *trials]:
        pt = crd.get_namespaced_custom_object("kubeflow.org", "v1", ns, "pytorchjobs", name)
        wl = owners.get(name)
        assert pt["metadata"].get("labels", {}).get("kueue.x-k8s.io/queue-name") == "default", (name, pt["metadata"].get("labels"))
        assert wl and wl["status"]["admission"]["clusterQueue"] == ns, (name, wl and wl.get("status"))
        admitted.append(name)
    assert len(trials) == 2, trials
    print(f"{len(admitted)} admitted through {ns}/default: {', '.join(admitted)}")


if __name__ == "__main__":
    main()
