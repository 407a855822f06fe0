"""Scenario helper: what a user may not make Katib do in their own namespace (dry-run creates with their
token). An Experiment's trials may run only the tuning component's trial_resources (Job, PyTorchJob by
default), written literally; a trial template kept in a ConfigMap must be in the experiment's namespace;
Trials and Suggestions are Katib's to create (RBAC: users only read them). A Job experiment passes.

    python3 tune_admission.py NAMESPACE OTHER_NAMESPACE
"""

import copy
import sys

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

JOB = {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{
    "name": "train", "image": "appliance.local/trainer:stub", "command": ["python3", "/app/stub_train.py", "--lr=${trialParameters.lr}"]}]}}}}
BINDING = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "roleRef": {
    "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "katib-controller"},
    "subjects": [{"kind": "User", "name": "${trialParameters.lr}"}]}


def experiment(ns: str, template: dict) -> dict:
    return {"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"generateName": "admission-", "namespace": ns},
            "spec": {"objective": {"type": "minimize", "objectiveMetricName": "loss"}, "algorithm": {"algorithmName": "random"},
                     "maxTrialCount": 1, "parallelTrialCount": 1,
                     "parameters": [{"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.01", "max": "0.1"}}],
                     "trialTemplate": {"primaryContainerName": "train", "trialParameters": [{"name": "lr", "reference": "lr"}], **template}}}


def cases(ns: str, other: str) -> list[tuple[str, str, dict, str]]:
    """(what, plural, object, expected: admitted | policy | rbac)"""
    pod = {"apiVersion": "v1", "kind": "Pod", "spec": copy.deepcopy(JOB["spec"]["template"]["spec"])}
    templated = {**copy.deepcopy(JOB), "kind": "${trialParameters.lr}"}
    trial = {"apiVersion": "kubeflow.org/v1beta1", "kind": "Trial", "metadata": {"generateName": "admission-", "namespace": ns},
             "spec": {"primaryContainerName": "train", "objective": {"type": "minimize", "objectiveMetricName": "loss"},
                      "runSpec": {**BINDING, "metadata": {"name": "x", "namespace": ns}}}}
    suggestion = {"apiVersion": "kubeflow.org/v1beta1", "kind": "Suggestion", "metadata": {"generateName": "admission-", "namespace": ns},
                  "spec": {"algorithm": {"algorithmName": "random"}, "requests": 1}}
    return [
        ("an experiment whose trials are RoleBindings", "experiments", experiment(ns, {"trialSpec": BINDING}), "policy"),
        ("an experiment whose trials are bare Pods", "experiments", experiment(ns, {"trialSpec": pod}), "policy"),
        ("an experiment whose trial kind is a parameter", "experiments", experiment(ns, {"trialSpec": templated}), "policy"),
        ("an experiment whose template is another namespace's ConfigMap", "experiments", experiment(ns, {"configMap": {
            "configMapName": "templates", "configMapNamespace": other, "templatePath": "job.yaml"}}), "policy"),
        ("a trial of its own", "trials", trial, "rbac"),
        ("a suggestion of its own", "suggestions", suggestion, "rbac"),
        ("an experiment of Job trials", "experiments", experiment(ns, {"trialSpec": JOB}), "admitted"),
    ]


def main(argv: list[str]) -> int:
    ns, other = argv
    config.load_kube_config()
    api = client.CustomObjectsApi()
    wrong = 0
    for what, plural, obj, want in cases(ns, other):
        try:
            api.create_namespaced_custom_object("kubeflow.org", "v1beta1", ns, plural, obj, dry_run="All")
            got = "admitted"
        except ApiException as e:
            body = e.body or ""
            got = ("policy" if e.status in (403, 422) and "ValidatingAdmissionPolicy" in body
                   else "rbac" if e.status == 403 and "cannot create resource" in body else f"{e.status}: {body[:300]}")
        wrong += got != want
        print(f"{'ok  ' if got == want else 'FAIL'} {what}: {got}")
    print("admission as expected" if not wrong else f"{wrong} unexpected")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
