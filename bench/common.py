"""Shared bench helpers: machine facts and a results file with a printed table."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    import psutil

    return {
        "host": platform.node(), "cpus": psutil.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(), "python": platform.python_version(), "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
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
