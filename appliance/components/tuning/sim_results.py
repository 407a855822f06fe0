"""The simulator's stand-in for a trial's metrics collector. Pods on simulated (kwok) nodes run no code, so
when a trial's job has succeeded there, its metrics are the experiment's declared functions of the trial's
parameters, reported to db-manager as a collector would report what the trial printed:

    metadata:
      annotations:
        tuning.appliance.dev/simulated-metrics: '{"loss": "(log10(lr) + 1.2) ** 2 + 8 / epochs"}'

Expressions are arithmetic over the parameter names (+ - * / **, numbers, log, log10, exp, sqrt, abs, min,
max). Katib then picks the best trial and suggests the next ones as it would on real nodes. Trials of
experiments without the annotation are left alone (Katib waits for their metrics); a bad expression is
reported as a Warning event on the experiment.

    python -m appliance.components.tuning.sim_results --db-manager 127.0.0.1:PORT
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import operator
import sys
import time
from datetime import datetime, timezone

ANNOTATION = "tuning.appliance.dev/simulated-metrics"
KWOK_NODE = ("kwok.x-k8s.io/node", "fake")
GROUP, VERSION = "kubeflow.org", "v1beta1"
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.Pow: operator.pow, ast.USub: operator.neg, ast.UAdd: operator.pos}
_FUNCS = {"log": math.log, "log10": math.log10, "exp": math.exp, "sqrt": math.sqrt, "abs": abs, "min": min, "max": max}


def evaluate(expression: str, values: dict[str, float]) -> float:
    """The value of an arithmetic `expression` over `values`; ValueError naming what is not allowed."""
    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in values:
                raise ValueError(f"unknown name '{node.id}' (parameters: {', '.join(sorted(values))})")
            return values[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.operand))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS and not node.keywords:
            return _FUNCS[node.func.id](*[ev(a) for a in node.args])
        raise ValueError(f"'{ast.unparse(node)}' is not allowed (arithmetic, numbers, parameters, {', '.join(_FUNCS)})")
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as e:
        raise ValueError(f"not an expression: {e.msg}") from None
    try:
        return float(ev(tree))
    except (ArithmeticError, TypeError) as e:
        raise ValueError(str(e)) from None


def metrics(annotation: str, assignments: list[dict]) -> dict[str, float]:
    """Each declared metric's value for a trial's parameter assignments."""
    declared = json.loads(annotation)
    if not isinstance(declared, dict) or not all(isinstance(v, str) for v in declared.values()):
        raise ValueError('the annotation is a JSON object {"metric": "expression", ...}')
    values = {a["name"]: float(a["value"]) for a in assignments}
    return {name: evaluate(expr, values) for name, expr in declared.items()}


def _succeeded(job: dict) -> bool:
    return any(c.get("type") in ("Complete", "Succeeded") and c.get("status") == "True"
               for c in (job.get("status") or {}).get("conditions") or [])


class Reporter:
    """One pass over the cluster's trials (`once`): report the simulated metrics of each trial whose job
    succeeded on simulated nodes and has none yet."""

    def __init__(self, api_client, db_manager: str):
        import grpc
        from kubeflow.katib import katib_api_pb2, katib_api_pb2_grpc
        from kubernetes import client, dynamic

        self.pb = katib_api_pb2
        self.db = katib_api_pb2_grpc.DBManagerStub(grpc.insecure_channel(db_manager))
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)
        self.dynamic = dynamic.DynamicClient(api_client)
        self.done: set[str] = set()
        self.warned: set[str] = set()

    def _on_simulated_nodes(self, ns: str, job: dict) -> bool:
        uid = job["metadata"]["uid"]
        pods = [p for p in self.core.list_namespaced_pod(ns).items
                if any(r.uid == uid for r in p.metadata.owner_references or [])]
        nodes = {p.spec.node_name for p in pods if p.spec.node_name}
        return bool(nodes) and all((self.core.read_node(n).metadata.annotations or {}).get(KWOK_NODE[0]) == KWOK_NODE[1] for n in nodes)

    def _warn(self, experiment: dict, message: str) -> None:
        m = experiment["metadata"]
        if m["uid"] in self.warned:
            return
        self.warned.add(m["uid"])
        from kubernetes import client

        now = datetime.now(timezone.utc)
        self.core.create_namespaced_event(m["namespace"], client.CoreV1Event(
            metadata=client.V1ObjectMeta(generate_name=f"{m['name']}."), type="Warning", reason="SimulatedMetricsInvalid",
            message=f"annotation {ANNOTATION}: {message}", first_timestamp=now, last_timestamp=now, count=1,
            involved_object=client.V1ObjectReference(api_version=f"{GROUP}/{VERSION}", kind="Experiment", name=m["name"],
                                                     namespace=m["namespace"], uid=m["uid"]),
            source=client.V1EventSource(component="appliance-sim-results")))
        print(f"{m['namespace']}/{m['name']}: {message}", flush=True)

    def report(self, trial: dict, values: dict[str, float]) -> None:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        logs = [self.pb.MetricLog(time_stamp=stamp, metric=self.pb.Metric(name=k, value=repr(v))) for k, v in values.items()]
        self.db.ReportObservationLog(self.pb.ReportObservationLogRequest(
            trial_name=trial["metadata"]["name"], observation_log=self.pb.ObservationLog(metric_logs=logs)), timeout=10)

    def once(self) -> int:
        reported = 0
        for trial in self.custom.list_cluster_custom_object(GROUP, VERSION, "trials")["items"]:
            m, status = trial["metadata"], trial.get("status") or {}
            if m["uid"] in self.done or status.get("observation") or status.get("completionTime"):
                continue
            owner = next((r for r in m.get("ownerReferences") or [] if r["kind"] == "Experiment"), None)
            run = (trial.get("spec") or {}).get("runSpec") or {}
            if not owner or not run:
                continue
            experiment = self.custom.get_namespaced_custom_object(GROUP, VERSION, m["namespace"], "experiments", owner["name"])
            annotation = (experiment["metadata"].get("annotations") or {}).get(ANNOTATION)
            if not annotation:
                continue
            try:
                job = self.dynamic.resources.get(api_version=run["apiVersion"], kind=run["kind"]).get(
                    name=m["name"], namespace=m["namespace"]).to_dict()
            except Exception:  # noqa: BLE001 - not made yet, or gone: next pass
                continue
            if not (_succeeded(job) and self._on_simulated_nodes(m["namespace"], job)):
                continue
            try:
                values = metrics(annotation, (trial.get("spec") or {}).get("parameterAssignments") or [])
            except ValueError as e:
                self._warn(experiment, str(e))
                continue
            self.report(trial, values)
            self.done.add(m["uid"])
            reported += 1
            print(f"{m['namespace']}/{m['name']}: {', '.join(f'{k}={v:.6g}' for k, v in values.items())}", flush=True)
        return reported


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db-manager", required=True, help="db-manager's gRPC address (host:port)")
    ap.add_argument("--interval", type=float, default=1.0)
    a = ap.parse_args(argv)
    from appliance.kube import api_client

    reporter = Reporter(api_client(), a.db_manager)
    print(f"reporting simulated trial metrics to {a.db_manager}", flush=True)
    while True:
        try:
            reporter.once()
        except Exception as e:  # noqa: BLE001 - the API or db-manager briefly away: next pass
            print(f"pass failed: {str(e).splitlines()[0][:300]}", flush=True)
        time.sleep(a.interval)


if __name__ == "__main__":
    sys.exit(main())
