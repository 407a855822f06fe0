"""Bare-metal converge timing on systemd containers (one Docker network), offline, kubeadm init and joins:
a fresh cluster of each size (first converge, then the idempotent second one), and one more host joining
the largest.

    python bench/bench_baremetal.py [--sizes 1,3,4] [--connection community.docker.docker_api]

Writes bench/results/baremetal.json (with machine info) and prints a table.
Targets: 3 hosts' first converge <= 1.5x one host's (same run); second converge <= 60 s for one host.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench import common  # noqa: E402

TARGET_SECOND_S = 60.0
TARGET_THREE_OVER_ONE = 1.5


def machine() -> dict:
    """common.machine() with the Docker and Ansible versions this run used."""
    import ansible.release

    docker = subprocess.run(["docker", "version", "-f", "{{.Server.Version}}"], capture_output=True, text=True).stdout
    return {**common.machine(), "ansible_core": ansible.release.__version__, "docker": docker.strip()}


def cluster(hb, image: str, bins: Path, work: Path, size: int, join_one: bool) -> dict:
    """Converge `size` fresh hosts twice; with `join_one`, then converge again with one host more."""
    tag = uuid.uuid4().hex[:6]
    network = f"bmb-{tag}"
    subprocess.run(["docker", "network", "create", network], check=True, capture_output=True)
    hosts, out = [], {"hosts": size}
    try:
        t0 = time.monotonic()
        for i in range(size + join_one):
            hosts.append(hb.Host(image, f"bmb-{tag}-{i}", network=network).start())
        out["boot_s"] = round(time.monotonic() - t0, 2)
        pairs = [(h.name, "control-plane" if i == 0 else "worker") for i, h in enumerate(hosts)]
        lines: list[str] = []
        extra = {"appliance_kubeadm_init": True, "appliance_kubeadm_ignore_preflight_errors": ["all"]}
        p = hb.make_provider(pairs[:size], bins, work / f"state-{size}", lines, **extra)
        first = p.converge()
        second = p.run_playbook("site.yml")
        assert second.ok, [f.line() for f in second.failures]
        out.update(first_converge_s=first.seconds, first_changed=first.changed_count, second_converge_s=second.seconds,
                   second_changed=second.changed_count, second_changed_tasks=[f"{h}: {t}" for h, t in second.changed])
        if join_one:
            grown = hb.make_provider(pairs, bins, work / f"state-{size}", lines, **extra)
            joined = grown.converge()
            out.update(join_converge_s=joined.seconds,
                       join_changed_elsewhere=[f"{h}: {t}" for h, t in joined.changed if h != pairs[-1][0]])
    finally:
        for h in hosts:
            h.stop()
        subprocess.run(["docker", "network", "rm", network], capture_output=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--connection", default=os.environ.get("APPLIANCE_TEST_ANSIBLE_CONNECTION", "community.docker.docker_api"))
    ap.add_argument("--sizes", default="1,3,4", help="cluster sizes, each made fresh; the largest also gets one host more")
    ap.add_argument("--out", default=str(common.RESULTS / "baremetal.json"))
    args = ap.parse_args()
    os.environ["APPLIANCE_TEST_ANSIBLE_CONNECTION"] = args.connection
    sys.path.insert(0, str(ROOT / "tests" / "integration"))
    import baremetal_hosts as hb  # the integration tests' hosts and provider

    sizes = sorted({int(s) for s in args.sizes.split(",")})
    info = machine()
    t0 = time.monotonic()
    image = hb.host_image()
    image_s = time.monotonic() - t0
    work = Path(tempfile.mkdtemp(prefix="bench-baremetal-"))
    bins, real = hb.k8s_binaries(work)
    if not real:
        print("kubelet/kubeadm are stand-ins (the toolchain has not built them): nothing to measure")
        return 1
    runs = [cluster(hb, image, bins, work, n, join_one=n == sizes[-1]) for n in sizes]
    by = {r["hosts"]: r for r in runs}
    ratio = by[3]["first_converge_s"] / by[1]["first_converge_s"] if 1 in by and 3 in by else None
    result = {
        "benchmark": "baremetal-converge",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {**info, "loadavg_end": os.getloadavg()[0]},
        "connection": args.connection,
        "image_s": round(image_s, 2),
        "runs": runs,
        "three_over_one": round(ratio, 2) if ratio else None,
        "target_three_over_one": TARGET_THREE_OVER_ONE,
        "target_second_s": TARGET_SECOND_S,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nbare-metal converge ({info['cpus']} cpus, {args.connection}; kubeadm init and joins, offline)")
    for r in runs:
        join = f", one more joins in {r['join_converge_s']:.1f} s" if "join_converge_s" in r else ""
        print(f"  {r['hosts']} host(s): first {r['first_converge_s']:.1f} s (changed {r['first_changed']}), "
              f"second {r['second_converge_s']:.1f} s (changed {r['second_changed']}){join}")
    if ratio:
        print(f"  3 hosts / 1 host: {ratio:.2f}x (target <= {TARGET_THREE_OVER_ONE}x)")
    print(f"wrote {out}")
    return 0 if all(r["second_changed"] == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
