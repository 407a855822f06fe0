"""Bundles: what `up` of one profile on one provider used from this host's caches, in one zstd-compressed tar
stream, read back on a machine with no network.

    with paths.recording() as used: prebuild(...)          # what `up` needs, built or found
    create(out, used, meta, report)                       # pack: bundle.json first, then every file
    read_manifest(path); verify(path); unpack(path, m)   # inspect, check every hash, fill the caches

The first member, bundle.json, holds the profile, provider, architecture, pins, and each file's size and
sha256; a cache entry (the unit a build makes: one Go module's binaries, one image, one toolchain binary) is
unpacked whole or not at all. Images the Docker daemon holds (kind's node image) travel as `docker save`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Iterable, Iterator

from appliance import paths
from appliance.errors import UserError
from appliance.images import node, signing
from appliance.util.files import ZSTD_MAGIC, atomic_write, file_key, sha256_file

FORMAT = 1
MANIFEST = "bundle.json"
CHUNK = 1 << 20
#: the cache's folders a bundle carries: prefix -> (kind, how deep one entry sits). What is not here (Go's module
#: and build caches, build folders, locks, logs) is how things were made, not what `up` runs.
ENTRIES: dict[tuple[str, ...], tuple[str, int]] = {
    ("toolchain", "go"): ("", 0),
    ("toolchain",): ("toolchain", 4),                 # toolchain/<set>/bin/<tool>, with the set's manifest.json
    ("components", "go"): ("go programs", 4),         # components/go/<module>/<version>
    ("components", "images"): ("component images", 4),
    ("components", "crds"): ("CRDs", 5),
    ("components", "wheels"): ("wheels", 3),
    ("components", "npm"): ("npm packages", 3),
    ("images", "rootfs"): ("root filesystems", 3),
    ("images", "control-plane"): ("control-plane images", 3),
    ("images", "systemd-host"): ("host image", 3),
    ("images", "node"): ("node image", 3),
}
DOCKER_KIND = "node image"
Report = Callable[[str], None]


@dataclass
class Item:
    """One file of a bundle: `name` in the archive, `entry` it belongs to (a cache path, or docker:<tag>)."""

    name: str
    entry: str
    kind: str
    size: int
    sha256: str
    mode: int = 0o644

    def row(self) -> dict:
        return {"name": self.name, "entry": self.entry, "kind": self.kind, "size": self.size, "sha256": self.sha256, "mode": self.mode}


def _entry(rel: Path) -> tuple[str, Path] | None:
    """(kind, entry path) of a path relative to the cache root, or None when bundles leave it out."""
    best = max((p for p in ENTRIES if rel.parts[: len(p)] == p), key=len, default=None)
    if best is None:
        return None
    kind, depth = ENTRIES[best]
    return (kind, Path(*rel.parts[:depth])) if depth and len(rel.parts) >= depth else None


def entries(used: dict[str, set], root: Path | None = None) -> dict[Path, str]:
    """The cache entries (relative path -> kind) that recorded paths fall in, each once, existing ones only."""
    root = root or paths.cache_dir()
    out: dict[Path, str] = {}
    for p in sorted(used.get("paths", ())):
        try:
            rel = Path(p).relative_to(root)
        except ValueError:
            continue
        found = _entry(rel)
        if found and (root / found[1]).exists():
            out[found[1]] = found[0]
            if found[0] == "toolchain":  # the set's manifest holds each binary's checksum
                out[Path(*rel.parts[:2], "manifest.json")] = "toolchain"
    return out


def _inside(row: dict) -> bool:
    """Whether a manifest row stays where bundles put things: a file of a cache entry of a known kind (no `..`,
    nothing absolute), or a docker image."""
    name, entry = str(row.get("name", "")), str(row.get("entry", ""))
    if entry.startswith("docker:"):
        return name.startswith("docker/") and "/" not in name.removeprefix("docker/")
    rel = Path(name.removeprefix("cache/"))
    if not name.startswith("cache/") or rel.is_absolute() or ".." in rel.parts or ".." in Path(entry).parts:
        return False
    e = Path(entry)
    if e.name == "manifest.json":  # a toolchain set's checksums, carried with its binaries
        binary = e.parent / "bin" / "tool"
        return _entry(binary) == ("toolchain", binary) and rel == e
    found = _entry(e)
    return found is not None and found[1] == e and (rel == e or e in rel.parents)


def _files(entry: Path, root: Path) -> Iterator[Path]:
    full = root / entry
    if full.is_file():
        yield full
        return
    for p in sorted(full.rglob("*")):
        if p.is_file() and not p.is_symlink() and not p.name.endswith((".lock", ".tmp")):
            yield p


def _docker(*args: str, **kw) -> subprocess.Popen:
    if not shutil.which("docker"):
        raise UserError("docker is not installed", "bundle", "install Docker (docker.io), or bundle for another provider")
    return subprocess.Popen(["docker", *args], **kw)


def _image_id(tag: str) -> str:
    found = node.image_id(tag)
    if not found:
        raise UserError(f"docker image {tag} is gone", "bundle", "run `appliance prebuild` with the same profile, then bundle again")
    return found


def _hash_stream(f: IO[bytes]) -> tuple[int, str]:
    h, n = hashlib.sha256(), 0
    for chunk in iter(lambda: f.read(CHUNK), b""):
        h.update(chunk)
        n += len(chunk)
    return n, h.hexdigest()


def _saved(tag: str) -> tuple[int, str]:
    """(size, sha256) of `docker save tag` (the same bytes every time for one image id)."""
    p = _docker("save", tag, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = _hash_stream(p.stdout)
    if p.wait() != 0:
        raise UserError(f"docker save {tag} failed: {p.stderr.read().decode().strip()[-200:]}", "bundle", "check `docker info`")
    return out


def items(used: dict[str, set], report: Report) -> list[Item]:
    """Every file the recorded use needs, hashed (remembered across runs: a warm bundle hashes nothing again)."""
    root, memo, out = paths.cache_dir(), node.sha_memo(), []
    for entry, kind in sorted(entries(used, root).items()):
        for f in _files(entry, root):
            st = f.stat()
            sha = memo.get(file_key(f), lambda f=f: sha256_file(f))
            out.append(Item(f"cache/{f.relative_to(root)}", str(entry), kind, st.st_size, sha, st.st_mode & 0o777))
    for tag in sorted(used.get("docker", ())):
        report(f"hashing docker image {tag}")
        size, sha = memo.get(f"docker save {_image_id(tag)}", lambda tag=tag: _saved(tag))
        out.append(Item(f"docker/{tag.replace('/', '_').replace(':', '_')}.tar", f"docker:{tag}", DOCKER_KIND, size, sha))
    memo.save()
    return out


def summary(rows: Iterable[dict]) -> dict[str, dict[str, int]]:
    """Files and bytes by kind."""
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        k = out.setdefault(r["kind"], {"files": 0, "bytes": 0})
        k["files"] += 1
        k["bytes"] += r["size"]
    return dict(sorted(out.items(), key=lambda kv: -kv[1]["bytes"]))


class _Hashing:
    """A reader that hashes and counts what passes through it."""

    def __init__(self, f: IO[bytes]):
        self.f, self.h, self.n = f, hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        b = self.f.read(n)
        self.h.update(b)
        self.n += len(b)
        return b


class _Progress:
    """A line per tenth of the bytes (and one at the end): plain lines suit both a terminal and a CI log."""

    def __init__(self, verb: str, total: int, report: Report):
        self.verb, self.total, self.report, self.done, self.shown, self.t0 = verb, max(total, 1), report, 0, -1, time.monotonic()

    def add(self, n: int) -> None:
        self.done += n
        tenth = self.done * 10 // self.total
        if tenth != self.shown:
            self.shown = tenth
            rate = self.done / max(time.monotonic() - self.t0, 1e-3) / 2**20
            self.report(f"{self.verb} {self.done / 2**30:.2f} of {self.total / 2**30:.2f} GiB ({tenth * 10}%, {rate:.0f} MiB/s)")


def create(out: Path, used: dict[str, set], meta: dict, report: Report, level: int = 3, sign: Path | None = None) -> dict:
    """Write the bundle of what `used` recorded to `out` (through a temporary file beside it), its manifest
    signed with the private key `sign` if given; returns the manifest."""
    import zstandard

    rows = items(used, report)
    manifest = {"format": FORMAT, **meta, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "files": [r.row() for r in rows], "summary": summary(r.row() for r in rows)}
    if sign is not None:
        manifest = signing.sign(manifest, sign)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    bar = _Progress("packed", sum(r.size for r in rows), report)
    root = paths.cache_dir()
    try:
        with open(tmp, "wb") as fh, zstandard.ZstdCompressor(level=level, threads=-1).stream_writer(fh, closefd=False) as z, \
                tarfile.open(fileobj=z, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            data = json.dumps(manifest, indent=1).encode()
            _add(tar, MANIFEST, len(data), 0o644, io.BytesIO(data))
            for r in rows:
                if r.entry.startswith("docker:"):
                    p = _docker("save", r.entry.removeprefix("docker:"), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                    src = _Hashing(p.stdout)
                    _add(tar, r.name, r.size, r.mode, src)
                    p.wait()
                else:
                    with open(root / r.name.removeprefix("cache/"), "rb") as f:
                        src = _Hashing(f)
                        _add(tar, r.name, r.size, r.mode, src)
                if src.h.hexdigest() != r.sha256:
                    raise UserError(f"{r.name} changed while it was packed", "bundle", "run the same command again (nothing else should build meanwhile)")
                bar.add(r.size)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return manifest


def _add(tar: tarfile.TarFile, name: str, size: int, mode: int, src) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, mode, int(time.time())
    tar.addfile(info, src)


# ---------------------------------------------------------------------------------------------- reading


def _bad(path: Path, what: str) -> UserError:
    return UserError(what, str(path), "copy the bundle again (compare its size), or make it again with `appliance bundle create`", code=2)


class _Reader:
    """A bundle's members in order, from its first (the manifest); errors name the bundle and the member."""

    def __init__(self, path: Path):
        import zstandard

        self.path = Path(path)
        if not self.path.is_file():
            raise UserError("no such bundle file", str(path), "give the path of a file made by `appliance bundle create`", code=2)
        self.fh = open(self.path, "rb")
        if self.fh.read(len(ZSTD_MAGIC)) != ZSTD_MAGIC:
            self.fh.close()
            raise _bad(self.path, "not an appliance bundle (not zstd-compressed)")
        self.fh.seek(0)
        self.z = zstandard.ZstdDecompressor().stream_reader(self.fh)
        self.current = "its start"
        try:
            self.tar = tarfile.open(fileobj=self.z, mode="r|")
        except (tarfile.TarError, zstandard.ZstdError, EOFError, OSError) as e:
            self.fh.close()
            raise _bad(self.path, f"truncated or corrupted at its start ({e})") from None
        first = self._next()
        self.current = MANIFEST
        if first is None or first.name != MANIFEST:
            raise _bad(self.path, f"not an appliance bundle (its first file is not {MANIFEST})")
        try:
            self.manifest = json.loads(self.tar.extractfile(first).read())
        except ValueError:
            raise _bad(self.path, f"its {MANIFEST} is not JSON") from None
        except (tarfile.TarError, zstandard.ZstdError, EOFError, OSError) as e:
            raise _bad(self.path, f"truncated or corrupted inside {MANIFEST} ({e})") from None
        if self.manifest.get("format") != FORMAT:
            raise UserError(f"bundle format {self.manifest.get('format')} is not {FORMAT}", str(path), "make it with this appliance version")
        for row in self.manifest.get("files", []):
            if not _inside(row):
                raise _bad(self.path, f"names {row.get('name')!r}, outside the cache entries a bundle may fill (altered)")

    def _next(self) -> tarfile.TarInfo | None:
        import zstandard

        try:
            return self.tar.next()
        except (tarfile.TarError, zstandard.ZstdError, EOFError, OSError) as e:
            raise _bad(self.path, f"truncated or corrupted after {self.current} ({e})") from None

    def members(self) -> Iterator[tuple[dict, IO[bytes]]]:
        """(manifest row, reader) for each file after the manifest; a file the manifest lacks is an error."""
        rows = {r["name"]: r for r in self.manifest["files"]}
        while (m := self._next()) is not None:
            row = rows.get(m.name)
            if row is None:
                raise _bad(self.path, f"holds {m.name}, which its manifest does not list (altered)")
            self.current = m.name
            yield row, self.tar.extractfile(m)

    def copy(self, row: dict, src: IO[bytes], dest: IO[bytes] | None, bar: _Progress | None = None) -> None:
        """Read one member to its end (into `dest`), then check its size and sha256 against the manifest."""
        import zstandard

        h, n = hashlib.sha256(), 0
        try:
            for chunk in iter(lambda: src.read(CHUNK), b""):
                h.update(chunk)
                n += len(chunk)
                if dest is not None:
                    dest.write(chunk)
                if bar:
                    bar.add(len(chunk))
        except (tarfile.TarError, zstandard.ZstdError, EOFError, OSError) as e:
            raise _bad(self.path, f"truncated or corrupted inside {row['name']} ({e})") from None
        if n != row["size"]:
            raise _bad(self.path, f"{row['name']} is {n} bytes, its manifest says {row['size']} (truncated)")
        if h.hexdigest() != row["sha256"]:
            raise _bad(self.path, f"{row['name']} does not match its sha256 in the manifest (altered or corrupted)")

    def close(self) -> None:
        self.fh.close()

    def __enter__(self) -> "_Reader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_manifest(path: Path) -> dict:
    """The bundle's manifest (reads only the start of the file)."""
    with _Reader(path) as r:
        return r.manifest


def verify(path: Path, report: Report = lambda m: None) -> dict:
    """Check every file's size and sha256 and that none is missing; returns the manifest."""
    with _Reader(path) as r:
        seen = set()
        bar = _Progress("verified", sum(f["size"] for f in r.manifest["files"]), report)
        for row, src in r.members():
            r.copy(row, src, None, bar)
            seen.add(row["name"])
        missing = [f["name"] for f in r.manifest["files"] if f["name"] not in seen]
        if missing:
            raise _bad(Path(path), f"ends before {missing[0]}" + (f" and {len(missing) - 1} more files" if len(missing) > 1 else "") + " (truncated)")
        return r.manifest


def needed(manifest: dict, root: Path) -> set[str]:
    """The bundle's entries this host lacks (cache entries are keyed by their inputs: one that exists is the same;
    a toolchain manifest is always merged)."""
    out = set()
    for e in {f["entry"] for f in manifest["files"]}:
        if e.startswith("docker:"):
            if not shutil.which("docker") or not node.image_exists(e.removeprefix("docker:")):
                out.add(e)
        elif not (root / e).exists() or e.endswith("manifest.json"):
            out.add(e)
    return out


def _docker_root() -> Path | None:
    r = subprocess.run(["docker", "info", "--format", "{{.DockerRootDir}}"], capture_output=True, text=True)
    return Path(r.stdout.strip()) if r.returncode == 0 and r.stdout.strip() else None


def check_room(manifest: dict, todo: set[str], root: Path) -> None:
    """Refuse, before unpacking, when a filesystem lacks the room for what goes onto it (and 5% to spare)."""
    docker_root = _docker_root() if any(e.startswith("docker:") for e in todo) else None
    want: dict[int, list] = {}
    for f in manifest["files"]:
        if f["entry"] in todo:
            where = docker_root if f["entry"].startswith("docker:") else root
            anchor = _existing(where or root)
            slot = want.setdefault(os.stat(anchor).st_dev, [anchor, 0])
            slot[1] += f["size"]
    for anchor, size in want.values():
        free = shutil.disk_usage(anchor).free
        if size * 1.05 > free:
            raise UserError(f"unpacking the bundle needs {size / 2**30:.1f} GiB on the filesystem of {anchor}, {free / 2**30:.1f} GiB is free",
                            "bundle", "free some space (or point APPLIANCE_CACHE at a larger disk) and run it again", code=2)


def _existing(p: Path) -> Path:
    while not p.exists():
        p = p.parent
    return p


def unpack(path: Path, todo: set[str], report: Report) -> dict[str, int]:
    """Unpack the entries `todo` into the caches (docker: entries into the daemon), checking every hash; an entry
    lands whole after all its files checked out, and nothing is left behind when anything fails."""
    root = paths.cache_dir()
    stage = root / f".bundle-{os.getpid()}"
    loaded: list[str] = []
    counts = {"files": 0, "bytes": 0}
    try:
        with _Reader(path) as r:
            bar = _Progress("unpacked", sum(f["size"] for f in r.manifest["files"] if f["entry"] in todo), report)
            seen = set()
            for row, src in r.members():
                seen.add(row["name"])
                if row["entry"] not in todo:
                    r.copy(row, src, None)  # still checked: a bundle is read whole or refused
                    continue
                if row["entry"].startswith("docker:"):
                    loaded.append(row["entry"].removeprefix("docker:"))  # removed again if anything fails, this included
                    _load(r, row, src, bar)
                else:
                    dest = stage / row["name"].removeprefix("cache/")
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with open(dest, "wb") as out:
                        r.copy(row, src, out, bar)
                    dest.chmod(row["mode"])
                counts["files"] += 1
                counts["bytes"] += row["size"]
            missing = [f["name"] for f in r.manifest["files"] if f["name"] not in seen]
            if missing:
                raise _bad(Path(path), f"ends before {missing[0]} (truncated)")
        for e in sorted(x for x in todo if not x.startswith("docker:")):
            _place(stage / e, root / e)
    except BaseException:
        for tag in loaded:
            subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return counts


def _load(r: _Reader, row: dict, src: IO[bytes], bar: _Progress) -> None:
    """`docker load` of one image archive; an archive naming any tag besides its entry's (it would have
    replaced another image of the host) has those tags removed and is refused."""
    p = _docker("load", "-q", stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        r.copy(row, src, p.stdin, bar)
    finally:
        p.stdin.close()
        rc = p.wait()
    if rc != 0:
        raise UserError(f"docker load of {row['name']} failed: {p.stderr.read().decode().strip()[-200:]}", "bundle", "check `docker info`")
    want = row["entry"].removeprefix("docker:")
    tags = [ln.split(":", 1)[1].strip() for ln in p.stdout.read().decode().splitlines() if ln.startswith("Loaded image:")]
    if extra := [t for t in tags if t != want]:
        for t in extra:
            subprocess.run(["docker", "rmi", "-f", t], capture_output=True)
        raise _bad(r.path, f"{row['name']} carries image tags besides {want}: {', '.join(extra)} (altered)")


def _place(src: Path, dest: Path) -> None:
    """Move an unpacked entry into the cache; a toolchain manifest is merged with the one there."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.name == "manifest.json" and dest.exists():
        mine, theirs = json.loads(src.read_text()), json.loads(dest.read_text())
        theirs.setdefault("tools", {}).update({k: v for k, v in mine.get("tools", {}).items() if k not in theirs["tools"]})
        atomic_write(dest, json.dumps(theirs, indent=2, sort_keys=True) + "\n")
        return
    if not dest.exists():
        os.replace(src, dest)
