"""Small Go programs the node image ships beyond the toolchain (built from the Go module proxy, cached)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from appliance.paths import cache_dir

#: name -> (module, version): `go install module@version` gives the binary `name`.
PROGRAMS = {
    "local-path-provisioner": ("github.com/rancher/local-path-provisioner", "v0.0.30"),
}


def go_binary() -> str | None:
    return shutil.which("go") or (str(Path("/usr/local/go/bin/go")) if Path("/usr/local/go/bin/go").exists() else None)


def go_program(name: str, report=print, timeout: int = 1800, retry: bool = False) -> Path | None:
    """Path of the cached static binary, building it when missing; None when it can't be built
    (no Go toolchain, no module proxy): callers degrade instead of failing. A failed build is
    remembered and not retried until `retry` (so every later `up` stays fast)."""
    module, version = PROGRAMS[name]
    dest = cache_dir("images", "go-bin", f"{name}-{version}")
    failed = dest.with_name(dest.name + ".failed")
    if dest.exists():
        return dest
    if failed.exists() and not retry:
        return None
    failed.unlink(missing_ok=True)
    go = go_binary()
    if not go:
        report(f"{name}: no Go toolchain; skipping")
        return None  # not remembered: installing Go later should just work
    dest.parent.mkdir(parents=True, exist_ok=True)
    report(f"building {name} {version} from {module} (go install)")
    with tempfile.TemporaryDirectory(prefix=f"gobuild-{name}-", dir=dest.parent) as tmp:
        env = {**os.environ, "CGO_ENABLED": "0", "GOBIN": tmp, "GOFLAGS": "-mod=mod"}
        try:
            r = subprocess.run(
                [go, "install", "-trimpath", "-ldflags=-s -w", f"{module}@{version}"],
                capture_output=True, text=True, env=env, timeout=timeout, cwd=tmp,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            report(f"{name}: build timed out after {timeout}s; skipping")
            failed.write_text("timeout\n")
            return None
        built = Path(tmp, name)
        if r.returncode != 0 or not built.exists():
            log = dest.parent / f"{name}-{version}.log"
            log.write_text(r.stdout + r.stderr)
            report(f"{name}: build failed (log: {log}); skipping")
            failed.write_text(str(log) + "\n")
            return None
        shutil.move(str(built), dest)
    return dest
