"""A backup as one file (`-o NAME.tar.zst`): its files streamed into a zstd-compressed tar as they are made,
each removed once packed (no second copy of the data on disk), the manifest last; read back by unpacking
into a folder beside the cluster's state, member by member (regular files with plain names only)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Iterator

from appliance.errors import UserError
from appliance.util.files import ZSTD_MAGIC

SUFFIX = ".tar.zst"


def is_archive(path: Path) -> bool:
    return Path(path).name.endswith(SUFFIX)


class Sink:
    """The archive being written: `put` moves a finished file of the backup into it."""

    def __init__(self, tar: tarfile.TarFile):
        self.tar = tar

    def put(self, path: Path, name: str) -> None:
        info = self.tar.gettarinfo(str(path), arcname=name)
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        with open(path, "rb") as f:
            self.tar.addfile(info, f)
        path.unlink()


@contextlib.contextmanager
def sink(out: Path) -> Iterator[Sink]:
    """Write the archive `out` through a temporary file beside it, renamed into place only when complete."""
    import zstandard

    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            with zstandard.ZstdCompressor(level=3, threads=-1).stream_writer(fh, closefd=False) as z, \
                    tarfile.open(fileobj=z, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                yield Sink(tar)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _bad(src: Path, what: str) -> UserError:
    return UserError(what, str(src), "restore from another copy of the backup", code=2)


@contextlib.contextmanager
def unpacked(src: Path, scratch: Path) -> Iterator[Path]:
    """The archive `src` unpacked into a new folder under `scratch`, removed after."""
    import zstandard

    scratch.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="restore-", dir=scratch))
    try:
        with open(src, "rb") as fh:
            if fh.read(len(ZSTD_MAGIC)) != ZSTD_MAGIC:
                raise _bad(src, "not a backup file (not zstd-compressed)")
            fh.seek(0)
            last = "its start"
            try:
                with tarfile.open(fileobj=zstandard.ZstdDecompressor().stream_reader(fh), mode="r|") as tar:
                    for m in tar:
                        if not m.isfile() or not re.fullmatch(r"[\w.@-]+(/[\w.@-]+)*", m.name) or ".." in m.name.split("/"):
                            raise _bad(src, f"holds {m.name!r}, which is no file of a backup (altered)")
                        tar.extract(m, folder, filter="data")
                        last = m.name
            except (tarfile.TarError, zstandard.ZstdError, EOFError) as e:
                raise _bad(src, f"truncated or corrupted after {last} ({e})") from None
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
