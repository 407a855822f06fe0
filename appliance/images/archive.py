"""Write container images as docker-archive tarballs (what `docker save` makes), without Docker.

Layers are built deterministically (sorted names, mtime 0, root-owned), so the same
inputs give byte-identical archives and the same image IDs. `ctr images import` and
`docker load` both read the result.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from appliance.util.files import sha256_file

PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class FileEntry:
    """One file of a layer: `src` (a path) or `data` (bytes), placed at `path` with `mode`."""

    path: str
    src: Path | None = None
    data: bytes | None = None
    mode: int = 0o755
    symlink: str = ""


def write_layer(entries: list[FileEntry], out: Path) -> str:
    """A deterministic layer tar holding `entries` (parent dirs added); returns its sha256."""
    dirs: set[str] = set()
    for e in entries:
        parts = e.path.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for d in sorted(dirs):
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(ti)
        for e in sorted(entries, key=lambda e: e.path):
            ti = tarfile.TarInfo(e.path.strip("/"))
            ti.mtime, ti.mode = 0, e.mode
            if e.symlink:
                ti.type, ti.linkname = tarfile.SYMTYPE, e.symlink
                tar.addfile(ti)
            elif e.src is not None:
                ti.size = e.src.stat().st_size
                with open(e.src, "rb") as f:
                    tar.addfile(ti, f)
            else:
                data = e.data or b""
                ti.size = len(data)
                tar.addfile(ti, io.BytesIO(data))
    return sha256_file(out)


@dataclass
class ImageSpec:
    """A docker-archive image: `ref` (full name:tag), its layer tars (bottom first) and config."""

    ref: str
    layers: list[Path]
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=lambda: [PATH_ENV])
    workdir: str = "/"
    user: str = ""
    labels: dict[str, str] = field(default_factory=dict)


def write_docker_archive(spec: ImageSpec, out: Path) -> str:
    """Write `spec` as a docker-archive tar at `out`; returns the image ID (config sha256)."""
    diff_ids = [sha256_file(p) for p in spec.layers]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {
            "Env": spec.env,
            "Entrypoint": spec.entrypoint or None,
            "Cmd": spec.cmd or None,
            "WorkingDir": spec.workdir,
            "User": spec.user,
            "Labels": spec.labels or None,
        },
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{d}" for d in diff_ids]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "appliance images build"} for _ in diff_ids],
    }
    cfg = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    cfg_id = hashlib.sha256(cfg).hexdigest()
    manifest = [{"Config": f"{cfg_id}.json", "RepoTags": [spec.ref], "Layers": [f"{d}/layer.tar" for d in diff_ids]}]
    part = out.with_suffix(".part")
    with tarfile.open(part, "w", format=tarfile.PAX_FORMAT) as tar:

        def add_bytes(name: str, data: bytes) -> None:
            ti = tarfile.TarInfo(name)
            ti.size, ti.mtime, ti.mode = len(data), 0, 0o644
            tar.addfile(ti, io.BytesIO(data))

        add_bytes(f"{cfg_id}.json", cfg)
        seen = set()
        for d, p in zip(diff_ids, spec.layers, strict=True):
            if d in seen:
                continue
            seen.add(d)
            ti = tarfile.TarInfo(f"{d}/layer.tar")
            ti.size, ti.mtime, ti.mode = p.stat().st_size, 0, 0o644
            with open(p, "rb") as f:
                tar.addfile(ti, f)
        add_bytes("manifest.json", json.dumps(manifest).encode())
    part.rename(out)
    return cfg_id


def gunzip_to(src: Path, dest: Path) -> Path:
    with gzip.open(src, "rb") as f, open(dest, "wb") as g:
        shutil.copyfileobj(f, g)
    return dest
