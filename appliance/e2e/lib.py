"""Helpers for a scenario's `script` steps: submit a workflow and wait for it, wait for a job, ask a served
model, act as a user. Each waits at most `timeout` seconds and raises `Failed`, a one-line reason naming what
it saw last. `kubeconfig` defaults to $KUBECONFIG: in a script step the runner's admin one, or the `as:`
identity's (its namespace is then the default one).

From a script step (the runner's Python is first on PATH); each prints one line, or `FAILED: why` and exits 1:

    python3 -m appliance.e2e.lib workflow pipeline.yaml --timeout 300     # also a .py with pipeline() -> Hera Workflow
    python3 -m appliance.e2e.lib job PyTorchJob user-alice/my-train --timeout 300
    python3 -m appliance.e2e.lib predict user-alice/my-model '{"instances": [[1.0, 2.0]]}'
    KUBECONFIG=$(python3 -m appliance.e2e.lib kubeconfig user-bob/bob) kubectl get pods -n user-bob

From Python: `from appliance.e2e import lib; lib.wait_job("Job", "my-job", "user-alice", timeout=120)`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

from appliance.util import wait

WORKFLOW = ("argoproj.io/v1alpha1", "Workflow")
#: job kinds `wait_job` knows: kind → (apiVersion, the condition type that means it succeeded)
JOBS = {"Job": ("batch/v1", "Complete"), "PyTorchJob": ("kubeflow.org/v1", "Succeeded"),
        "TFJob": ("kubeflow.org/v1", "Succeeded"), "MPIJob": ("kubeflow.org/v1", "Succeeded")}


class Failed(Exception):
    """A wait or a request that did not succeed; its message is one line."""


def kube(kubeconfig: str | Path | None = None):
    """An `appliance.kube.Kube` from `kubeconfig` (default: $KUBECONFIG, else ~/.kube/config)."""
    from appliance.kube import Kube

    return Kube(kubeconfig or os.environ.get("KUBECONFIG") or Path.home() / ".kube" / "config")


def kubeconfig_as(identity: str, admin=None, folder: Path | None = None, seconds: int = 600) -> Path:
    """A kubeconfig file holding only a fresh token (valid `seconds`) of service account `namespace/name`,
    its namespace the default one; `admin`: a `Kube` or kubeconfig allowed to request it (default $KUBECONFIG);
    written into `folder` (default $E2E_TMP, the script step's own, else a new temporary folder)."""
    ns, _, account = identity.partition("/")
    if not (ns and account):
        raise Failed(f"'{identity}' is not namespace/serviceaccount")
    admin = admin if admin is not None and not isinstance(admin, (str, Path)) else kube(admin)
    folder = Path(folder or os.environ.get("E2E_TMP") or tempfile.mkdtemp(prefix="appliance-e2e-"))
    path = folder / f"kubeconfig-{ns}-{account}"
    try:
        config = admin.kubeconfig_for(ns, account, seconds, "e2e")
    except Exception as e:  # noqa: BLE001 — any API error is the one line
        raise Failed(f"no token for {identity}: {_reason(e)}") from None
    import yaml

    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def namespace_of(kubeconfig: str | Path | None = None) -> str:
    """The kubeconfig's current namespace (an `as:` step's: its user's), else `default`."""
    from kubernetes import config

    _, ctx = config.list_kube_config_contexts(config_file=str(kubeconfig) if kubeconfig else None)
    return (ctx.get("context") or {}).get("namespace") or "default"


def _poll(read: Callable[[], dict | None], done: Callable[[dict], bool], timeout: float, poll: float) -> tuple[bool, dict | None, str]:
    """Read until `done(obj)` or `timeout` s; (done, the last object read, why not: an API error's line)."""
    last: dict[str, Any] = {}

    def check() -> tuple[bool, str]:
        last["obj"] = obj = read()
        return (obj is not None and done(obj)), "" if obj is not None else "not found"

    ok, missing = wait.within(check, timeout, interval=poll, lenient=True)
    return ok, last.get("obj"), missing


def _read(k, api_version: str, kind: str, name: str, namespace: str) -> Callable[[], dict | None]:
    def read() -> dict | None:
        obj = k.get(api_version, kind, name, namespace)
        return obj.to_dict() if obj is not None else None
    return read


# ----------------------------------------------------------------------------- workflows

def with_images(text: str, images: dict[str, str] | None = None, strict: bool = True) -> str:
    """`text` with each `${images.NAME}` replaced by the reference of the image a scenario's build step made
    (`images`, default $E2E_IMAGES: the runner gives scripts the scenario's, as JSON); one not built is
    `Failed` (not `strict`: left as written)."""
    from appliance.e2e.scenario import IMAGE_REF

    images = json.loads(os.environ.get("E2E_IMAGES") or "{}") if images is None else images

    def ref(m) -> str:
        if m[1] in images or not strict:
            return images.get(m[1], m[0])
        raise Failed(f"${{images.{m[1]}}}: no earlier build step of this scenario made an image of that name")

    return IMAGE_REF.sub(ref, text)


def workflow_body(workflow) -> dict:
    """A Workflow's dict from a YAML/JSON file (`${images.NAME}` replaced: `with_images`), a `.py` file whose `pipeline()` returns a Hera Workflow (or its
    dict), a Hera Workflow, or a dict (copied)."""
    if isinstance(workflow, (str, Path)):
        path = Path(workflow)
        if not path.is_file():
            raise Failed(f"no workflow file {path}")
        if path.suffix == ".py":
            spec = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(spec)
            sys.path.insert(0, str(path.parent.resolve()))  # its own imports beside it
            try:
                spec.loader.exec_module(module)
                made = module.pipeline()
            except Exception as e:  # noqa: BLE001 — the user's module: its error is the one line
                raise Failed(f"{path}: pipeline() failed: {_reason(e)}") from None
            return workflow_body(made)
        import yaml

        return workflow_body(yaml.safe_load(with_images(path.read_text())))
    body = workflow if isinstance(workflow, dict) else workflow.to_dict()
    if body.get("kind") != "Workflow":
        raise Failed(f"not a Workflow (kind {body.get('kind')!r})")
    return json.loads(json.dumps(body))


def workflow_outcome(wf: dict) -> str:
    """One line: the workflow's phase and message, and each failed step with its message."""
    st = wf.get("status") or {}
    bad = [f"{n.get('displayName')} ({n.get('message', '').strip() or n.get('phase')})" for n in (st.get("nodes") or {}).values()
           if n.get("type") not in ("DAG", "Steps", "StepGroup") and n.get("phase") in ("Failed", "Error")]
    line = f"workflow {wf['metadata'].get('namespace')}/{wf['metadata']['name']} {st.get('phase') or 'Pending'}"
    line += f": {st['message']}" if st.get("message") else ""
    return line + (f"; failed steps: {', '.join(sorted(bad))}" if bad else "")


def submit_workflow(workflow, namespace: str | None = None, name: str | None = None, timeout: float = 600,
                    kubeconfig: str | Path | None = None, poll: float = 2.0) -> dict:
    """Create a workflow (see `workflow_body`) in `namespace` (default: its own, else the kubeconfig's), named
    `name` if given, and wait until it Succeeded; returns it. `Failed`: refused, Failed/Error, or still running."""
    body = workflow_body(workflow)
    meta = body.setdefault("metadata", {})
    meta["namespace"] = ns = namespace or meta.get("namespace") or namespace_of(kubeconfig)
    if name:
        meta.pop("generateName", None)
        meta["name"] = name
    k = kube(kubeconfig)
    try:
        created = k.dynamic.resources.get(api_version=WORKFLOW[0], kind=WORKFLOW[1]).create(body=body, namespace=ns)
    except Exception as e:  # noqa: BLE001 — refused (RBAC, admission) or no Argo: the one line
        raise Failed(f"workflow {ns}/{meta.get('name') or meta.get('generateName', '')} refused: {_reason(e)}") from None
    return wait_workflow(created.metadata.name, ns, timeout, kubeconfig, poll)


def wait_workflow(name: str, namespace: str, timeout: float = 600, kubeconfig: str | Path | None = None, poll: float = 2.0) -> dict:
    """Wait until workflow `namespace/name` Succeeded; returns it. `Failed`: Failed/Error, or not done in time."""
    done, wf, why = _poll(_read(kube(kubeconfig), *WORKFLOW, name, namespace),
                          lambda o: (o.get("status") or {}).get("phase") in ("Succeeded", "Failed", "Error"), timeout, poll)
    if wf is None:
        raise Failed(f"workflow {namespace}/{name}: {why} after {timeout:.0f}s")
    if not done:
        raise Failed(f"{workflow_outcome(wf)} after {timeout:.0f}s")
    if wf["status"]["phase"] != "Succeeded":
        raise Failed(workflow_outcome(wf))
    return wf


# ----------------------------------------------------------------------------- jobs

def job_outcome(kind: str, job: dict) -> str | None:
    """'Succeeded' or 'Failed' once the job (a kind of `JOBS`) ended by its conditions, else None."""
    success = JOBS[kind][1]
    true = {c.get("type") for c in (job.get("status") or {}).get("conditions") or [] if str(c.get("status")) == "True"}
    return "Succeeded" if success in true else "Failed" if "Failed" in true else None


def _conditions(job: dict) -> str:
    conds = (job.get("status") or {}).get("conditions") or []
    return "; ".join(f"{c.get('type')}={c.get('status')} {c.get('reason') or ''} {c.get('message') or ''}".strip() for c in conds) or "no conditions"


def wait_job(kind: str, name: str, namespace: str | None = None, timeout: float = 600, kubeconfig: str | Path | None = None,
             poll: float = 2.0) -> dict:
    """Wait until the job succeeded (a batch Job Complete; a PyTorchJob, TFJob or MPIJob Succeeded); returns it.
    `Failed`: it failed, or has not ended in time (with its conditions)."""
    if kind not in JOBS:
        raise Failed(f"unknown job kind '{kind}': one of {', '.join(JOBS)}")
    namespace = namespace or namespace_of(kubeconfig)
    done, job, why = _poll(_read(kube(kubeconfig), JOBS[kind][0], kind, name, namespace), lambda o: job_outcome(kind, o) is not None,
                           timeout, poll)
    if job is None:
        raise Failed(f"{kind} {namespace}/{name}: {why} after {timeout:.0f}s")
    if not done:
        raise Failed(f"{kind} {namespace}/{name} has not ended after {timeout:.0f}s: {_conditions(job)}")
    if job_outcome(kind, job) != "Succeeded":
        raise Failed(f"{kind} {namespace}/{name} failed: {_conditions(job)}")
    return job


# ----------------------------------------------------------------------------- served models

def post(cfg, ns: str, svc: str, path: str, body: dict, timeout: float = 30):
    """POST JSON to Service `svc` (`name:port`) of namespace `ns` through the API server's service proxy, with a
    kubernetes client Configuration's credentials (plain urllib: independent of the generated API's version)."""
    import ssl
    import urllib.request

    ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert if cfg.verify_ssl else None)
    if not cfg.verify_ssl:
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    if cfg.cert_file:
        ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    token = (cfg.api_key or {}).get("authorization") or (cfg.api_key or {}).get("BearerToken")
    if token:
        headers["Authorization"] = token if token.lower().startswith("bearer ") else f"Bearer {token}"
    req = urllib.request.Request(f"{cfg.host}/api/v1/namespaces/{ns}/services/{svc}/proxy{path}",
                                 data=json.dumps(body).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(req, context=ctx, timeout=timeout) as r:
        return json.loads(r.read())


def predict_path(model: str, protocol: str) -> str:
    """The predict route of KServe's v1 or v2 (Open Inference) protocol."""
    if protocol not in ("v1", "v2"):
        raise Failed(f"unknown protocol '{protocol}': v1 or v2")
    return f"/v1/models/{model}:predict" if protocol == "v1" else f"/v2/models/{model}/infer"


def predict(service: str, body: dict, namespace: str | None = None, protocol: str = "v1", port: int = 80, timeout: float = 120,
            kubeconfig: str | Path | None = None, poll: float = 2.0) -> dict:
    """Send `body` to InferenceService `service`'s predictor (v1 `instances`, v2 `inputs`) through the API
    server's service proxy (no port-forward, no ingress), again until it answers (a model still loading) or
    `timeout`; returns the answer. `Failed`: no answer in time, with the last error."""
    namespace = namespace or namespace_of(kubeconfig)
    cfg = kube(kubeconfig).api.configuration
    path, answer = predict_path(service, protocol), {}

    def ask() -> tuple[bool, str]:
        answer["body"] = post(cfg, namespace, f"{service}-predictor:{port}", path, body)
        return True, ""

    ok, why = wait.within(ask, timeout, interval=poll, lenient=True)
    if not ok:
        raise Failed(f"InferenceService {namespace}/{service} gave no answer to {path} within {timeout:.0f}s: {why}")
    return answer["body"]


def describe(e: Exception) -> str:
    """An error as a reason; an API error is its status code and the API server's message (no headers)."""
    body = getattr(e, "body", None)
    try:
        msg = json.loads(body)["message"] if body else ""
    except (ValueError, KeyError, TypeError):
        msg = ""
    return f"{type(e).__name__}: {getattr(e, 'status', '')} {msg}".strip() if msg else f"{type(e).__name__}: {e}"


def _reason(e: Exception) -> str:
    return " ".join(describe(e).split())[:400]


def _name(text: str) -> tuple[str | None, str]:
    ns, _, name = text.rpartition("/")
    return ns or None, name


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m appliance.e2e.lib", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    w = sub.add_parser("workflow", help="submit a Workflow (YAML, or a .py whose pipeline() returns a Hera Workflow) and wait")
    w.add_argument("file")
    w.add_argument("--namespace")
    w.add_argument("--name", help="its name (default: the file's, else generated)")
    j = sub.add_parser("job", help="wait for a Job, PyTorchJob, TFJob or MPIJob to succeed")
    j.add_argument("kind", choices=sorted(JOBS))
    j.add_argument("name", metavar="[NAMESPACE/]NAME")
    p = sub.add_parser("predict", help="ask an InferenceService; prints its answer")
    p.add_argument("service", metavar="[NAMESPACE/]NAME")
    p.add_argument("body", help="the request's JSON")
    p.add_argument("--protocol", choices=["v1", "v2"], default="v1")
    p.add_argument("--port", type=int, default=80)
    u = sub.add_parser("kubeconfig", help="write a kubeconfig for a service account's token; prints its path")
    u.add_argument("identity", metavar="NAMESPACE/SERVICEACCOUNT")
    for s in (w, j, p):
        s.add_argument("--timeout", type=float, default=600, help="seconds (default 600)")
    a = ap.parse_args(argv)
    try:
        if a.command == "workflow":
            wf = submit_workflow(a.file, a.namespace, a.name, a.timeout)
            print(f"workflow {wf['metadata']['namespace']}/{wf['metadata']['name']} Succeeded")
        elif a.command == "job":
            ns, name = _name(a.name)
            job = wait_job(a.kind, name, ns, a.timeout)
            print(f"{a.kind} {job['metadata']['namespace']}/{job['metadata']['name']} Succeeded")
        elif a.command == "predict":
            ns, name = _name(a.service)
            try:
                body = json.loads(a.body)
            except ValueError as e:
                raise Failed(f"the request is not JSON ({e})") from None
            print(json.dumps(predict(name, body, ns, a.protocol, a.port, a.timeout)))
        else:
            print(kubeconfig_as(a.identity))
    except Exception as e:  # noqa: BLE001 — a command line: one line, no traceback
        print(f"FAILED: {e if isinstance(e, Failed) else _reason(e)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
