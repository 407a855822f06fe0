"""Run inside the notebook image: each SDK a user drives the stack with builds its objects as the API server
expects them (camelCase keys, no nulls) and reads them back. Prints one line per SDK; exits non-zero on the
first that does not."""

from kubernetes.client import V1Container, V1ObjectMeta, V1PodSpec, V1PodTemplateSpec


def check(name: str, body: dict, must: list[str]) -> None:
    flat = repr(body)
    missing = [k for k in must if f"'{k}'" not in flat]
    snake = [k for k in ("api_version", "replica_specs", "pytorch_replica_specs", "storage_uri", "parallel_trial_count") if f"'{k}'" in flat]
    if missing or snake or "None" in flat:
        raise SystemExit(f"{name}: missing {missing}, snake_case {snake}, nulls {'None' in flat}: {flat[:300]}")
    print(f"{name}: ok")


def training() -> None:
    from kubeflow.training import models as m
    from kubeflow.training.api_client import ApiClient

    pod = V1PodTemplateSpec(spec=V1PodSpec(containers=[V1Container(name="pytorch", image="x")]))
    job = m.KubeflowOrgV1PyTorchJob(api_version="kubeflow.org/v1", kind="PyTorchJob", metadata=V1ObjectMeta(name="j", labels={"a": "b"}),
                                    spec=m.KubeflowOrgV1PyTorchJobSpec(run_policy=m.KubeflowOrgV1RunPolicy(backoff_limit=1),
                                                                       pytorch_replica_specs={"Master": m.KubeflowOrgV1ReplicaSpec(replicas=1, template=pod)}))
    api = ApiClient()
    body = api.sanitize_for_serialization(job)
    check("kubeflow-training", body, ["apiVersion", "pytorchReplicaSpecs"])

    class Response:
        data = __import__("json").dumps(body)

    back = api.deserialize(Response(), "KubeflowOrgV1PyTorchJob")
    assert back.metadata.labels == {"a": "b"}, back.metadata


def kserve() -> None:
    from kserve import V1beta1InferenceService, V1beta1InferenceServiceSpec, V1beta1ModelFormat, V1beta1ModelSpec, V1beta1PredictorSpec
    from kubernetes.client import ApiClient

    isvc = V1beta1InferenceService(api_version="serving.kserve.io/v1beta1", kind="InferenceService", metadata=V1ObjectMeta(name="s"),
                                   spec=V1beta1InferenceServiceSpec(predictor=V1beta1PredictorSpec(model=V1beta1ModelSpec(
                                       model_format=V1beta1ModelFormat(name="stub-npz"), storage_uri="pvc://m/stub"))))
    check("kserve", ApiClient().sanitize_for_serialization(isvc), ["apiVersion", "storageUri", "modelFormat"])


def katib() -> None:
    from kubeflow.katib import V1beta1Experiment, V1beta1ExperimentSpec, V1beta1ObjectiveSpec
    from kubernetes.client import ApiClient

    exp = V1beta1Experiment(api_version="kubeflow.org/v1beta1", kind="Experiment", metadata=V1ObjectMeta(name="e"),
                            spec=V1beta1ExperimentSpec(parallel_trial_count=2, objective=V1beta1ObjectiveSpec(type="minimize", objective_metric_name="loss")))
    check("kubeflow-katib", ApiClient().sanitize_for_serialization(exp), ["apiVersion", "parallelTrialCount", "objectiveMetricName"])


def hera() -> None:
    from hera.workflows import Steps, Workflow, script

    @script()
    def hello():
        print("hi")

    with Workflow(generate_name="p-", entrypoint="s") as w:
        with Steps(name="s"):
            hello()
    check("hera", w.to_dict(), ["apiVersion", "generateName", "entrypoint"])


for probe in (training, kserve, katib, hera):
    probe()
