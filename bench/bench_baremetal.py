"""Bare-metal converge timing: first converge and the idempotent second one, on a systemd container.

    python bench/bench_baremetal.py [--keep] [--connection community.docker.docker_api]

Writes bench/results/baremetal.json (with machine info) and prints a table.
Target: second (idempotent) converge <= 60 s.
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
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from bench import common  # noqa: E402

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

TARGET_SECOND_S = 60.0


def machine() -> dict:
    """common.machine() with the Docker and Ansible versions this run used."""
    import ansible.release

    docker = subprocess.run(["docker", "version", "-f", "{{.Server.Version}}"], capture_output=True, text=True).stdout
    return {**common.machine(), "ansible_core": ansible.release.__version__, "docker": docker.strip()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--connection", default=os.environ.get("APPLIANCE_TEST_ANSIBLE_CONNECTION",
                                                           "community.docker.docker_api"))
    ap.add_argument("--keep", action="store_true", help="leave the container running")
    ap.add_argument("--out", default=str(common.RESULTS / "baremetal.json"))
    args = ap.parse_args()
    os.environ["APPLIANCE_TEST_ANSIBLE_CONNECTION"] = args.connection

    import test_baremetal as tb  # the integration test's host and provider helpers

    from appliance.providers.baremetal.image import build_image

    info = machine()
    t0 = time.monotonic()
    image = build_image(report=print)
    image_s = time.monotonic() - t0
    work = Path(tempfile.mkdtemp(prefix="bench-baremetal-"))
    bins, real = tb.k8s_binaries(work)
    host = tb.Host(image, f"bm-bench-{os.getpid()}")
    t0 = time.monotonic()
    host.start()
    boot_s = time.monotonic() - t0
    lines: list[str] = []
    try:
        p = tb.make_provider(host.name, bins, work / "state", lines, appliance_kubeadm_init=False)
        first = p.converge()
        second = p.run_playbook("site.yml")
        assert second.ok, [f.line() for f in second.failures]
    finally:
        if not args.keep:
            host.stop()
    tasks = sum(s.get("ok", 0) + s.get("skipped", 0) for s in second.stats.values())
    result = {
        "benchmark": "baremetal-converge",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {**info, "loadavg_end": os.getloadavg()[0]},
        "connection": args.connection,
        "k8s_binaries": "toolchain" if real else "stand-ins",
        "image_s": round(image_s, 2),
        "boot_s": round(boot_s, 2),
        "first_converge_s": first.seconds,
        "first_changed": first.changed_count,
        "second_converge_s": second.seconds,
        "second_changed": second.changed_count,
        "second_changed_tasks": [f"{h}: {t}" for h, t in second.changed],
        "tasks": tasks,
        "target_second_s": TARGET_SECOND_S,
        "second_within_target": second.seconds <= TARGET_SECOND_S,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    rows = [
        ("image (cached build/import)", f"{image_s:.1f} s", ""),
        ("container boot (systemd)", f"{boot_s:.1f} s", ""),
        ("first converge", f"{first.seconds:.1f} s", f"changed={first.changed_count}"),
        ("second converge", f"{second.seconds:.1f} s",
         f"changed={second.changed_count} (target <= {TARGET_SECOND_S:.0f} s: "
         f"{'ok' if result['second_within_target'] else 'MISSED'})"),
    ]
    w = max(len(r[0]) for r in rows)
    print(f"\nbare-metal converge ({info['cpus']} cpus, load {info['loadavg'][0]:.1f}, {args.connection}, "
          f"k8s binaries: {result['k8s_binaries']})")
    for name, t, note in rows:
        print(f"  {name:<{w}}  {t:>9}  {note}")
    print(f"wrote {out}")
    return 0 if second.changed_count == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
