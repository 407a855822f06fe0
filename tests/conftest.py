"""Shared fixtures: the whole test session keeps cluster state in its own folder (build caches stay shared)."""

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _isolated_state(tmp_path_factory):
    old = os.environ.get("APPLIANCE_STATE")
    os.environ["APPLIANCE_STATE"] = str(tmp_path_factory.mktemp("state"))
    yield
    if old is None:
        os.environ.pop("APPLIANCE_STATE", None)
    else:
        os.environ["APPLIANCE_STATE"] = old
