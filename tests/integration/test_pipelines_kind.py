"""Pipelines on a real kind cluster: Argo's controller and executor and the versitygw artifact store, built
here, with the training operator, KServe and network policy. Alice's Hera pipelines run as her (train →
serve, a failing step with retries, memoization); bob is refused her workflows and her bucket."""

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


def test_pipeline_train_serve(kind, tmp_path):
    _run(kind[1], "pipeline-train-serve", tmp_path)
