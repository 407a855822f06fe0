"""Build progress: step count, heartbeat while a long subprocess runs, elapsed time, cold-run estimate."""

from __future__ import annotations

import itertools
import subprocess
import threading

import pytest

from appliance import prereqs, progress
from appliance.report import Reporter, RichReporter, duration


def fake_clock(step: float = 30.0):
    """A clock that moves `step` seconds each time it is read (thread-safe)."""
    ticks, lock = itertools.count(), threading.Lock()

    def now() -> float:
        with lock:
            return next(ticks) * step

    return now


def test_heartbeat_while_a_subprocess_runs_then_elapsed_time():
    lines: list[str] = []
    with progress.reporting(None, total=3):
        with progress.build("kube-apiserver", lines.append, "go build", every=0.05, clock=fake_clock()):
            subprocess.run(["sleep", "0.3"], check=True)
        n_at_exit = len(lines)
        subprocess.run(["sleep", "0.15"], check=True)
    assert lines[0] == "build 1/3 kube-apiserver: go build"
    beats = lines[1:-1]
    assert len(beats) >= 2
    assert beats[0] == "still building kube-apiserver, 30.0s (build 1/3)"
    assert beats[1] == "still building kube-apiserver, 1m00s (build 1/3)"
    assert lines[-1].startswith("build 1/3 kube-apiserver done in ")
    assert len(lines) == n_at_exit  # no heartbeat after the build ended


def test_failed_build_says_so_and_raises():
    lines: list[str] = []
    with pytest.raises(subprocess.CalledProcessError):
        with progress.build("etcd", lines.append, every=10, clock=fake_clock(65)):
            subprocess.run(["false"], check=True)
    assert lines[-1].endswith("etcd failed after 1m05s")


def test_steps_are_numbered_and_the_total_grows_past_the_estimate():
    lines: list[str] = []
    with progress.reporting(None, total=1):
        for name in ("a", "b"):
            with progress.build(name, lines.append, every=10):
                pass
        with progress.build("crds", lines.append, every=10, counted=False):
            pass
    assert [ln for ln in lines if " done in " not in ln] == ["build 1/1 a", "build 2/2 b", "crds"]


def test_inside_up_lines_go_to_the_reporter_not_the_helpers_callable(capsys):
    import io

    helper: list[str] = []
    stream = io.StringIO()
    with progress.reporting(Reporter(stream), total=2):
        with progress.build("kwok", helper.append, "go build", every=0.05):
            subprocess.run(["sleep", "0.12"], check=True)
    out = stream.getvalue()
    assert helper == []
    assert "build 1/2 kwok: go build" in out and "still building kwok" in out and "build 1/2 kwok done in" in out


class _Live(RichReporter):
    """A terminal reporter without a terminal: records its step rows."""

    def __init__(self):
        self.rows, self.messages = [], []

    def step(self, step, status, detail="", seconds=None):
        self.rows.append((step, status))

    def message(self, text):
        self.messages.append(text)


def test_on_a_terminal_a_live_row_with_elapsed_time_and_no_heartbeat_lines():
    live = _Live()
    with progress.reporting(live, total=1):
        with progress.build("kserve-manager", every=0.02):
            subprocess.run(["sleep", "0.1"], check=True)
    assert live.rows == [("build 1/1 kserve-manager", "running"), ("build 1/1 kserve-manager", "done")]
    assert live.messages == []


def test_duration():
    assert [duration(s) for s in (0, 59.9, 60, 150, 3599, 3725)] == ["0.0s", "59.9s", "1m00s", "2m30s", "59m59s", "1h02m"]


def test_estimate_scales_with_cpus_and_counts_downloads():
    builds = ["toolchain kubernetes", "training-operator"]
    two = progress.estimate_seconds(builds, 2)
    assert two == progress.COST_2CPU["toolchain kubernetes"] + progress.COST_2CPU["training-operator"]
    assert progress.estimate_seconds(builds, 4) == two / 2
    assert progress.estimate_seconds(builds, 64) == progress.estimate_seconds(builds, 8)  # no gain past 8
    assert progress.estimate_seconds(["something new"], 2) == progress.COST_DEFAULT
    assert progress.estimate_seconds([], 2, downloads=3) == 3 * progress.DOWNLOAD_S


@pytest.fixture
def laptop_on_sim(tmp_path, monkeypatch):
    from appliance import orchestrator
    from appliance.toolchain.sources import ReleaseSource

    monkeypatch.setenv("APPLIANCE_CACHE", str(tmp_path))
    monkeypatch.setattr(ReleaseSource, "available", lambda self: (False, "offline"))
    return orchestrator.load_for("laptop", [], "sim")[0].profile


def test_pending_lists_what_a_cold_cache_lacks(laptop_on_sim):
    from appliance.images import builds

    todo, downloads = prereqs.pending(laptop_on_sim, "sim")
    assert todo[:8] == ["toolchain etcd", "toolchain kubernetes", "toolchain kwok", "training-operator", "controller-gen",
                        "kserve-manager", "prometheus", "workflow-controller"]
    assert todo[8:10] == ["katib-controller", "katib-db-manager"] and todo[10].startswith("goptuna-suggestion-host-")  # Katib on the host
    assert todo[11:] == ["kueue"]
    assert downloads == 0
    done = builds.go_binary_path("github.com/kubeflow/training-operator", "v1.8.1", "training-operator")
    done.parent.mkdir(parents=True)
    done.write_bytes(b"")
    assert "training-operator" not in prereqs.pending(laptop_on_sim, "sim")[0]


def test_pending_counts_reachable_release_hosts_as_downloads(laptop_on_sim, monkeypatch):
    from appliance.toolchain.sources import ReleaseSource

    monkeypatch.setattr(ReleaseSource, "available", lambda self: (True, ""))
    todo, downloads = prereqs.pending(laptop_on_sim, "sim")
    assert downloads == 3 and not any(t.startswith("toolchain") for t in todo)


def test_announce_says_what_and_how_long_once(laptop_on_sim, monkeypatch):
    import io

    monkeypatch.setattr(progress, "cpus", lambda: 2)
    stream = io.StringIO()
    assert prereqs.announce(laptop_on_sim, "sim", Reporter(stream)) == 12
    line = stream.getvalue()
    assert "12 builds not cached yet (toolchain etcd, toolchain kubernetes" in line
    minutes = round(sum(progress.COST_2CPU.get(b, progress.COST_DEFAULT) for b in prereqs.pending(laptop_on_sim, "sim")[0]) / 60)
    assert f"roughly {minutes} min on this machine (2 CPUs), once" in line
