#!/usr/bin/env python3
"""An in-place upgrade from the last release: `up` by the release (its own worktree and virtualenv, the build
caches shared), then `up` by this tree on that cluster (the upgrade), then again (a no-op), against a fresh
`up` by this tree in the same run; JSON to bench/results/upgrade.json.

    python -m bench.bench_upgrade [--profile sim-dgx-pod] [--provider sim]

Only what the release built differently is built (cached by content); the builds happen in the release's
`up`, outside the upgrade's time. On the simulator no pod serves, so requests through the upgrade are counted
by the kind test of a KServe controller roll (test_serving_kind), not here.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import write  # noqa: E402
from tools.release import released  # noqa: E402

APPLIANCE = str(Path(sys.executable).with_name("appliance"))


def _timed(argv: list[str], env: dict) -> tuple[float, str]:
    t0 = time.monotonic()
    r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=3600)
    if r.returncode:
        raise SystemExit(f"{' '.join(argv[:3])} failed: {r.stderr[-2000:]}")
    return round(time.monotonic() - t0, 1), r.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="sim-dgx-pod")
    ap.add_argument("--provider", default="sim")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-upgrade-") as work:
        env = {**os.environ, "APPLIANCE_STATE": str(Path(work) / "state")}
        args = ["--profile", a.profile, "--provider", a.provider, "--set", "cluster.name=bench-upgrade"]
        down = [APPLIANCE, "down", "--cluster", "bench-upgrade", "--yes"]
        with released(Path(work)) as (version, old):
            try:
                old_up, _ = _timed([str(old), "up", *args], env)
                plan = json.loads(_timed([APPLIANCE, "upgrade", "--plan", "--json", *args], env)[1])
                upgraded, _ = _timed([APPLIANCE, "up", *args], env)
                noop, _ = _timed([APPLIANCE, "up", *args], env)
                _timed(down, env)
                fresh, _ = _timed([APPLIANCE, "up", *args], env)
            finally:
                subprocess.run(down, env=env, capture_output=True, timeout=600)
    steps = plan["steps"]
    again = sorted(s for s, what in steps.items() if what != "unchanged")
    print(f"upgrade {plan['from'] or version} -> {plan['to']}: applied again {again}")
    where = f"{a.profile} on {a.provider}"
    write("upgrade", [
        {"metric": f"{where}: up by release {version}, fresh", "value": old_up, "unit": "s"},
        {"metric": f"{where}: upgrade in place ({len(again)} of {len(steps)} steps again)", "value": upgraded, "unit": "s",
         "baseline": fresh, "ratio": round(upgraded / fresh, 2)},
        {"metric": f"{where}: up by this tree, fresh (the baseline)", "value": fresh, "unit": "s"},
        {"metric": f"{where}: up again after the upgrade (no-op)", "value": noop, "unit": "s"},
    ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
