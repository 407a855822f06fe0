"""Train then serve on a real kind cluster: the training operator and KServe (RawDeployment) run in the
cluster from images built here; a 2-rank PyTorchJob trains the stub model, an InferenceService serves
it (v1 + v2 predictions checked), a corrupt artifact gives a clear failed condition, and one user's
token gets 403 in another user's namespace."""

import pytest

from tests.integration.clusters import scenario_passes

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.docker]
COMPONENTS = ("platform-base", "user-profiles", "training-operator", "kserve", "network-policy")


@pytest.fixture(scope="module")
def kind(stack):
    """The stack cluster (conftest.py): (profile, result of its `up`)."""
    return stack


def _run(result, name, tmp_path):
    scenario_passes(result, "kind", COMPONENTS, name, tmp_path)


def test_up_installs_training_and_serving(kind):
    """Both controllers run (whichever module's `up` installed them) and their webhooks are registered."""
    from appliance.kube import Kube

    _, result = kind
    kube = Kube(result["kubeconfig"])
    for name, ns in (("training-operator", "kubeflow"), ("kserve-controller-manager", "kserve")):
        dep = kube.get("apps/v1", "Deployment", name, ns)
        assert dep is not None and (dep.status.availableReplicas or 0) >= 1, f"{ns}/{name} not available"
    assert kube.get("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "inferenceservice.serving.kserve.io") is not None


def test_train_then_serve(kind, tmp_path):
    _run(kind[1], "train-then-serve", tmp_path)


def test_bad_model_fails_clearly(kind, tmp_path):
    _run(kind[1], "bad-model", tmp_path)


def test_user_isolation(kind, tmp_path):
    _run(kind[1], "user-isolation", tmp_path)


PLATFORM = ("appliance-system", "kubeflow", "kserve")


def test_namespaces_enforce_pod_security_and_admit_their_pods(kind):
    """Platform namespaces enforce `restricted`, users' `baseline`, local-path-storage says why it cannot;
    every platform pod running now would be admitted again (a server-side dry-run create of its spec)."""
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=kind[1]["kubeconfig"])
    core = client.CoreV1Api(api)
    level = {ns: (core.read_namespace(ns).metadata.labels or {}).get("pod-security.kubernetes.io/enforce")
             for ns in (*PLATFORM, "user-alice", "local-path-storage")}
    assert level == {"appliance-system": "restricted", "kubeflow": "restricted", "kserve": "restricted",
                     "user-alice": "baseline", "local-path-storage": "privileged"}
    pods = [p for ns in PLATFORM for p in core.list_namespaced_pod(ns).items]
    assert {p.metadata.namespace for p in pods} == {"kubeflow", "kserve"}
    for p in pods:
        again = {"metadata": {"generateName": "psa-check-", "labels": {"psa-check": "1"}},
                 "spec": api.sanitize_for_serialization(p.spec)}
        again["spec"].pop("nodeName", None)
        core.create_namespaced_pod(p.metadata.namespace, again, dry_run="All")  # 403 if the level refuses it
    privileged = {"metadata": {"generateName": "psa-check-"},
                  "spec": {"containers": [{"name": "c", "image": "appliance.local/trainer:stub", "securityContext": {"privileged": True}}]}}
    with pytest.raises(client.ApiException) as refused:
        core.create_namespaced_pod("kubeflow", privileged, dry_run="All")
    assert refused.value.status == 403 and "restricted" in refused.value.body
