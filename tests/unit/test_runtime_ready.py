"""When a host process that listens before it serves counts as ready: its ready line, logged since its start."""

from __future__ import annotations

from appliance.runtime.controller import _logged_since_start
from appliance.runtime.process import STARTED


def test_only_a_ready_line_of_this_start_counts(tmp_path):
    log = tmp_path / "db.log"
    log.write_text(f"{STARTED} 1: an earlier process\nready to serve\nshutting down\n")
    since = log.stat().st_size  # where this process's start began
    assert not _logged_since_start(log, "ready to serve", since)  # the earlier process's, its supervisor not yet started
    with log.open("a") as f:
        f.write(f"{STARTED} 2: db\nlistening\n")
    assert not _logged_since_start(log, "ready to serve", since)
    with log.open("a") as f:
        f.write("ready to serve\n")
    assert _logged_since_start(log, "ready to serve", since)
    with log.open("a") as f:
        f.write(f"supervisor: controller exited (-9); restart in 1s\n{STARTED} 3: db\n")  # restarted by its supervisor
    assert not _logged_since_start(log, "ready to serve", since)
    assert not _logged_since_start(tmp_path / "none.log", "ready to serve", 0)
