"""Katib on a real kind cluster, with the shared PostgreSQL: the controller, db-manager, goptuna suggestions
and the metrics collector from images built here (or upstream pins). alice tunes the stub model (2-rank
PyTorchJob trials; the database pod deleted mid-experiment loses nothing), drives Katib with KatibClient,
sees clear failures, and bob gets 403 in her namespace. A second `up` keeps the database's passwords."""

import base64

import pytest

from appliance import orchestrator, report
from appliance.components import CATALOG
from appliance.kube import Kube
from tests.integration.clusters import scenario_passes, stack_profile

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.docker]
COMPONENTS = ("platform-base", "user-profiles", "training-operator", "database", "tuning", "network-policy")


@pytest.fixture(scope="module")
def kind(stack):
    """The stack cluster (conftest.py): (profile, result of its `up`)."""
    return stack


def _run(result, name, tmp_path):
    scenario_passes(result, "kind", COMPONENTS, name, tmp_path)


def _passwords(kube) -> dict[str, str]:
    data = kube.get("v1", "Secret", "database-credentials", "database").to_dict()["data"]
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def test_up_installs_database_and_tuning(kind):
    profile, result = kind
    assert not result["failed"] and {"database", "tuning"} <= set(result["ran"])
    kube = Kube(result["kubeconfig"])
    for name in ("database", "tuning"):
        assert CATALOG[name](profile.components[name].options).ready(kube) == (True, "")
    pw = _passwords(kube)
    assert set(pw) == {"postgres", "katib"} and all(len(v) >= 24 for v in pw.values())


def test_tune_stub(kind, tmp_path):
    _run(kind[1], "tune-stub", tmp_path)


def test_tune_sdk(kind, tmp_path):
    _run(kind[1], "tune-sdk", tmp_path)


def test_tune_bad(kind, tmp_path):
    _run(kind[1], "tune-bad", tmp_path)


def test_tune_isolation(kind, tmp_path):
    _run(kind[1], "tune-isolation", tmp_path)


def test_second_up_keeps_the_database_passwords(kind):
    """A second `up` that re-applies the database (a new client added) keeps every existing password and
    makes one for the newcomer; the server restarts with its role, Katib keeps working (tune-isolation).
    The profile's own clients are back after (the stack cluster is shared)."""
    profile, result = kind
    kube = Kube(result["kubeconfig"])
    before = _passwords(kube)
    try:
        out = orchestrator.up(stack_profile(("components.database.options.clients=[katib, extra]",)), "kind", report.make())
        assert not out["failed"] and "database" in out["ran"]
        after = _passwords(kube)
        assert {k: after[k] for k in before} == before and after["extra"] not in before.values()
    finally:
        orchestrator.up(profile, "kind", report.make())
