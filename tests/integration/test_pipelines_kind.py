"""Pipelines on a real kind cluster: Argo's controller and executor and the versitygw artifact store, built
here, with the training operator, KServe and network policy. Alice's Hera pipelines run as her (a failing
step with retries, memoization; train → serve is the journey's, test_journey_kind.py); bob is refused her workflows and her bucket, caches not
named after his namespace and any status he writes; in the cluster only the controller's account writes status
(the admin too is refused), and the controller's own status writes pass."""

import pytest

from appliance.kube import Kube
from tests.integration.clusters import scenario_passes

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.docker]
COMPONENTS = ("platform-base", "user-profiles", "training-operator", "kserve", "network-policy", "pipelines")


@pytest.fixture(scope="module")
def kind(stack):
    """The stack cluster (conftest.py): (profile, result of its `up`)."""
    return stack


def _run(result, name, tmp_path):
    scenario_passes(result, "kind", COMPONENTS, name, tmp_path)


def test_up_installs_pipelines_with_a_bucket_per_user(kind):
    _, result = kind
    assert not result["failed"] and "pipelines" in result["ran"]
    kube = Kube(result["kubeconfig"])
    for user in ("alice", "bob"):
        assert kube.get("v1", "ConfigMap", "artifact-repositories", f"user-{user}") is not None
        assert kube.get("v1", "ServiceAccount", "pipeline-runner", f"user-{user}") is not None


def test_pipeline_isolation(kind, tmp_path):
    _run(kind[1], "pipeline-isolation", tmp_path)


def test_pipeline_failure(kind, tmp_path):
    _run(kind[1], "pipeline-failure", tmp_path)


def test_pipeline_memoization(kind, tmp_path):
    _run(kind[1], "pipeline-memoization", tmp_path)


def test_pipeline_admission(kind, tmp_path):
    _run(kind[1], "pipeline-admission", tmp_path)


def test_status_is_the_controllers_even_for_the_admin(kind):
    """In the cluster the policy trusts the controller's service account alone (system:masters only on the host
    runtime, where the controller runs with the admin's kubeconfig)."""
    from kubernetes import client

    kube = Kube(kind[1]["kubeconfig"])
    wf = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"generateName": "admin-status-"},
          "spec": {"entrypoint": "main", "templates": [{"name": "main", "container": {"image": "x", "command": ["true"]}}]},
          "status": {"phase": "Succeeded"}}
    with pytest.raises(client.ApiException) as e:
        client.CustomObjectsApi(kube.api).create_namespaced_custom_object("argoproj.io", "v1alpha1", "user-alice", "workflows", wf, dry_run="All")
    assert e.value.status == 403 and "written by Argo's workflow controller only" in e.value.body
