"""Files: write atomically, hash, lock; what a zstd-compressed file begins with."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

#: the first bytes of a zstd frame (bundles, backups as one file)
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def atomic_write(path: Path, data: str | bytes, mode: int | None = None) -> None:
    """Write `data` to a temporary file beside `path`, flushed to the disk, then rename it over `path` and
    flush the folder: readers see the old content or the new, never a part, and a power cut keeps one of
    them (parent folders are made; `mode` set before the rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")  # one per writer
    try:
        with open(tmp, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            tmp.chmod(mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def sha256_file(*paths: Path) -> str:
    """sha256 (hex) of the files' contents, one after the other, read in 1 MiB chunks."""
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


class Memo:
    """Values kept in a JSON file across runs, keyed by what identifies their input (`file_key`, an image id):
    a warm run computes nothing again. `save()` writes what was added."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.data = {}
        self.added = False

    def get(self, key: str, compute):
        if key not in self.data:
            self.data[key] = compute()
            self.added = True
        return self.data[key]

    def save(self) -> None:
        if self.added:
            atomic_write(self.path, json.dumps(self.data))
            self.added = False


def file_key(p: Path) -> str:
    """What identifies a file's content without reading it: its path, size and modification time."""
    st = p.stat()
    return f"{p.resolve()}:{st.st_size}:{st.st_mtime_ns}"


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on `path` (made with its folder if missing) while the block runs;
    the kernel releases it if the holder dies."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
