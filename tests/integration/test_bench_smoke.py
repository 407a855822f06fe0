"""Every simulator benchmark (and the images' one) runs at a tiny size, so none can rot unnoticed (`make bench` runs them at full size);
results go to a temporary folder, never over bench/results, and record the run (commit, command line, load)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]

#: benchmark module -> (arguments at a tiny size, the result file it writes)
SMOKE = {
    "bench_sim": (["--nodes", "2", "--pods", "4", "--timeout", "180"], "sim.json"),
    "bench_kwokctl": (["--nodes", "2", "--pods", "4", "--rounds", "1", "--timeout", "60"], "kwokctl.json"),
    "bench_sim_rss": (["--profiles", "laptop", "--settle", "1", "--no-components"], "sim-rss.json"),
    "bench_monitoring": (["--nodes", "2", "--scrapes", "1"], "monitoring.json"),
    "bench_tuning_sim": (["--nodes", "2", "--trials", "2", "--parallel", "2", "--run-time", "1s"], "tuning-sim.json"),
    "bench_queues_sim": (["--nodes", "1", "--jobs", "2", "--pods-per-job", "8", "--timeout", "300", "--mix", "0.01"], "queues-sim.json"),
    "bench_images": (["--rounds", "1", "--images", "gpu-exporter"], "images.json"),  # Docker's, as the host group has
}


@pytest.mark.parametrize("module", sorted(SMOKE))
def test_benchmark_runs_at_a_tiny_size(module, tmp_path):
    args, result = SMOKE[module]
    if module == "bench_sim":
        args = [*args, "--out", str(tmp_path / result)]
    env = {**os.environ, "APPLIANCE_BENCH_RESULTS": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", f"bench.{module}", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    data = json.loads((tmp_path / result).read_text())
    machine = data["machine"]
    assert machine["commit"] != "unknown" and machine["argv"][1:] == args and len(machine["loadavg"]) == 3, machine
