"""Shared bench helpers: machine facts and a results file with a printed table."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

#: where results go: bench/results, or $APPLIANCE_BENCH_RESULTS (the test suite's smoke runs)
RESULTS = Path(os.environ.get("APPLIANCE_BENCH_RESULTS") or Path(__file__).resolve().parent / "results")


def machine() -> dict:
    """The machine, the code and the run a result comes from: CPUs and their model, memory, cgroup version, the
    commit (with `+dirty` when the tree has changes), the command line and the load average at the start."""
    import psutil

    root = Path(__file__).resolve().parents[1]
    git = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty=+dirty", "--abbrev=12"],
                         capture_output=True, text=True).stdout.strip()
    model = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), platform.processor())
    return {
        "host": platform.node(), "cpus": psutil.cpu_count(), "cpu_model": model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1), "kernel": platform.release(),
        "cgroup": "v2" if Path("/sys/fs/cgroup/cgroup.controllers").exists() else "v1", "python": platform.python_version(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "commit": git or "unknown", "argv": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def write(name: str, rows: list[dict]) -> Path:
    """rows: [{"metric": ..., "value": ..., "unit": ..., "baseline": optional, "ratio": optional, "target": optional}]"""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"benchmark": name, "machine": machine(), "results": rows}, indent=2))
    print_table(name, rows)
    return path


def print_table(name: str, rows: list[dict]) -> None:
    print(f"\n{name}")
    for r in rows:
        extra = "".join(f"  {k}={r[k]}" for k in ("baseline", "ratio", "target") if r.get(k) is not None)
        print(f"  {r['metric']:<44} {r['value']!s:>12} {r.get('unit', ''):<6}{extra}")
