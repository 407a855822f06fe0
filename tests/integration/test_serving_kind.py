"""Train then serve on a real kind cluster: the training operator and KServe (RawDeployment) run in the
cluster from images built here; a 2-rank PyTorchJob trains the stub model, an InferenceService serves
it (v1 + v2 predictions checked), a corrupt artifact gives a clear failed condition, and one user's
token gets 403 in another user's namespace."""

import pytest

from appliance import e2e
from tests.integration.clusters import cluster, require_kind

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.docker]
COMPONENTS = ("platform-base", "user-profiles", "training-operator", "kserve")


@pytest.fixture(scope="module")
def kind():
    require_kind()
    with cluster("ci", "kind", ["cluster.name=it-serving-kind", "components.kserve.enabled=true"], COMPONENTS) as up:
        yield up


def _run(result, name, tmp_path):
    (r,) = e2e.run(result["kubeconfig"], "kind", set(COMPONENTS), name, tmp_path)
    failed = [f"{s.name}: {s.message}" for s in r.steps if s.status == "failed"]
    assert r.passed, failed


def test_up_installs_training_and_serving(kind):
    _, result = kind
    assert not result["failed"] and {"training-operator", "kserve"} <= set(result["ran"]) | set(result["skipped"])


def test_train_then_serve(kind, tmp_path):
    _run(kind[1], "train-then-serve", tmp_path)


def test_bad_model_fails_clearly(kind, tmp_path):
    _run(kind[1], "bad-model", tmp_path)


def test_user_isolation(kind, tmp_path):
    _run(kind[1], "user-isolation", tmp_path)
