"""Scenario helper: what admission refuses in the user's own namespace (dry-run creates with their token).
Memoization caches not named after the namespace — in templates, template defaults, inline templates of tasks
and steps, a CronWorkflow's spec — and inline templates nested in inline templates; caches named after it
(literally or `{{workflow.namespace}}.`) pass.

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
        ("a cron workflow using another namespace's cache", "cronworkflows",
         {"schedule": "0 0 * * *", "workflowSpec": spec([{**STEP, "name": "main", "memoize": memo(theirs)}])}, False),
        ("a workflow template naming a shared cache", "workflowtemplates", spec([{**STEP, "name": "main", "memoize": memo("shared")}]), False),
        ("its own cache by name", "workflows", spec([{**STEP, "name": "main", "memoize": memo(f"{ns}.cache")}]), True),
        ("its own cache by {{workflow.namespace}}, inline", "workflows", spec([in_task({**STEP, "memoize": memo("{{workflow.namespace}}.cache")})]), True),
        ("no memoization", "workflows", spec([{**STEP, "name": "main"}]), True),
    ]


def main(argv: list[str]) -> int:
    ns, other = argv
    config.load_kube_config()
    api = client.CustomObjectsApi()
    kinds = {"workflows": "Workflow", "cronworkflows": "CronWorkflow", "workflowtemplates": "WorkflowTemplate"}
    wrong = 0
    for what, plural, body, want in cases(ns, other):
        obj = {"apiVersion": "argoproj.io/v1alpha1", "kind": kinds[plural], "metadata": {"generateName": "admission-"}, "spec": body}
        try:
            api.create_namespaced_custom_object("argoproj.io", "v1alpha1", ns, plural, obj, dry_run="All")
            got, why = True, "admitted"
        except ApiException as e:
            got, why = False, f"refused {e.status}"
            if e.status != 403 or "ValidatingAdmissionPolicy" not in (e.body or ""):
                why += f" (not by the policy: {(e.body or '')[:200]})"
                got = None
        wrong += got is not want
        print(f"{'ok  ' if got is want else 'FAIL'} {what}: {why}")
    print("admission as expected" if not wrong else f"{wrong} unexpected")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
