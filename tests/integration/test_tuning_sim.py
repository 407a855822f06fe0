"""The database and Katib on the simulator: `up` refuses them in its first second, naming the component and
the profile override that leaves it out, before it makes any cluster (the simulator runs no pods: no
PostgreSQL on a volume, no suggestion pods for Katib's controller to dial); the laptop profile leaves them out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

pytestmark = [pytest.mark.integration]


def appliance(*args: str, state) -> subprocess.CompletedProcess:
    env = {**os.environ, "APPLIANCE_STATE": str(state)}
    return subprocess.run([sys.executable, "-c", "from appliance.cli import run; run()", *args],
                          capture_output=True, text=True, timeout=120, env=env)


def test_up_on_sim_refuses_the_database_before_any_cluster(tmp_path):
    t0 = time.monotonic()
    r = appliance("up", "--profile", "sim-dgx-pod", "--set", "cluster.name=it-tuning-sim",
                  "--set", "components.database={}", "--set", "components.tuning={}", state=tmp_path)
    assert r.returncode == 1, r.stderr
    error = r.stderr.strip().splitlines()[-1]
    assert "component 'database' needs pods, which the sim provider does not run" in error, error
    assert error.count("fix:") == 1 and "provider_overrides.sim.components.database.enabled: false" in error, error
    assert "Traceback" not in r.stderr and time.monotonic() - t0 < 60
    assert not (tmp_path / "it-tuning-sim").exists()  # no cluster, no state


def test_laptop_plan_on_sim_leaves_database_and_tuning_out(tmp_path):
    r = appliance("plan", "--profile", "laptop", "--provider", "sim", "--json", state=tmp_path)
    assert r.returncode == 0, r.stderr
    steps = {s["id"] for s in json.loads(r.stdout)["steps"]}
    assert "training-operator" in steps and not steps & {"database", "tuning"}, steps
