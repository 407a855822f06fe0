"""kind benchmark: node image build (cold, warm) and our cluster step vs bare `kind create cluster`.

Cold = image assembly with the Debian root filesystems already cached (`--debootstrap` also
drops those, which measures the mirror more than us). Cluster: our KindProvider.create()
(returns when every node is Ready and every kube-system pod Running) against
`kind create cluster --image <same> --wait 5m`, same topology, same run, alternated.
Writes bench/results/kind.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import write


def _timed(fn):
    t = time.monotonic()
    out = fn()
    return time.monotonic() - t, out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--debootstrap", action="store_true", help="cold build also re-runs debootstrap")
    ap.add_argument("--skip-build", action="store_true")
    a = ap.parse_args(argv)

    from appliance.images import debian
    from appliance.images.node import build_node_image
    from appliance.images.tools import ensure_tools
    from appliance.providers.kind import KindProvider
    from appliance.providers.kind.config import kind_config
    from appliance.schema import ClusterSpec

    rows = []
    ok, why = KindProvider.available()
    if not ok:
        print(f"skip: {why}", file=sys.stderr)
        return 1
    if not a.skip_build:
        if a.debootstrap:
            for name, pk in (("node", debian.NODE_PACKAGES), ("slim", debian.SLIM_PACKAGES)):
                debian.rootfs_tarball(name, pk, rebuild=True)
        cold, img = _timed(lambda: build_node_image(rebuild=True, report=lambda m: print("  " + m)))
        rows.append(
            {
                "metric": "node image build, cold" + (" (+debootstrap)" if a.debootstrap else " (rootfs cached)"),
                "value": round(cold, 1),
                "unit": "s",
            }
        )
    warm, img = _timed(lambda: build_node_image(report=lambda m: None))
    rows.append({"metric": "node image build, warm (cached)", "value": round(warm, 2), "unit": "s"})

    kind = str(ensure_tools(["kind"])["kind"])
    topo = f"1cp+{a.workers}w"
    ours_t, base_t = [], []
    with tempfile.TemporaryDirectory(prefix="bench-kind-") as tmp:
        for rnd in range(a.rounds):
            # baseline: bare kind, same image and topology
            spec = ClusterSpec(name="bench-base", control_planes=1, workers=a.workers, kind={"image": img.tag})
            cfg = Path(tmp, "base.yaml")
            import yaml

            cfg.write_text(yaml.safe_dump(kind_config(spec, img.tag)))
            subprocess.run([kind, "delete", "cluster", "--name", "bench-base"], capture_output=True)
            cmd = [kind, "create", "cluster", "--name", "bench-base", "--image", img.tag, "--config", str(cfg),
                   "--wait", "5m", "--kubeconfig", str(Path(tmp, "base.kubeconfig"))]  # fmt: skip
            t, r = _timed(lambda cmd=cmd: subprocess.run(cmd, capture_output=True, text=True))
            subprocess.run([kind, "delete", "cluster", "--name", "bench-base"], capture_output=True)
            if r.returncode != 0:
                print(r.stderr[-2000:], file=sys.stderr)
                return 1
            base_t.append(t)
            print(f"  round {rnd + 1}: bare kind create --wait 5m: {t:.1f}s")
            # ours
            spec = ClusterSpec(name="bench-ours", control_planes=1, workers=a.workers, kind={"image": img.tag})
            p = KindProvider(spec, Path(tmp, "state"), report=lambda m: None)
            p.delete()
            t, _ = _timed(p.create)
            p.delete()
            ours_t.append(t)
            print(f"  round {rnd + 1}: appliance kind provider create: {t:.1f}s {p.timings}")
    # Rounds alternate baseline and ours; on a shared host single runs are noisy, so the
    # ratio is over the sums of all rounds (min-of-rounds is reported too).
    ours, base = sum(ours_t) / len(ours_t), sum(base_t) / len(base_t)
    rows.append({"metric": f"cluster up, bare kind --wait 5m ({topo}, mean of {a.rounds})", "value": round(base, 1), "unit": "s"})
    rows.append({"metric": f"cluster up, appliance kind provider ({topo}, mean of {a.rounds})", "value": round(ours, 1), "unit": "s",
                 "baseline": round(base, 1), "ratio": round(ours / base, 3), "target": 1.15})  # fmt: skip
    rows.append({"metric": f"cluster up, min of {a.rounds}: ours / bare kind", "value": round(min(ours_t) / min(base_t), 3), "unit": "x",
                 "target": 1.15})  # fmt: skip
    rows.append({"metric": "machine load average (1 min) at end", "value": round(os.getloadavg()[0], 1), "unit": ""})
    write("kind", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
