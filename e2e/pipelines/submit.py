"""Submit a Hera pipeline as yourself and wait for it: `Workflow.to_dict()` → the Kubernetes API (the
`workflows.argoproj.io` custom objects of your namespace), with your own credentials — in a pod (a notebook)
its service account, elsewhere your kubeconfig (`appliance users show NAME` writes one holding only your token).

    python3 submit.py PIPELINE [--namespace NS] [--name NAME] [--param KEY=VALUE ...] [--timeout S]

PIPELINE is a module beside this file with `pipeline(**params)` returning a hera Workflow (or its dict) (train_serve, failing,
memoized, artifact, gpu_steps). Prints one line per step (phase, seconds, node, memoization, outputs) and
`workflow NAME PHASE: MESSAGE`; exit 0 when it Succeeded, 1 when not, 2 when the API refused it. In a notebook:

    from submit import submit, wait
    from train_serve import pipeline
    wf = wait(submit(pipeline()))
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path

GROUP, VERSION, PLURAL = "argoproj.io", "v1alpha1", "workflows"
DONE = ("Succeeded", "Failed", "Error")
SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def api():
    """Custom objects API with in-cluster config inside a pod (no KUBECONFIG), else the kubeconfig."""
    from kubernetes import client, config

    if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        config.load_incluster_config()
    else:
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))  # read now, not at import
    return client.CustomObjectsApi()


def default_namespace() -> str:
    """Where you work: the pod's namespace, else the kubeconfig context's."""
    if SA_NAMESPACE.exists() and not os.environ.get("KUBECONFIG"):
        return SA_NAMESPACE.read_text().strip()
    from kubernetes import config

    _, ctx = config.list_kube_config_contexts()
    return (ctx.get("context") or {}).get("namespace") or "default"


def submit(workflow, namespace: str | None = None, name: str | None = None) -> dict:
    """Create the workflow (a hera Workflow or its dict) in `namespace` (named `name` instead of its
    generated name); returns the created object."""
    body = workflow if isinstance(workflow, dict) else workflow.to_dict()
    meta = body.setdefault("metadata", {})
    meta["namespace"] = ns = namespace or meta.get("namespace") or default_namespace()
    if name:
        meta.pop("generateName", None)
        meta["name"] = name
    return api().create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body)


def wait(created: dict, timeout: float = 600, poll: float = 2) -> dict:
    """Poll until the workflow Succeeded, Failed or Error (or `timeout` seconds); returns it."""
    meta = created["metadata"]
    objs, deadline = api(), time.monotonic() + timeout
    while True:
        wf = objs.get_namespaced_custom_object(GROUP, VERSION, meta["namespace"], PLURAL, meta["name"])
        if (wf.get("status") or {}).get("phase") in DONE or time.monotonic() > deadline:
            return wf
        time.sleep(poll)


def _seconds(node: dict) -> float | None:
    if not node.get("startedAt") or not node.get("finishedAt"):
        return None
    t = [datetime.fromisoformat(node[k].replace("Z", "+00:00")) for k in ("startedAt", "finishedAt")]
    return (t[1] - t[0]).total_seconds()


def steps(wf: dict) -> list[dict]:
    """The workflow's steps (pods, resource actions, retries, skipped ones), in start order."""
    nodes = (wf.get("status") or {}).get("nodes") or {}
    out = []
    for n in sorted(nodes.values(), key=lambda n: (n.get("startedAt") or "~", n["displayName"])):
        if n["type"] in ("DAG", "Steps", "StepGroup"):
            continue
        outputs = {p["name"]: p.get("value") for p in ((n.get("outputs") or {}).get("parameters") or [])}
        out.append({"name": n["displayName"], "type": n["type"], "phase": n["phase"], "seconds": _seconds(n),
                    "node": n.get("hostNodeName", ""), "memoized": bool((n.get("memoizationStatus") or {}).get("hit")),
                    "message": n.get("message", ""), "outputs": outputs,
                    "artifacts": [a["name"] for a in ((n.get("outputs") or {}).get("artifacts") or [])]})
    return out


def report(wf: dict) -> str:
    lines = []
    for s in steps(wf):
        took = f"{s['seconds']:.0f}s" if s["seconds"] is not None else "-"
        extra = " ".join(filter(None, [f"on {s['node']}" if s["node"] else "", "memoized" if s["memoized"] else "",
                                       json.dumps(s["outputs"]) if s["outputs"] else "", s["message"]]))
        lines.append(f"  {s['name']:<28} {s['type']:<8} {s['phase']:<10} {took:>5} {extra}")
    st = wf.get("status") or {}
    lines.append(f"workflow {wf['metadata']['name']} {st.get('phase', 'Pending')}: {st.get('message', '')}".rstrip(": "))
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pipeline")
    ap.add_argument("--namespace")
    ap.add_argument("--name", help="the workflow's name (default: generated)")
    ap.add_argument("--param", action="append", default=[], help="KEY=VALUE passed to pipeline()")
    ap.add_argument("--timeout", type=float, default=600)
    a = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from kubernetes.client.exceptions import ApiException

    params = dict(p.split("=", 1) for p in a.param)
    try:
        wf = wait(submit(importlib.import_module(a.pipeline).pipeline(**params), a.namespace, a.name), a.timeout)
    except ApiException as e:
        print(f"refused: {e.status} {e.reason}: {json.loads(e.body or '{}').get('message', '') if (e.body or '').startswith('{') else ''}")
        return 2
    print(report(wf))
    return 0 if (wf.get("status") or {}).get("phase") == "Succeeded" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
