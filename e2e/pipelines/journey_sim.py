"""The journey on the simulator (journey-gpu-sim): what its pipeline's resource steps do on kind, done here
as the user, and the checks of where everything ran. Run on the host with the scenario's KUBECONFIG.

  journey_sim.py train NS EXPERIMENT JOB   (as the user) a 2 x 8-GPU PyTorchJob with the experiment's best
                                           parameters (read with the Katib SDK)
  journey_sim.py placed NS JOB             (admin) the job succeeded, its ranks on two H100 nodes, 16 GPUs
  journey_sim.py served NS NAME REVISION   (admin) the InferenceService is Ready, its predictor Deployment at
                                           REVISION, rolled out, on an H100 node
  journey_sim.py gpus NS                   (admin) every pod and workflow step that asked for GPUs ran on an H100
                                           node; the most GPUs held at once (the quota's refusals are the
                                           scenario's own step); their timeline drawn in $E2E_ARTIFACTS
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

GPU = "NVIDIA-H100-80GB-HBM3"
RUN_TIME = "12s"


def _core():
    from kubernetes import client, config

    config.load_kube_config()
    return client.CoreV1Api()


def _rank(args: list[str]) -> dict:
    return {"replicas": 1, "restartPolicy": "Never", "template": {
        "metadata": {"annotations": {"appliance.dev/sim-run-time": RUN_TIME}},
        "spec": {"nodeSelector": {"nvidia.com/gpu.product": GPU},
                 "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                 "containers": [{"name": "pytorch", "image": "appliance.local/trainer:stub", "command": ["python3", "/app/stub_train.py"],
                                 "args": args, "resources": {"requests": {"nvidia.com/gpu": "8", "cpu": "16", "memory": "64Gi"},
                                                             "limits": {"nvidia.com/gpu": "8"}}}]}}}


def train(ns: str, experiment: str, job: str) -> None:
    from kubeflow.katib import KatibClient
    from kubernetes import client

    best = KatibClient(namespace=ns).get_optimal_hyperparameters(experiment, ns)
    params = {p.name: p.value for p in best.parameter_assignments}
    args = [f"--lr={params['lr']}", f"--epochs={params['epochs']}", "--out=/tmp/model"]
    client.CustomObjectsApi().create_namespaced_custom_object("kubeflow.org", "v1", ns, "pytorchjobs", {
        "apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": {"name": job, "namespace": ns},
        "spec": {"runPolicy": {"cleanPodPolicy": "None", "backoffLimit": 0},
                 "pytorchReplicaSpecs": {"Master": _rank(args), "Worker": _rank(args)}}})
    print(f"{job} created with the best parameters {params} of {experiment}")


def placed(ns: str, job: str, timeout: float = 170) -> None:
    from kubernetes import client

    core, crd = _core(), client.CustomObjectsApi()
    deadline = time.monotonic() + timeout
    while True:
        conds = {c["type"]: c["status"] for c in (crd.get_namespaced_custom_object("kubeflow.org", "v1", ns, "pytorchjobs", job).get("status") or {})
                 .get("conditions") or []}
        if conds.get("Succeeded") == "True" or conds.get("Failed") == "True" or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert conds.get("Succeeded") == "True", f"{job}: {conds}"
    pods = core.list_namespaced_pod(ns, label_selector=f"training.kubeflow.org/job-name={job}").items
    nodes = {p.spec.node_name for p in pods}
    gpus = sum(int(c.resources.requests.get("nvidia.com/gpu", 0)) for p in pods for c in p.spec.containers if c.resources.requests)
    assert all(core.read_node(n).metadata.labels.get("nvidia.com/gpu.product") == GPU for n in nodes), nodes
    assert len(pods) == 2 and len(nodes) == 2 and gpus == 16, (len(pods), nodes, gpus)
    print(f"{job} Succeeded: 2 pods on 2 H100 nodes, 16 GPUs ({', '.join(sorted(nodes))})")


def served(ns: str, name: str, revision: str, timeout: float = 110) -> None:
    from kubernetes import client

    core, apps, crd = _core(), client.AppsV1Api(), client.CustomObjectsApi()
    deadline = time.monotonic() + timeout
    while True:
        dep = apps.read_namespaced_deployment(f"{name}-predictor", ns)
        isvc = crd.get_namespaced_custom_object("serving.kserve.io", "v1beta1", ns, "inferenceservices", name)
        ready = {c["type"]: c["status"] for c in (isvc.get("status") or {}).get("conditions") or []}.get("Ready") == "True"
        s = dep.status
        rolled = (dep.metadata.annotations.get("deployment.kubernetes.io/revision") == revision and s.observed_generation == dep.metadata.generation
                  and s.replicas == s.updated_replicas == s.available_replicas == 1)
        if (ready and rolled) or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert ready and rolled, f"{name}: Ready {ready}, revision {dep.metadata.annotations.get('deployment.kubernetes.io/revision')}, {s}"
    (pod,) = [p for p in core.list_namespaced_pod(ns, label_selector=f"serving.kserve.io/inferenceservice={name}").items
              if not p.metadata.deletion_timestamp]
    node = core.read_node(pod.spec.node_name)
    assert node.metadata.labels.get("nvidia.com/gpu.product") == GPU, node.metadata.labels
    print(f"{name} revision {revision} Ready on {node.metadata.name}")


def _gpus(pod) -> int:
    return sum(int((c.resources.requests or {}).get("nvidia.com/gpu", 0)) for c in pod.spec.containers if c.resources)


def gpus(ns: str) -> None:
    core = _core()
    quota = sum(int(q.spec.hard.get("requests.nvidia.com/gpu", 0)) for q in core.list_namespaced_resource_quota(ns).items)
    now = datetime.now(timezone.utc)
    spans, owners = [], Counter()
    for pod in core.list_namespaced_pod(ns).items:
        if not (n := _gpus(pod)):
            continue
        node = core.read_node(pod.spec.node_name)
        assert node.metadata.labels.get("nvidia.com/gpu.product") == GPU, (pod.metadata.name, node.metadata.name)
        states = [s.state for s in pod.status.container_statuses or []]
        start = min((s.running or s.terminated).started_at for s in states if s.running or s.terminated)
        end = max((s.terminated.finished_at if s.terminated else now) for s in states)
        spans.append((start, end, n, pod.metadata.name, node.metadata.name))
        kind = (pod.metadata.owner_references or [None])[0]
        owners[kind.kind if kind else "none"] += 1
        print(f"  {pod.metadata.name}: {n} GPUs on {node.metadata.name}, {(end - start).total_seconds():.0f}s")
    from kubernetes import client

    for wf in client.CustomObjectsApi().list_namespaced_custom_object("argoproj.io", "v1alpha1", ns, "workflows")["items"]:
        templates = {t["name"]: t for t in wf["spec"]["templates"]}  # its pods are gone once they succeed (pod GC)
        for step in (wf.get("status") or {}).get("nodes", {}).values():
            requests = ((templates.get(step.get("templateName")) or {}).get("container") or {}).get("resources", {}).get("requests", {})
            if step["type"] != "Pod" or not (n := int(requests.get("nvidia.com/gpu", 0))):
                continue
            node = core.read_node(step["hostNodeName"])
            assert node.metadata.labels.get("nvidia.com/gpu.product") == GPU, (step["displayName"], node.metadata.name)
            start, end = (datetime.fromisoformat(step[k].replace("Z", "+00:00")) for k in ("startedAt", "finishedAt"))
            spans.append((start, end, n, f"{wf['metadata']['name']}/{step['displayName']}", node.metadata.name))
            owners["Workflow"] += 1
            print(f"  {wf['metadata']['name']}/{step['displayName']}: {n} GPUs on {node.metadata.name}, {(end - start).total_seconds():.0f}s")
    peak = max(sum(g for a, b, g, *_ in spans if a <= t < b) for t, *_ in spans)
    from journey_check import gantt_svg

    out = Path(os.environ.get("E2E_ARTIFACTS", "."))
    out.mkdir(parents=True, exist_ok=True)
    (out / "journey-3-gpus.svg").write_text(gantt_svg(
        "GPU steps (GPUs, node)", [(label, a.timestamp(), b.timestamp(), f"{g} GPUs on {node}", "#0969da" if g >= 8 else "#1a7f37")
                                   for a, b, g, label, node in spans]))
    print(f"{len(spans)} GPU steps on H100 nodes ({', '.join(f'{k} {v}' for k, v in sorted(owners.items()))}), "
          f"at most {peak} GPUs at once (quota {quota})")


if __name__ == "__main__":
    from journey_check import cli

    sys.exit(cli(__doc__, {"train": train, "placed": placed, "served": served, "gpus": gpus}, sys.argv[1:]))
