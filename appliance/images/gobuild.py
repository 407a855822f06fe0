"""Small Go programs the node image ships beyond the toolchain (built from the Go module proxy, cached).

Each is built in a throwaway wrapper module (`go get module@version`, then `go build package`),
which works whether or not the module's own go.mod would allow `go install pkg@version`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from appliance.paths import cache_dir
from appliance.toolchain.sources import find_go

#: name -> (module, version, main package)
PROGRAMS = {
    "local-path-provisioner": ("github.com/rancher/local-path-provisioner", "v0.0.30", "github.com/rancher/local-path-provisioner"),
    # the oldest crictl the module proxy here serves; CRI v1 works with containerd 1.6
    "crictl": ("sigs.k8s.io/cri-tools", "v1.34.0", "sigs.k8s.io/cri-tools/cmd/crictl"),
}


def go_binary() -> str | None:
    return find_go()


def go_program(name: str, report=print, timeout: int = 1800, retry: bool = False) -> Path | None:
    """Path of the cached static binary, building it when missing; None when it can't be built
    (no Go toolchain, no module proxy): callers degrade instead of failing. A failed build is
    remembered and not retried until `retry` (so every later `up` stays fast)."""
    module, version, package = PROGRAMS[name]
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
    report(f"building {name} {version} from {module} (go build)")
    log = dest.parent / f"{name}-{version}.log"
    with tempfile.TemporaryDirectory(prefix=f"gobuild-{name}-", dir=dest.parent) as tmp:
        Path(tmp, "go.mod").write_text("module appliance.local/gobuild\n\ngo 1.22\n")
        Path(tmp, "tools.go").write_text(f'//go:build tools\n\npackage tools\n\nimport _ "{package}"\n')
        env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}
        out = Path(tmp, name)
        steps = [
            [go, "get", f"{module}@{version}"],
            [go, "build", "-trimpath", "-ldflags=-s -w", "-o", str(out), package],
        ]
        text = ""
        for cmd in steps:
            try:
                r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=tmp)
            except subprocess.TimeoutExpired:
                report(f"{name}: build timed out after {timeout}s; skipping")
                failed.write_text("timeout\n")
                return None
            text += f"$ {' '.join(cmd)}\n{r.stdout}{r.stderr}"
            if r.returncode != 0:
                log.write_text(text)
                report(f"{name}: build failed (log: {log}); skipping")
                failed.write_text(str(log) + "\n")
                return None
        shutil.move(str(out), dest)
    return dest
