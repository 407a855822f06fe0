"""Checks for the Katib scenarios (tune-*), run with the scenario's KUBECONFIG.

  tune.py optimum NS EXPERIMENT            every trial's parameters distinct and inside the experiment's feasible space
                                           (its own study's), the best trial's loss Katib's optimum
  tune.py best-worst NS EXPERIMENT         the optimum as above, and the best trial's loss beats the worst by a clear
                                           margin (x2)
  tune.py restart-database NS EXPERIMENT   once 2 trials succeeded: delete the database pod, wait for its return,
                                           check the observation logs stored before are all still there (admin)
  tune.py gpu-trials NS EXPERIMENT         (simulator) each trial's pod ran on an H100 node with 8 GPUs, at most 16
                                           GPUs at once, and its loss is the function the experiment declares
"""

from __future__ import annotations

import math
import sys
import time

from kubernetes import client, config
from kubernetes.stream import stream

GROUP, VERSION = "kubeflow.org", "v1beta1"
DB_NS, DB_POD = "database", "postgres-0"


def _api():
    config.load_kube_config()
    return client.CustomObjectsApi(), client.CoreV1Api()


def _loss(observed: dict) -> float | None:
    """The loss in an observation (a trial's status, or the experiment's currentOptimalTrial)."""
    for m in (observed.get("observation") or {}).get("metrics") or []:
        if m["name"] == "loss":
            return float(m["latest"])
    return None


def _in_space(value: str, spec: dict) -> bool:
    """A trial's parameter `value` inside its experiment's feasible space (min..max, or the listed values)."""
    space = spec["feasibleSpace"]
    if space.get("list"):
        return value in space["list"]
    return float(space["min"]) <= float(value) <= float(space["max"])


def optimum(ns: str, name: str) -> list[tuple[float, str, dict]]:
    """Check the trials' parameters and Katib's optimum; return (loss, trial, parameters), best first."""
    crd, _ = _api()
    exp = crd.get_namespaced_custom_object(GROUP, VERSION, ns, "experiments", name)
    trials = crd.list_namespaced_custom_object(GROUP, VERSION, ns, "trials", label_selector=f"katib.kubeflow.org/experiment={name}")["items"]
    specs = {p["name"]: p for p in exp["spec"]["parameters"]}
    assigned = [{p["name"]: p["value"] for p in t["spec"]["parameterAssignments"]} for t in trials]
    outside = [(t["metadata"]["name"], a) for t, a in zip(trials, assigned, strict=True)
               if a.keys() != specs.keys() or not all(_in_space(v, specs[k]) for k, v in a.items())]
    assert not outside, f"trials outside the experiment's parameters {specs}: {outside}"
    assert len({tuple(sorted(a.items())) for a in assigned}) == len(assigned), f"trials suggested twice: {assigned}"
    scored = sorted((loss, t["metadata"]["name"], a) for t, a in zip(trials, assigned, strict=True)
                    if (loss := _loss(t.get("status") or {})) is not None)
    print(f"{len(trials)} trials, {len(scored)} with a loss:")
    for loss, trial, params in scored:
        print(f"  {trial}: loss={loss:.6g} {params}")
    assert len(scored) >= 4, "fewer than 4 trials reported a loss"
    optimal = _loss(exp["status"]["currentOptimalTrial"])
    assert optimal == scored[0][0], f"Katib's optimal trial has loss {optimal}, the best trial {scored[0][0]}"
    print(f"the optimum is the best of {len(scored)} distinct trials in the feasible space: {scored[0][0]:.6g} ({scored[0][1]})")
    return scored


def best_worst(ns: str, name: str) -> None:
    (best, best_name, best_params), (worst, _, worst_params) = (scored := optimum(ns, name))[0], scored[-1]
    assert best * 2 < worst, f"best loss {best} does not beat worst {worst} by x2"
    print(f"best beats worst: {best:.6g} ({best_name} {best_params}) vs {worst:.6g} ({worst_params})")


def _simulated_loss(lr: float, epochs: float) -> float:
    """The loss tune-gpu-sim declares (its annotation), computed here on its own."""
    return (math.log10(lr) + 1.5) ** 2 + 8 / epochs


def gpu_trials(ns: str, name: str) -> None:
    crd, core = _api()
    trials = crd.list_namespaced_custom_object(GROUP, VERSION, ns, "trials", label_selector=f"katib.kubeflow.org/experiment={name}")["items"]
    spans = []
    for t in trials:
        trial = t["metadata"]["name"]
        (pod,) = core.list_namespaced_pod(ns, label_selector=f"training.kubeflow.org/job-name={trial}").items
        node = core.read_node(pod.spec.node_name)
        gpus = pod.spec.containers[0].resources.requests["nvidia.com/gpu"]
        assert node.metadata.labels.get("nvidia.com/gpu.product") == "NVIDIA-H100-80GB-HBM3" and gpus == "8", (trial, node.metadata.name, gpus)
        state = pod.status.container_statuses[0].state.terminated
        spans.append((state.started_at, state.finished_at))
        params = {p["name"]: float(p["value"]) for p in t["spec"]["parameterAssignments"]}
        loss = _loss(t["status"])
        assert loss is not None and math.isclose(loss, _simulated_loss(params["lr"], params["epochs"]), rel_tol=1e-9), (trial, loss, params)
        print(f"  {trial}: {node.metadata.name} 8 GPUs lr={params['lr']:.4g} epochs={params['epochs']:.0f} loss={loss:.6g}")
    peak = max(sum(1 for a, b in spans if a <= t < b) for t, _ in spans) * 8
    print(f"{len(trials)} trials on H100 nodes, at most {peak} GPUs at once")


def _rows(core) -> dict[str, int]:
    """observation_logs rows per trial, read inside the database pod with Katib's own login."""
    sql = "select trial_name, count(*) from observation_logs group by 1"
    cmd = ["sh", "-c", "PGPASSWORD=$(cat /etc/database/credentials/katib) /usr/lib/postgresql/15/bin/psql "
           f"-h 127.0.0.1 -U katib -d katib -tA -F' ' -c '{sql}'"]
    out = stream(core.connect_get_namespaced_pod_exec, DB_POD, DB_NS, command=cmd, stdout=True, stderr=True, stdin=False, tty=False)
    return {t: int(n) for t, n in (line.split() for line in out.splitlines() if line.strip())}


def restart_database(ns: str, name: str) -> None:
    crd, core = _api()
    while True:
        exp = crd.get_namespaced_custom_object(GROUP, VERSION, ns, "experiments", name)
        done = (exp.get("status") or {}).get("succeededTrialList") or []
        if len(done) >= 2:
            break
        time.sleep(2)
    before = {t: n for t, n in _rows(core).items() if t in done}
    assert len(before) == len(done), f"succeeded trials {done} but logs only for {sorted(before)}"
    old = core.read_namespaced_pod(DB_POD, DB_NS).metadata.uid
    t0 = time.monotonic()
    core.delete_namespaced_pod(DB_POD, DB_NS)
    print(f"deleted {DB_NS}/{DB_POD} with {sum(before.values())} log rows of {len(before)} trials stored", flush=True)
    while True:
        try:
            pod = core.read_namespaced_pod(DB_POD, DB_NS)
        except client.ApiException:
            pod = None
        if pod and pod.metadata.uid != old and any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or []):
            break
        time.sleep(1)
    print(f"database back in {time.monotonic() - t0:.1f}s", flush=True)
    after = _rows(core)
    lost = {t: (n, after.get(t, 0)) for t, n in before.items() if after.get(t, 0) < n}
    assert not lost, f"rows lost (before, after): {lost}"
    print(f"observation logs kept: {sum(before.values())} rows of {len(before)} trials")


if __name__ == "__main__":
    cmds = {"optimum": optimum, "best-worst": best_worst, "restart-database": restart_database, "gpu-trials": gpu_trials}
    if len(sys.argv) != 4 or sys.argv[1] not in cmds:
        sys.exit(__doc__)
    cmds[sys.argv[1]](sys.argv[2], sys.argv[3])
