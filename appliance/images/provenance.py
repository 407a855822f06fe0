"""What each input of the appliance is pinned by and how its download is checked, one row per input: the table
`appliance images verify` and `appliance bundle verify` print. A row is `ok` only when the input is pinned to
exact content and its download is verified; the others say what is missing."""

from __future__ import annotations

import fnmatch
import os
import subprocess

from appliance import paths
from appliance.images import builds, debian
from appliance.toolchain.sources import find_go


def _go_env(name: str) -> str:
    go = find_go()
    if go:
        r = subprocess.run([go, "env", name], capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.strip()
    return os.environ.get(name, "sum.golang.org" if name == "GOSUMDB" else "")


def _sumdb_skips(module: str, patterns: str) -> bool:
    return any(fnmatch.fnmatch(module, p) or module.startswith(p.rstrip("/") + "/") or module == p
               for p in patterns.split(",") if p)


def rows(pins: dict) -> list[dict]:
    """One row per input of `pins` (appliance version's shape): kind, what, pinned by, verified by, ok."""
    out = []

    def row(kind: str, what: str, pinned: str, verified: str, ok: bool) -> None:
        out.append({"kind": kind, "input": what, "pinned": pinned, "verified": verified, "ok": ok})

    sumdb = _go_env("GOSUMDB")
    skip = ",".join(filter(None, (_go_env("GONOSUMDB"), _go_env("GOPRIVATE"))))
    for name, version in pins.get("tools", {}).items():
        row("toolchain", f"{name} {version}", "version", "sha256 of the official release, or its Go module (below)", True)
    comps = pins.get("components", {})
    for module in sorted({g for c in comps.values() for g in c.get("go", [])}):
        off = sumdb == "off" or _sumdb_skips(module.split("@")[0], skip)
        row("go module", module, "version (go.sum of the module)", "no: GOSUMDB is off or skips it" if off else f"Go checksum database ({sumdb})", not off)
    for image in sorted({i for c in comps.values() for i in c.get("images", [])}):
        digest = "@sha256:" in image
        row("upstream image", image, "digest" if digest else "tag (a tag can move)",
            "content digest" if digest else "no: used only with cluster.images.source=upstream", digest)
    for lock in sorted({lk for c in comps.values() for lk in c.get("locks", [])}):
        path = paths.shipped(lock)
        if not builds.read_lock(path):
            continue
        hashed = builds.hashed(path)
        row("wheels", lock, "version and sha256 of each wheel" if hashed else "versions only",
            "pip --require-hashes" if hashed else "no: run tools/lock_hashes.py", hashed)
    row("debian", f"root filesystems ({debian.SUITE})", "package names (versions float)",
        f"Release signature ({debian.KEYRING}, enforced)", False)
    return out


def table(rows_: list[dict]) -> str:
    w = max(len(r["input"]) for r in rows_)
    lines = [f"{'':3}{'KIND':<15} {'INPUT':<{w}}  {'PINNED BY':<36} VERIFIED BY"]
    lines += [f"{'ok' if r['ok'] else '!!':<3}{r['kind']:<15} {r['input']:<{w}}  {r['pinned']:<36} {r['verified']}" for r in rows_]
    bad = sum(not r["ok"] for r in rows_)
    lines.append(f"{bad} of {len(rows_)} inputs not pinned to exact content or not verified" if bad else f"all {len(rows_)} inputs pinned and verified")
    return "\n".join(lines)
