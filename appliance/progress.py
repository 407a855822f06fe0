"""Progress of long builds: a step count ("build 3/12 kube-apiserver"), the elapsed time of each, a
heartbeat line while one runs ("still building kube-apiserver, 2m30s"), and at the start of `up` a rough
estimate of how long the builds the caches lack will take on this machine.

Build helpers wrap each long build in `build(name, report)`. While `up` runs, `reporting(reporter)` sends
every build's lines to its reporter (on a terminal a live row with a spinner and the elapsed time, no
heartbeat lines); outside `up` they go to the helper's `report` callable, or stderr.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from typing import Callable, Iterator

from appliance.report import duration

HEARTBEAT_S = 30.0

#: Seconds one cold build took on the 2-CPU CI machine (the caches' build records: toolchain manifest,
#: components/go/*/*.json, images/node/*.json; bench/results/stack-*.json).
COST_2CPU = {
    "toolchain kubernetes": 300, "toolchain etcd": 60, "toolchain kwok": 120, "toolchain coredns": 90,
    "toolchain kind": 30, "training-operator": 500, "kserve-manager": 410, "controller-gen": 60,
    "local-path-provisioner": 90, "crictl": 45, "node image": 180, "prometheus": 420, "node_exporter": 35,
    "workflow-controller": 360, "katib-controller": 300, "katib-db-manager": 60,
}
COST_DEFAULT = 120
DOWNLOAD_S = 20  # a toolchain group fetched from the release hosts instead of built


def estimate_seconds(builds: list[str], cpus: int, downloads: int = 0) -> float:
    """Rough wall time of `builds` (names from COST_2CPU) plus `downloads` toolchain groups: the 2-CPU
    cost scaled by 2/cpus (Go compiles in parallel; beyond 8 CPUs linking and fetching dominate)."""
    scale = 2 / min(max(cpus, 1), 8)
    return sum(COST_2CPU.get(b, COST_DEFAULT) for b in builds) * scale + downloads * DOWNLOAD_S


class Counter:
    """Numbers the builds of one run; the total is what the estimate expected, or more if more came."""

    def __init__(self, total: int = 0, reporter=None):
        self.total, self.n, self.reporter = total, 0, reporter
        self._lock = threading.Lock()

    def next(self) -> str:
        """'build 3/12'."""
        with self._lock:
            self.n += 1
            self.total = max(self.total, self.n)
            return f"build {self.n}/{self.total}"


_current = Counter()


@contextlib.contextmanager
def reporting(reporter, total: int = 0) -> Iterator[Counter]:
    """Builds inside this block report to `reporter` (a report.Reporter), numbered out of `total`."""
    global _current
    before, _current = _current, Counter(total, reporter)
    try:
        yield _current
    finally:
        _current = before


def _live(reporter) -> bool:
    from appliance.report import RichReporter

    return isinstance(reporter, RichReporter)


@contextlib.contextmanager
def build(name: str, report: Callable[[str], None] | None = None, detail: str = "", counted: bool = True,
          every: float | None = None, clock: Callable[[], float] = time.monotonic) -> Iterator[None]:
    """Wrap one long build: a start line (numbered when `counted`), a heartbeat every `every` seconds
    (default HEARTBEAT_S) until the block ends, and a done/failed line with the elapsed time."""
    every = every or HEARTBEAT_S
    counter = _current
    step = counter.next() if counted else ""
    label = f"{step} {name}".strip()
    reporter = counter.reporter
    live = reporter is not None and _live(reporter)
    if reporter is not None:
        say = reporter.message
    else:
        say = report or (lambda m: print(m, file=sys.stderr, flush=True))
    t0 = clock()
    if live:
        reporter.step(label, "running", detail)
    else:
        say(f"{label}{': ' + detail if detail else ''}")
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every):
            say(f"still building {name}, {duration(clock() - t0)}{f' ({step})' if step else ''}")

    beater = None if live else threading.Thread(target=beat, daemon=True, name=f"heartbeat {name}")
    if beater:
        beater.start()
    ok = False
    try:
        yield
        ok = True
    finally:
        stop.set()
        if beater:
            beater.join()
        took = clock() - t0
        if live:
            reporter.step(label, "done" if ok else "failed", seconds=took)
        else:
            say(f"{label} {'done in' if ok else 'failed after'} {duration(took)}")


def cpus() -> int:
    """CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
