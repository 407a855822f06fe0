"""Tune the stub model from a notebook with Katib's Python SDK (kubeflow-katib 0.19.0), as alice:
create an Experiment (random search over the learning rate and epochs, each trial a Job running the stub
trainer), wait for it to succeed, print the best parameters. Paste into a notebook as it is; here the
scenario runs it with alice's kubeconfig (KUBECONFIG)."""

from __future__ import annotations

import sys

from kubeflow.katib import KatibClient
from kubeflow.katib import models as m
from kubernetes.client import V1ObjectMeta

NAMESPACE, NAME = sys.argv[1:3] if len(sys.argv) == 3 else ("user-alice", "tune-sdk")

trial_job = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "spec": {"backoffLimit": 0, "template": {"spec": {
        "restartPolicy": "Never",
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "train",
            "image": "appliance.local/trainer:stub",
            "imagePullPolicy": "IfNotPresent",
            "command": ["python3", "/app/stub_train.py", "--lr=${trialParameters.lr}", "--epochs=${trialParameters.epochs}", "--out=/tmp/m", "--linger=3"],
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        }],
    }}},
}

experiment = m.V1beta1Experiment(
    api_version="kubeflow.org/v1beta1",
    kind="Experiment",
    metadata=V1ObjectMeta(name=NAME, namespace=NAMESPACE),
    spec=m.V1beta1ExperimentSpec(
        objective=m.V1beta1ObjectiveSpec(type="minimize", objective_metric_name="loss"),
        algorithm=m.V1beta1AlgorithmSpec(algorithm_name="random"),
        max_trial_count=4,
        parallel_trial_count=2,
        max_failed_trial_count=1,
        parameters=[
            m.V1beta1ParameterSpec(name="lr", parameter_type="double", feasible_space=m.V1beta1FeasibleSpace(min="0.001", max="0.1")),
            m.V1beta1ParameterSpec(name="epochs", parameter_type="int", feasible_space=m.V1beta1FeasibleSpace(min="5", max="60")),
        ],
        trial_template=m.V1beta1TrialTemplate(
            primary_container_name="train",
            trial_parameters=[m.V1beta1TrialParameterSpec(name="lr", reference="lr"),
                              m.V1beta1TrialParameterSpec(name="epochs", reference="epochs")],
            trial_spec=trial_job,
        ),
    ),
)

katib = KatibClient(namespace=NAMESPACE)
katib.create_experiment(experiment)
katib.wait_for_experiment_condition(name=NAME, timeout=600, polling_interval=5)
best = katib.get_optimal_hyperparameters(NAME)
values = {p.name: p.value for p in best.parameter_assignments}
params = {s.name: values[s.name] for s in experiment.spec.parameters}  # the spec's order: the suggestion's varies
loss = next(float(x.latest) for x in best.observation.metrics if x.name == "loss")
print(f"best parameters {params}: loss={loss:.6g}")
katib.delete_experiment(NAME)
