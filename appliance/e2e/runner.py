"""Run a scenario's steps against a cluster; collect durations, failures and diagnostics of failed pods."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from appliance.e2e.lib import describe, kubeconfig_as, with_images
from appliance.e2e.scenario import Scenario, ScenarioStep
from appliance.kube import api_client
from appliance.util import wait, yamls


@dataclass
class StepResult:
    name: str
    kind: str
    status: str  # passed | failed | skipped
    seconds: float
    message: str = ""
    diagnostics: str = ""


@dataclass
class ScenarioResult:
    name: str
    steps: list[StepResult] = field(default_factory=list)
    #: what the scenario's scripts left for the report (screenshots: *.png; drawings: *.svg)
    artifacts: list[Path] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(s.status != "failed" for s in self.steps)

    @property
    def seconds(self) -> float:
        return round(sum(s.seconds for s in self.steps), 2)


def matches(expected: Any, actual: Any) -> bool:
    """Partial match: every key in `expected` is in `actual` with a matching value; each expected list
    item matches some actual item; scalars compare equal (as strings when types differ)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and matches(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list):
        return isinstance(actual, list) and all(any(matches(e, a) for a in actual) for e in expected)
    return expected == actual or (type(expected) is not type(actual) and str(expected) == str(actual))


class Runner:
    """Executes scenario steps with one `Kube` connection; `poll` is the readiness polling interval. Built
    images go to the nodes where `pods_run` (pushed to `registry` when there is one, else loaded into kind's)."""

    def __init__(self, kube, poll: float = 1.0, enabled: set[str] | None = None, artifacts: Path | None = None,
                 pods_run: bool = True, registry: str = "", provider: str | None = None):
        self.kube = kube
        self.poll = poll
        self.pods_run, self.registry = pods_run, registry
        #: the cluster's provider (None: any); a step for others is skipped
        self.provider = provider
        #: the scenario's built images: name → reference, for `${images.NAME}` in later steps
        self.images: dict[str, str] = {}
        #: a folder per scenario (E2E_ARTIFACTS of its scripts, kept for the report); a temporary one if None
        self.artifacts = artifacts
        #: the cluster's components (None: all); a step naming others is skipped
        self.enabled = enabled
        self.namespaces: set[str] = set()

    # --- step kinds -------------------------------------------------------------------------
    def _objects(self, spec, scenario: Scenario, strict: bool = True) -> list[dict]:
        """The step's objects, `${images.NAME}` replaced (not `strict`: an unbuilt one left as written)."""
        objs = self._with_images(list(spec.objects), strict)
        if spec.file:
            objs += [d for d in yamls.load_all(self._with_images((_base(scenario) / spec.file).read_text(), strict)) if d]
        for o in objs:
            if ns := o.get("metadata", {}).get("namespace"):
                self.namespaces.add(ns)
        return objs

    def _with_images(self, value: Any, strict: bool = True) -> Any:
        """`value` (text, or parsed YAML) with each `${images.NAME}` replaced by that image's reference (`lib.with_images`)."""
        if isinstance(value, dict):
            return {k: self._with_images(v, strict) for k, v in value.items()}
        if isinstance(value, list):
            return [self._with_images(v, strict) for v in value]
        return with_images(value, self.images, strict) if isinstance(value, str) else value

    def _build(self, step: ScenarioStep, scenario: Scenario) -> str:
        """Build the user's image and deliver it (`e2e.build`) within the step's timeout."""
        from concurrent.futures import ThreadPoolExecutor

        from appliance.e2e.build import build_and_deliver

        b = step.build
        pool = ThreadPoolExecutor(1, thread_name_prefix=f"build {b.name}")
        job = pool.submit(build_and_deliver, b, _base(scenario), self.kube, self.pods_run, self.registry)
        pool.shutdown(wait=False)
        try:
            ref, how = job.result(timeout=step.timeout)
        except TimeoutError:
            raise AssertionError(f"building {b.name} ran past {step.timeout:.0f}s (a first build downloads its wheels; "
                                 "what it finished is cached): raise the step's timeout") from None
        self.images[b.name] = ref
        return f"built {ref}; {how}"

    def _live(self, expected: dict) -> list[dict]:
        meta = expected.get("metadata", {})
        res = self.kube.dynamic.resources.get(api_version=expected["apiVersion"], kind=expected["kind"])
        ns = meta.get("namespace")
        if ns:
            self.namespaces.add(ns)
        if "name" in meta:
            obj = self.kube.get(expected["apiVersion"], expected["kind"], meta["name"], ns)
            return [obj.to_dict()] if obj is not None else []
        selector = ",".join(f"{k}={v}" for k, v in (meta.get("labels") or {}).items()) or None
        return [i.to_dict() for i in res.get(namespace=ns, label_selector=selector).items]

    def _wait(self, step: ScenarioStep, want_match: bool, expected: dict) -> str:
        live: list[dict] = []

        def settled() -> tuple[bool, str]:
            live[:] = self._live(expected)
            return any(matches(expected, o) for o in live) == want_match, ""

        if wait.within(settled, step.timeout, interval=self.poll)[0]:
            return f"{'matched' if want_match else 'no match'} after checking {len(live)} object(s)"
        verb = "no object matched" if want_match else "an object still matches"
        raise AssertionError(f"{verb} within {step.timeout:.0f}s; closest live: {_summary(live)}")

    def _access(self, step: ScenarioStep) -> str:
        """Each verb × resource as the identity; only RBAC's 403 ("… cannot <verb> resource …") counts as
        refused. Anything past authorization (found or 404, a dry run admitted or rejected as invalid)
        counts as allowed."""
        from kubernetes import dynamic
        from kubernetes.dynamic.exceptions import DynamicApiError

        a = step.access
        api = dynamic.DynamicClient(self._client_as(a.as_))
        wrong, seen = [], []
        for resource in a.resources:
            plural, _, group = resource.partition(".")
            res = api.resources.get(name=plural, group=group)
            for verb in a.verbs:
                try:
                    _request(res, verb, a)
                    got = True
                except DynamicApiError as e:
                    if e.status in (401, 500, 503):
                        raise
                    text = str(e.body or e.summary())
                    got = not (e.status == 403 and " cannot " in text and "admission webhook" not in text)
                (seen if got == a.allowed else wrong).append(f"{verb} {resource}")
        want = "allowed" if a.allowed else "403"
        if wrong:
            raise AssertionError(f"{a.as_} in {a.namespace}: expected {want}, got {'403' if a.allowed else 'allowed'} for {', '.join(wrong)}")
        return f"{a.as_} in {a.namespace}: {want} for {len(seen)} request(s) as expected"

    def _refused(self, step: ScenarioStep, scenario: Scenario) -> str:
        """Each object, applied as a dry run with the identity's token, must be refused (403 Forbidden or
        422 Invalid) with a message holding `refused`; one admitted is tried again until the step's timeout
        (an admission policy takes effect a moment after it is stored)."""
        from kubernetes.dynamic.exceptions import DynamicApiError

        a = step.apply
        kube, seen = self._kube_as(a.as_), []

        def refused(obj: dict, what: str) -> tuple[bool, str]:
            try:
                kube.apply([obj], dry_run=True)
            except DynamicApiError as e:
                msg = describe(e)
                if e.status not in (403, 422) or a.refused not in msg:
                    raise AssertionError(f"{what}: refused, but not as expected ({a.refused!r}): {msg}") from None
                seen.append(msg)
                return True, ""
            return False, ""

        for obj in self._objects(a, scenario):
            what = f"{obj['kind']}/{obj['metadata'].get('name', '')}"
            if not wait.within(functools.partial(refused, obj, what), step.timeout, interval=self.poll)[0]:
                raise AssertionError(f"{what} was admitted for {step.timeout:.0f}s; expected a refusal holding {a.refused!r}")
        return f"{len(seen)} refused as expected" + (f" as {a.as_}" if a.as_ else "") + f": {seen[0][:200]}"

    def _kube_as(self, identity: str):
        """A `Kube` acting with the identity's token (no admin credential)."""
        from appliance.kube import Kube

        if not identity:
            return self.kube
        with tempfile.TemporaryDirectory(prefix="appliance-e2e-") as tmp:
            return Kube(self._kubeconfig_as(identity, Path(tmp)))

    def _as(self, identity: str) -> dict:
        """A token-only kubeconfig (dict) for `namespace/serviceaccount`, valid 10 minutes."""
        ns, _, sa = identity.partition("/")
        return self.kube.kubeconfig_for(ns, sa, 600, "e2e")

    def _client_as(self, identity: str):
        return api_client(self._as(identity))

    def _kubeconfig_as(self, identity: str, folder: Path) -> Path:
        return kubeconfig_as(identity, self.kube, folder)

    def _script(self, step: ScenarioStep, scenario: Scenario) -> str:
        s = step.script
        if s.as_:  # a user's script works in their namespace: its failing pods belong in the diagnostics
            self.namespaces.add(s.as_.partition("/")[0])
        with tempfile.TemporaryDirectory(prefix="appliance-e2e-") as tmp:
            kubeconfig = self._kubeconfig_as(s.as_, Path(tmp)) if s.as_ else Path(self.kube.kubeconfig)
            path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
            env = {**os.environ, "KUBECONFIG": str(kubeconfig), "E2E_TMP": tmp, "E2E_ARTIFACTS": str(self._artifacts(scenario)), "PATH": path,
                   "E2E_IMAGES": json.dumps(self.images)}
            try:
                r = subprocess.run(["bash", "-c", self._with_images(s.run)], capture_output=True, text=True, timeout=step.timeout, env=env,
                                   cwd=_base(scenario))
            except subprocess.TimeoutExpired:
                raise AssertionError(f"script ran past {step.timeout:.0f}s") from None
        out = (r.stdout + r.stderr).strip()
        if r.returncode != s.exit_code:
            raise AssertionError(f"exit {r.returncode}, expected {s.exit_code}: {out[-800:]}")
        if s.stdout_contains and s.stdout_contains not in r.stdout:
            raise AssertionError(f"stdout lacks {s.stdout_contains!r}: {r.stdout[-800:]}")
        return out[-300:]

    # --- driver -------------------------------------------------------------------------
    def run_step(self, step: ScenarioStep, scenario: Scenario) -> str:
        kind = step.kind
        if kind == "apply":
            a = step.apply
            if a.refused:
                return self._refused(step, scenario)
            n = self._kube_as(a.as_).apply(self._objects(a, scenario), dry_run=a.dry_run)
            return f"{'admitted (dry run)' if a.dry_run else 'applied'} {n} object(s)" + (f" as {a.as_}" if a.as_ else "")
        if kind == "delete":
            self._kube_as(step.delete.as_).delete(self._objects(step.delete, scenario, strict=False))  # a cleanup after a failed build
            return "deleted" + (f" as {step.delete.as_}" if step.delete.as_ else "")
        if kind == "build":
            return self._build(step, scenario)
        if kind == "assert":
            return self._wait(step, True, self._with_images(step.assert_))
        if kind == "error":
            return self._wait(step, False, self._with_images(step.error))
        if kind == "access":
            return self._access(step)
        return self._script(step, scenario)

    def _artifacts(self, scenario: Scenario) -> Path:
        """The scenario's folder shared by its steps (a script leaves a value or a screenshot for a later one)."""
        if self.artifacts is None:
            self.artifacts = Path(tempfile.mkdtemp(prefix="appliance-e2e-artifacts-"))
        folder = self.artifacts / scenario.name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def run(self, scenario: Scenario, report=None) -> ScenarioResult:
        """Run steps in order (stop at the first failure), then always the cleanup steps."""
        result = ScenarioResult(scenario.name)
        failed, self.images = False, {}
        for phase, steps in (("step", scenario.steps), ("cleanup", scenario.cleanup)):
            for step in steps:
                if failed and phase == "step":
                    result.steps.append(StepResult(step.name, step.kind, "skipped", 0.0, "an earlier step failed"))
                    continue
                if self.enabled is not None and (lacking := sorted(set(step.components) - self.enabled)):
                    result.steps.append(StepResult(step.name, step.kind, "skipped", 0.0, f"needs {', '.join(lacking)}"))
                    continue
                if self.provider and step.providers and self.provider not in step.providers:
                    result.steps.append(StepResult(step.name, step.kind, "skipped", 0.0, f"runs on {'/'.join(step.providers)} only"))
                    continue
                t0 = time.monotonic()
                if report:
                    report.step(f"{scenario.name}: {step.name}", "running")
                try:
                    msg = self.run_step(step, scenario)
                    sr = StepResult(step.name, step.kind, "passed", round(time.monotonic() - t0, 2), msg)
                except Exception as e:  # noqa: BLE001 — a failed step is a result, with diagnostics
                    failed = failed or phase == "step"
                    sr = StepResult(step.name, step.kind, "failed", round(time.monotonic() - t0, 2),
                                    describe(e), self.diagnostics())
                if report:
                    report.step(f"{scenario.name}: {step.name}", "done" if sr.status == "passed" else "failed", sr.message[:200], sr.seconds)
                result.steps.append(sr)
        result.artifacts = sorted(p for p in self._artifacts(scenario).glob("*.*") if p.suffix in (".png", ".svg"))
        return result

    def diagnostics(self) -> str:
        """Events and logs of pods that are not Running/Succeeded in the namespaces the scenario touched."""
        from kubernetes import client

        core = client.CoreV1Api(self.kube.api)
        lines: list[str] = []
        for ns in sorted(self.namespaces):
            try:
                for pod in core.list_namespaced_pod(ns).items:
                    if pod.status.phase in ("Running", "Succeeded"):
                        continue
                    lines.append(f"pod {ns}/{pod.metadata.name}: {pod.status.phase} {_conditions(pod)}")
                    containers = [*(pod.spec.init_containers or []), *pod.spec.containers]
                    for c in containers:  # each container's: a pod of several has no default (an Argo step: init, wait, main)
                        try:
                            log = core.read_namespaced_pod_log(pod.metadata.name, ns, container=c.name, tail_lines=30)
                        except Exception:  # noqa: BLE001 — a container that has not started has no log
                            continue
                        lines += [f"  {c.name} | {line}" for line in log.splitlines()]
                for ev in core.list_namespaced_event(ns).items[-20:]:
                    lines.append(f"event {ns} {ev.involved_object.kind}/{ev.involved_object.name}: {ev.type} {ev.reason}: {ev.message}")
            except Exception as e:  # noqa: BLE001 — diagnostics are best effort
                lines.append(f"could not read namespace {ns}: {e}")
        return "\n".join(lines)


def _base(scenario: Scenario) -> Path:
    """The folder a scenario's paths are relative to."""
    return scenario.path.parent if scenario.path else Path.cwd()


def _request(res, verb: str, a) -> None:
    """One access probe: list, get or (dry-run) create/delete of resource `res` in `a.namespace`."""
    if verb == "list":
        res.get(namespace=a.namespace)
    elif verb == "get":
        res.get(name=a.name, namespace=a.namespace)
    elif verb == "create":
        body = {"apiVersion": res.group_version, "kind": res.kind, "metadata": {"generateName": "e2e-access-"}}
        res.create(body=body, namespace=a.namespace, dry_run="All")
    else:
        res.delete(name=a.name, namespace=a.namespace, dry_run="All")


def _conditions(pod) -> str:
    return "; ".join(f"{c.type}={c.status} {c.reason or ''} {c.message or ''}".strip() for c in pod.status.conditions or [])


def _summary(live: list[dict]) -> str:
    if not live:
        return "none"
    o = live[0]
    return yaml.safe_dump({"name": o["metadata"]["name"], "status": o.get("status")}, default_flow_style=True, width=400).strip()[:400]
