#!/usr/bin/env python3
"""Backup and restore on kind: alice's home filled with N MiB (random, so nothing compresses it away) and
objects in her bucket; then `appliance backup` (credentials sealed) and `appliance restore` of that folder,
against the floor of the same transport measured in the same run — one `kubectl exec tar` of her home
through a copy pod, as a person would do it by hand. JSON to bench/results/backup.json.

    python -m bench.bench_backup [--mib 256] [--objects 20] [--keep]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import write  # noqa: E402

NAME = "bench-backup"
COMPONENTS = ("platform-base", "user-profiles", "notebooks", "pipelines", "database")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=256, help="MiB of random data in alice's home")
    ap.add_argument("--objects", type=int, default=20, help="1 MiB objects in alice's bucket")
    ap.add_argument("--keep", action="store_true", help="leave the cluster up")
    a = ap.parse_args()

    from appliance import backup as backups
    from appliance import orchestrator, profiles, report
    from appliance.backup import volumes

    p = profiles.load("ci", [f"cluster.name={NAME}"], "kind").profile
    p = p.model_copy(update={"components": {n: c for n, c in p.components.items() if n in COMPONENTS}})
    t0 = time.monotonic()
    up = orchestrator.up(p, "kind", report.make())
    up_s = time.monotonic() - t0
    try:
        target = backups.Target(NAME)
        ns = "user-alice"
        if target.kube.get("v1", "PersistentVolumeClaim", "home-alice", ns) is None:
            target.kube.apply([{"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "home-alice", "namespace": ns},
                                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": f"{a.mib * 2}Mi"}}}}])
        with volumes.helper(target, ns, "home-alice", writable=True) as pod:
            target.run(["exec", "-n", ns, pod, "--", "sh", "-c", f"head -c {a.mib}M /dev/urandom > /data/blob"], what="fill")
            t0 = time.monotonic()
            with open(os.devnull, "wb") as null:
                target.run(["exec", "-n", ns, pod, "--", "tar", "-C", "/data", "-cf", "-", "."], stdout=null, what="raw copy")
            raw_s = time.monotonic() - t0
        spec = importlib.util.spec_from_file_location("store", ROOT / "e2e" / "pipelines" / "store.py")
        store = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(store)
        from kubernetes.config import kube_config

        kube_config.KUBE_CONFIG_DEFAULT_LOCATION = target.kube.kubeconfig  # store.py loads the default kubeconfig
        keys = store.keys(ns)
        for i in range(a.objects):
            assert store.request(keys, "PUT", keys["bucket"], f"bench/{i}.bin", body=os.urandom(2**20))[0] == 200
        with tempfile.TemporaryDirectory(prefix="bench-backup-") as tmp:
            key = Path(tmp, "key")
            key.write_text("a passphrase for the benchmark, long enough\n")
            t0 = time.monotonic()
            m = backups.backup(NAME, Path(tmp, "b"), key, lambda _: None)
            backup_s = time.monotonic() - t0
            size = sum(f["size"] for f in m["files"])
            t0 = time.monotonic()
            backups.restore(NAME, Path(tmp, "b"), key, lambda _: None, report.make())
            restore_s = time.monotonic() - t0
    finally:
        if not a.keep:
            orchestrator.down(NAME, report.make())
    data = a.mib + a.objects
    write("backup", [
        {"metric": "up of the cluster (context)", "value": round(up_s, 1), "unit": "s", "ran": len(up["ran"])},
        {"metric": f"data made: home {a.mib} MiB + {a.objects} x 1 MiB objects", "value": data, "unit": "MiB"},
        {"metric": "backup size", "value": round(size / 2**20, 1), "unit": "MiB", "baseline": data, "ratio": round(size / 2**20 / data, 2)},
        {"metric": "backup (credentials, objects, homes, the store, dumps)", "value": round(backup_s, 1), "unit": "s",
         "baseline": round(raw_s, 1), "ratio": round(backup_s / raw_s, 2), "note": "baseline: one kubectl exec tar of the home alone"},
        {"metric": "restore (then up)", "value": round(restore_s, 1), "unit": "s", "baseline": round(raw_s, 1), "ratio": round(restore_s / raw_s, 2)},
    ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
