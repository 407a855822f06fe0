#!/usr/bin/env python3
"""Offline bundles: size per provider by kind of content, create time on warm caches, and `up --bundle` from an
empty HOME against `up` on this host's warm caches, same profile, same run; JSON to bench/results/bundle.json.

    python -m bench.bench_bundle [--profile ci] [--providers sim,kind]

`up --bundle` counts everything a new machine does: reading the bundle, checking each hash, unpacking (for kind also
`docker load` of the node image, removed from the daemon first so that it is really loaded), the offline check,
then the same `up`. Targets (issue 27): the ci kind bundle <= 2 GiB; `up --bundle` <= 1.2x a warm `up`.
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

APPLIANCE = str(Path(sys.executable).with_name("appliance"))


def _run(args: list[str], env: dict | None = None, timeout: int = 3600) -> tuple[float, str]:
    t0 = time.monotonic()
    r = subprocess.run([APPLIANCE, *args], env=env, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise SystemExit(f"appliance {' '.join(args)} failed: {r.stderr[-2000:]}")
    return time.monotonic() - t0, r.stdout


def measure(profile: str, provider: str, work: Path) -> list[dict]:
    out = work / f"{profile}-{provider}.bundle"
    created, stdout = _run(["bundle", "create", "--profile", profile, "--provider", provider, "-o", str(out), "--json"])
    made = json.loads(stdout)
    rows = [{"metric": f"{provider}: bundle size (compressed)", "value": round(made["bytes"] / 2**30, 3), "unit": "GiB",
             **({"target": 2.0} if (provider, profile) == ("kind", "ci") else {})},
            {"metric": f"{provider}: bundle create, warm caches", "value": round(created, 1), "unit": "s"}]
    rows += [{"metric": f"{provider}: {kind} (uncompressed)", "value": round(s["bytes"] / 2**20, 1), "unit": "MiB"}
             for kind, s in made["summary"].items()]
    name = f"bench-bundle-{provider}"
    warm_env = {**os.environ, "APPLIANCE_STATE": str(work / "state-warm")}
    warm, _ = _run(["up", "--profile", profile, "--provider", provider, "--set", f"cluster.name={name}"], warm_env)
    _run(["down", "--cluster", name, "--yes"], warm_env)
    manifest = json.loads(_run(["bundle", "inspect", str(out), "--json"])[1])
    for f in manifest["files"]:
        if f["entry"].startswith("docker:"):
            subprocess.run(["docker", "rmi", f["entry"].removeprefix("docker:")], capture_output=True)
    home = work / f"home-{provider}"
    home.mkdir()
    fresh_env = {**{k: v for k, v in os.environ.items() if not k.startswith(("APPLIANCE_", "XDG_"))}, "HOME": str(home)}
    fresh, _ = _run(["up", "--profile", profile, "--provider", provider, "--set", f"cluster.name={name}", "--bundle", str(out)], fresh_env)
    _run(["down", "--cluster", name, "--yes"], fresh_env)
    return rows + [{"metric": f"{provider}: up --bundle, empty HOME", "value": round(fresh, 1), "unit": "s",
                    "baseline": round(warm, 1), "ratio": round(fresh / warm, 2), "target": 1.2}]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="ci")
    ap.add_argument("--providers", default="sim,kind")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-bundle-") as tmp:
        rows = [r for p in a.providers.split(",") for r in measure(a.profile, p, Path(tmp))]
    write("bundle", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
