"""Shared file helpers: atomic write, file hash, flock."""

from __future__ import annotations

import fcntl
import hashlib

import pytest

from appliance.util.files import atomic_write, file_lock, sha256_file


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "a" / "state.json"
    atomic_write(target, "one")
    atomic_write(target, b"two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["state.json"]


def test_atomic_write_keeps_the_old_content_when_the_write_fails(tmp_path):
    target = tmp_path / "state.json"
    atomic_write(target, "old")
    with pytest.raises(TypeError):
        atomic_write(target, 42)  # type: ignore[arg-type]
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_sha256_of_files_in_order(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"x" * (3 << 20))
    b.write_bytes(b"yz")
    assert sha256_file(a) == hashlib.sha256(b"x" * (3 << 20)).hexdigest()
    assert sha256_file(a, b) == hashlib.sha256(b"x" * (3 << 20) + b"yz").hexdigest() != sha256_file(b, a)


def test_file_lock_excludes_another_holder_until_released(tmp_path):
    path = tmp_path / "locks" / "x.lock"
    with file_lock(path):
        with open(path) as other, pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with open(path) as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
