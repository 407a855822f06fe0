"""`make bench`: run every bench/bench_*.py (or those named), then print all results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.common import RESULTS, print_table

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if argv:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in argv]
    failed = []
    for s in scripts:
        print(f"== {s.stem}", flush=True)
        if subprocess.run([sys.executable, "-m", f"bench.{s.stem}"], cwd=HERE.parent).returncode != 0:
            failed.append(s.stem)
    print("\n== summary")
    for f in sorted(RESULTS.glob("*.json")):
        data = json.loads(f.read_text())
        rows = data.get("results") or [{"metric": k, "value": v} for k, v in data.items() if isinstance(v, (int, float, bool))]
        m = data.get("machine", {})
        print_table(f"{data.get('benchmark', f.stem)} ({m.get('cpus', '?')} CPU, {m.get('when') or data.get('when', '')})", rows)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
