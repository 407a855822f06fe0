"""Scenario helper: what admission refuses in the user's own namespace (dry-run creates with their token).
Memoization caches not named after the namespace — in templates, template defaults, inline templates of tasks
and steps, a CronWorkflow's spec — and inline templates nested in inline templates; caches named after it
(literally or `{{workflow.namespace}}.`) pass. A status written by anyone but Argo's controller — stored
templates on create, a changed status on update — is refused (Argo runs the templates it finds there); an
empty status on create and an update keeping the status pass.

    python3 admission.py NAMESPACE OTHER_NAMESPACE
"""

import sys

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

STEP = {"name": "s", "container": {"image": "appliance.local/trainer:stub", "command": ["true"]}}


def memo(cache: str) -> dict:
    return {"key": "k", "cache": {"configMap": {"name": cache}}}


def spec(templates: list[dict], **extra) -> dict:
    return {"entrypoint": "main", "templates": templates, **extra}


def in_task(t: dict) -> dict:
    return {"name": "main", "dag": {"tasks": [{"name": "a", "inline": t}]}}


def in_step(t: dict) -> dict:
    return {"name": "main", "steps": [[{"name": "a", "inline": t}]]}


def cases(ns: str, other: str) -> list[tuple[str, str, dict, bool]]:
    """(what, plural, spec, admitted?)"""
    theirs = f"{other}.cache"
    return [
        ("a template using another namespace's cache", "workflows", spec([{**STEP, "name": "main", "memoize": memo(theirs)}]), False),
        ("template defaults naming a shared cache", "workflows", spec([{**STEP, "name": "main"}], templateDefaults={"memoize": memo("shared")}), False),
        ("an inline task using another namespace's cache", "workflows", spec([in_task({**STEP, "memoize": memo(theirs)})]), False),
        ("an inline step naming a shared cache", "workflows", spec([in_step({**STEP, "memoize": memo("shared")})]), False),
        ("inline templates nested in an inline template", "workflows", spec([in_task({"dag": {"tasks": [{"name": "b", "inline": STEP}]}})]), False),
        ("template defaults holding an inline step naming a shared cache", "workflows",
         spec([{**STEP, "name": "main"}], templateDefaults=in_step({**STEP, "memoize": memo("shared")})), False),
        ("a cron workflow using another namespace's cache", "cronworkflows",
         {"schedule": "0 0 * * *", "workflowSpec": spec([{**STEP, "name": "main", "memoize": memo(theirs)}])}, False),
        ("a workflow template naming a shared cache", "workflowtemplates", spec([{**STEP, "name": "main", "memoize": memo("shared")}]), False),
        ("its own cache by name", "workflows", spec([{**STEP, "name": "main", "memoize": memo(f"{ns}.cache")}]), True),
        ("its own cache by {{workflow.namespace}}, inline", "workflows", spec([in_task({**STEP, "memoize": memo("{{workflow.namespace}}.cache")})]), True),
        ("no memoization", "workflows", spec([{**STEP, "name": "main"}]), True),
    ]


def status_cases(ns: str, other: str) -> list[tuple[str, str, dict, dict | None, bool]]:
    """(what, plural, spec, status, admitted?) for creates carrying a status."""
    plain = spec([{**STEP, "name": "main"}])
    stored = {"storedTemplates": {"namespaced/x/main": {**STEP, "name": "main", "memoize": memo(f"{other}.cache")}},
              "storedWorkflowTemplateSpec": spec([{**STEP, "name": "main", "memoize": memo("shared")}])}
    return [
        ("a workflow carrying stored templates in its status", "workflows", plain, stored, False),
        ("a workflow carrying a phase and nodes", "workflows", plain, {"phase": "Running", "nodes": {"x": {"id": "x"}}}, False),
        ("a cron workflow carrying a status", "cronworkflows", {"schedule": "0 0 * * *", "workflowSpec": plain}, {"active": []}, False),
        ("a workflow template carrying a status", "workflowtemplates", plain, {"x": 1}, False),
        ("a workflow with an empty status", "workflows", plain, {}, True),
    ]


def attempt(call) -> tuple[bool | None, str]:
    """(admitted?, how): None when refused by something other than an admission policy."""
    try:
        call()
        return True, "admitted"
    except ApiException as e:
        if e.status != 403 or "ValidatingAdmissionPolicy" not in (e.body or ""):
            return None, f"refused {e.status} (not by a policy: {(e.body or '')[:200]})"
        return False, f"refused {e.status}"


def updates(api, ns: str) -> list[tuple[str, bool | None, str, bool]]:
    """A workflow of ours (suspended, deleted after): updating its status is refused, its labels not."""
    obj = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"generateName": "admission-status-"},
           "spec": spec([{**STEP, "name": "main"}], suspend=True)}
    made = api.create_namespaced_custom_object("argoproj.io", "v1alpha1", ns, "workflows", obj)
    name = made["metadata"]["name"]
    try:
        def patch(body):
            return lambda: api.patch_namespaced_custom_object("argoproj.io", "v1alpha1", ns, "workflows", name, body, dry_run="All")

        forged = {"status": {"storedTemplates": {"namespaced/x/main": {**STEP, "name": "main", "memoize": memo("shared")}}}}
        return [("an update writing stored templates into its status", *attempt(patch(forged)), False),
                ("an update of its labels", *attempt(patch({"metadata": {"labels": {"x": "y"}}})), True)]
    finally:
        api.delete_namespaced_custom_object("argoproj.io", "v1alpha1", ns, "workflows", name)


def main(argv: list[str]) -> int:
    ns, other = argv
    config.load_kube_config()
    api = client.CustomObjectsApi()
    kinds = {"workflows": "Workflow", "cronworkflows": "CronWorkflow", "workflowtemplates": "WorkflowTemplate"}
    results = []
    for what, plural, body, status, want in [(*c[:3], None, c[3]) for c in cases(ns, other)] + status_cases(ns, other):
        obj = {"apiVersion": "argoproj.io/v1alpha1", "kind": kinds[plural], "metadata": {"generateName": "admission-"}, "spec": body}
        if status is not None:
            obj["status"] = status
        results.append((what, *attempt(lambda o=obj, p=plural: api.create_namespaced_custom_object(
            "argoproj.io", "v1alpha1", ns, p, o, dry_run="All")), want))
    results += updates(api, ns)
    wrong = 0
    for what, got, why, want in results:
        wrong += got is not want
        print(f"{'ok  ' if got is want else 'FAIL'} {what}: {why}")
    print("admission as expected" if not wrong else f"{wrong} unexpected")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
