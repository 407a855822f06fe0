#!/usr/bin/env python3
"""Simulator control-plane memory: `up` of the laptop profile (1 node) and of sim-dgx-pod on the simulator,
each with its node-count sizing (auto) and with the 1,000-node settings forced (cluster.sim.sizing=large,
what every size ran before), in one run.

    python -m bench.bench_sim_rss [--profiles laptop sim-dgx-pod] [--settle 30] [--no-components]

Reports, per profile and sizing: the control plane's (etcd, kube-apiserver, controller-manager, scheduler,
kwok) peak resident memory during `up`, its resident memory after `settle` idle seconds, and kube-apiserver's
alone, and the time `up` took; the auto rows carry the large run as baseline and their ratio. Host controllers are not counted.
Writes bench/results/sim-rss.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_sim import RSSSampler  # noqa: E402
from bench.common import write  # noqa: E402


def measure(profile_name: str, size: str, settle: float, components: bool) -> dict:
    """Bring the profile up on the simulator with `size` sizing; MiB figures and the sizing used."""
    from appliance import components as catalog
    from appliance import orchestrator, paths, report
    from appliance.providers.sim import SimProvider

    sets = [f"cluster.name=bench-rss-{profile_name}", f"cluster.sim.sizing={size}"]
    if not components:
        sets += [f"components.{n}.enabled=false" for n in catalog.CATALOG]
    profile = orchestrator.load_for(profile_name, sets, "sim")[0].profile
    sim = SimProvider(profile.cluster, paths.state_dir(profile.cluster.name))
    sampler = RSSSampler(sim)
    sampler.start()
    try:
        t0 = time.monotonic()
        orchestrator.up(profile, "sim", report.make())
        up_s = time.monotonic() - t0
        time.sleep(settle)
        procs = {p["name"]: p["rss_bytes"] / 2**20 for p in sim.status()["processes"]}
        sampler.stop_evt.set()
        sampler.join()
        return {"tuning": sim.sizing.size, "up_s": up_s, "peak": sampler.peak_total / 2**20,
                "settled": sum(procs.values()), "apiserver": procs["kube-apiserver"]}
    finally:
        sampler.stop_evt.set()
        orchestrator.down(profile.cluster.name, report.make())


def rows_for(profile_name: str, auto: dict, large: dict) -> list[dict]:
    """Rows of one profile: each auto figure against the same figure with the large settings."""
    label = f"{profile_name} ({auto['tuning']} tuning)"
    out = []
    for key, what in (("peak", "control plane peak RSS during up"), ("settled", "control plane RSS settled"),
                      ("apiserver", "kube-apiserver RSS settled"), ("up_s", "up to ready")):
        out.append({"metric": f"{label}: {what}", "value": round(auto[key], 1 if key == "up_s" else None),
                    "unit": "s" if key == "up_s" else "MiB", "baseline": round(large[key], 1 if key == "up_s" else None),
                    "ratio": round(auto[key] / large[key], 2) if large[key] else None})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profiles", nargs="+", default=["laptop", "sim-dgx-pod"])
    ap.add_argument("--settle", type=float, default=30.0, help="idle seconds after up before the settled sample")
    ap.add_argument("--no-components", action="store_true", help="the control plane alone (no CRDs, no controllers)")
    a = ap.parse_args(argv)
    rows: list[dict] = []
    for name in a.profiles:
        large = measure(name, "large", a.settle, not a.no_components)
        auto = measure(name, "auto", a.settle, not a.no_components)
        rows += rows_for(name, auto, large)
    write("sim-rss", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
