"""Shared helpers: atomic write, file hash, flock; the one wait."""

from __future__ import annotations

import fcntl
import hashlib
import types

import pytest

from appliance.errors import UserError
from appliance.util import wait
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


@pytest.fixture
def clock(monkeypatch):
    """A fake clock for `wait`: sleeping advances it and records each pause."""
    c = types.SimpleNamespace(now=0.0, pauses=[])

    def sleep(s):
        c.pauses.append(round(s, 3))
        c.now += s

    monkeypatch.setattr(wait, "time", types.SimpleNamespace(monotonic=lambda: c.now, sleep=sleep))
    return c


def test_until_says_what_is_missing_when_the_deadline_passes(clock):
    with pytest.raises(UserError, match=r"x: not ready after 5s: 2 pods pending"):
        wait.until(lambda: (False, "2 pods pending"), 5, "x", poll=2)
    assert clock.pauses == [2, 2, 1]  # the last pause ends at the deadline, not past it


def test_within_returns_the_last_check_and_grows_the_pause_up_to_the_cap(clock):
    checks = iter([(False, "a")] * 6 + [(True, "b")])
    assert wait.within(lambda: next(checks), 60, interval=0.1, factor=2, cap=0.5) == (True, "b")
    assert clock.pauses == [0.1, 0.2, 0.4, 0.5, 0.5, 0.5]
    assert wait.within(lambda: (False, "still a"), 1, interval=0.4) == (False, "still a")


def test_alive_aborts_at_once_with_its_reason(clock):
    with pytest.raises(wait.Died, match="etcd exited"):
        wait.within(lambda: (False, ""), 300, alive=lambda: "etcd exited")
    assert clock.pauses == []


def test_a_raising_check_counts_as_not_ready_with_its_first_line_only_when_lenient(clock):
    def check():
        raise ConnectionError("refused\ntraceback details")

    with pytest.raises(UserError, match=r"not ready after 1s: ConnectionError: refused — fix"):
        wait.until(check, 1, "api")
    with pytest.raises(ConnectionError):
        wait.within(check, 1)
