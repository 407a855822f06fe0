"""Shared build helpers for components: static Go binaries from modules, controller-gen CRDs, and
scratch-like images from a directory tree. Everything is cached under `cache_dir("components", ...)`
keyed by module version (and content hash for images)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from appliance import paths

CONTROLLER_TOOLS = ("sigs.k8s.io/controller-tools", "v0.16.5")


class BuildError(RuntimeError):
    pass


def _go_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("CGO_ENABLED", "0")
    env["CGO_ENABLED"] = "0"
    env.setdefault("GOFLAGS", "-mod=mod")
    # GOPROXY is honoured from the caller's environment; never set here.
    env.update(extra or {})
    return env


def _run(cmd: list[str], cwd: str | Path | None = None, env: dict | None = None, log: Path | None = None) -> str:
    p = subprocess.run(cmd, cwd=cwd, env=env, text=True, capture_output=True)
    if log:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"$ {' '.join(cmd)}\n{p.stdout}\n{p.stderr}")
    if p.returncode != 0:
        raise BuildError(f"{' '.join(cmd[:3])}... failed ({p.returncode}): {p.stderr.strip()[-1500:]}")
    return p.stdout


def go_binary(module: str, version: str, package: str, name: str, ldflags: str = "-s -w") -> Path:
    """`go install module/package@version` statically (CGO_ENABLED=0, -trimpath) into the cache; cached
    by (module, version, package). Returns the binary's path."""
    out = paths.cache_dir("components", "go", module.replace("/", "_"), version)
    binary = out / name
    if binary.is_file() and os.access(binary, os.X_OK):
        return binary
    if not shutil.which("go"):
        raise BuildError("`go` is needed to build " + module + " (install Go >= 1.22)")
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="gobin-", dir=out))
    pkg = f"{module}/{package}".rstrip("/") if package else module
    t0 = time.monotonic()
    try:
        _run(["nice", "-n", "10", "go", "install", "-trimpath", f"-ldflags={ldflags}", f"{pkg}@{version}"],
             env=_go_env({"GOBIN": str(tmp)}), log=out / f"{name}.build.log")
        built = [p for p in tmp.iterdir() if p.is_file()]
        if len(built) != 1:
            raise BuildError(f"go install {pkg}@{version} produced {[p.name for p in built]}")
        os.replace(built[0], binary)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    (out / f"{name}.json").write_text(json.dumps({"module": module, "version": version, "package": package,
                                                  "seconds": round(time.monotonic() - t0, 1)}))
    return binary


def module_dir(module: str, version: str) -> Path:
    """Source directory of a module version in the Go module cache (downloaded through GOPROXY)."""
    out = _run(["go", "mod", "download", "-json", f"{module}@{version}"], env=_go_env())
    return Path(json.loads(out)["Dir"])


def controller_gen() -> Path:
    return go_binary(CONTROLLER_TOOLS[0], CONTROLLER_TOOLS[1], "cmd/controller-gen", "controller-gen")


def generate_crds(module: str, version: str, api_paths: list[str], key: str, crd_options: str = "crd") -> Path:
    """Run controller-gen over the module's Go API types (`api_paths` relative to the module root);
    CRD YAMLs are cached under cache_dir/components/crds/<module>/<version>/<key>/. Returns that folder."""
    out = paths.cache_dir("components", "crds", module.replace("/", "_"), version, key)
    if out.is_dir() and any(out.glob("*.yaml")):
        return out
    gen = controller_gen()
    src = module_dir(module, version)
    # The module cache is read-only and may lack a go.sum entry set for controller-gen's loader: work
    # on a writable copy of the module source.
    work = Path(tempfile.mkdtemp(prefix="crdgen-"))
    t0 = time.monotonic()
    try:
        shutil.copytree(src, work / "src", ignore=shutil.ignore_patterns(".git", "test", "docs", "hack", "manifests", "config", "charts", "python", "sdk", "examples"))
        for p in (work / "src").rglob("*"):
            if p.is_dir():
                p.chmod(0o755)
            else:
                p.chmod(0o644)
        tmp_out = work / "out"
        _run(["nice", "-n", "10", str(gen), crd_options, *[f"paths=./{p}/..." for p in api_paths], f"output:crd:artifacts:config={tmp_out}"],
             cwd=work / "src", env=_go_env(), log=out.parent / f"{key}.gen.log")
        out.mkdir(parents=True, exist_ok=True)
        for f in tmp_out.glob("*.yaml"):
            shutil.copy(f, out / f.name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    (out / "build.json").write_text(json.dumps({"seconds": round(time.monotonic() - t0, 1)}))
    return out


def load_crds(folder: Path, keep: set[str] | None = None) -> list[dict]:
    """CRD objects from generated YAMLs; `keep` filters by `spec.names.kind`."""
    import yaml

    crds = []
    for f in sorted(folder.glob("*.yaml")):
        for doc in yaml.safe_load_all(f.read_text()):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                if keep is None or doc["spec"]["names"]["kind"] in keep:
                    doc.setdefault("metadata", {}).pop("annotations", None)
                    doc["metadata"].pop("creationTimestamp", None)
                    crds.append(doc)
    return crds


def file_hash(*files: Path) -> str:
    h = hashlib.sha256()
    for f in files:
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]
