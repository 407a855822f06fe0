"""Shared fixtures: every test gets its own state and cache folders."""

import pytest


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("APPLIANCE_STATE", str(tmp_path_factory.mktemp("state")))
