"""Plan and run `up`: a DAG of steps (cluster, then components), bounded parallelism, resumable state, a lock."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from appliance.errors import UserError
from appliance.util.files import atomic_write
from appliance.util.wait import until

CLUSTER = "cluster"


@dataclass
class Step:
    """One unit of `up`: `run()` does the work (idempotent), `ready()` says whether it is already done."""

    id: str
    deps: list[str]
    fingerprint: str
    run: Callable[[], str | None]
    ready: Callable[[], tuple[bool, str]]
    description: str = ""
    #: what version of its component it applies (recorded when done: `upgrade --plan` tells a new version apart)
    revision: str = ""
    timeout: float = 900.0  # seconds for readiness after run()
    poll: float = 1.0


@dataclass
class Plan:
    steps: list[Step]

    def by_id(self) -> dict[str, Step]:
        return {s.id: s for s in self.steps}

    def waves(self) -> list[list[str]]:
        """Steps grouped by depth: every step in a wave may run in parallel once the earlier waves are done."""
        depth: dict[str, int] = {}
        steps = self.by_id()

        def d(i: str) -> int:
            if i not in depth:
                depth[i] = 1 + max((d(x) for x in steps[i].deps), default=-1)
            return depth[i]

        out: list[list[str]] = []
        for s in self.steps:
            k = d(s.id)
            while len(out) <= k:
                out.append([])
            out[k].append(s.id)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "steps": [{"id": s.id, "needs": s.deps, "description": s.description, "fingerprint": s.fingerprint} for s in self.steps],
            "waves": self.waves(),
        }


def fingerprint(data: Any) -> str:
    """Stable short hash of a step's inputs (a changed input re-runs the step)."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


class State:
    """The cluster's record of finished steps: <state_dir>/state.json, written atomically after every change."""

    def __init__(self, state_dir: Path):
        self.dir = Path(state_dir)
        self.path = self.dir / "state.json"
        self._lock = threading.Lock()
        self.data: dict[str, Any] = {"steps": {}}
        if self.path.exists():
            try:
                self.data = json.loads(self.path.read_text())
            except json.JSONDecodeError:
                raise UserError("state file is not valid JSON", str(self.path), "delete it and run `appliance up` again (steps re-check what exists)") from None
        self.data.setdefault("steps", {})

    def step(self, sid: str) -> dict[str, Any]:
        return self.data["steps"].get(sid, {})

    @property
    def kubeconfig(self) -> str | None:
        """The admin kubeconfig the cluster step recorded (None before the cluster exists)."""
        return (self.data.get("cluster") or {}).get("kubeconfig")

    def set_step(self, sid: str, **fields: Any) -> None:
        with self._lock:
            self.data["steps"][sid] = {**self.data["steps"].get(sid, {}), **fields}
            self.save()

    def set(self, key: str, value: Any) -> None:
        with self._lock:
            self.data[key] = value
            self.save()

    def save(self) -> None:
        atomic_write(self.path, json.dumps(self.data, indent=2, sort_keys=True))


class Lock:
    """An exclusive per-cluster lock (flock: released by the kernel if the holder dies)."""

    def __init__(self, state_dir: Path, cluster: str):
        self.path = Path(state_dir) / "lock"
        self.cluster = cluster
        self.fh = None

    def __enter__(self) -> "Lock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.path, "a+")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fh.seek(0)
            holder = self.fh.read().strip() or "?"
            self.fh.close()
            raise UserError(
                f"another appliance command (pid {holder}) is working on cluster '{self.cluster}'",
                str(self.path), "wait for it to finish (or stop it); this run changed nothing", code=3,
            ) from None
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(str(os.getpid()))
        self.fh.flush()
        return self

    def __exit__(self, *exc) -> None:
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()


@dataclass
class Outcome:
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    blocked: list[str] = field(default_factory=list)

    @property
    def noop(self) -> bool:
        return not self.ran and not self.failed and not self.blocked


def execute(plan: Plan, state: State, reporter, parallel: int = 2) -> Outcome:
    """Run the plan: skip steps recorded done with the same fingerprint and still ready, unless a component
    they depend on ran again; run the rest as soon as their dependencies are done, at most `parallel` at
    once; record each result."""
    steps = plan.by_id()
    out = Outcome()
    done: set[str] = set()
    pending = [s.id for s in plan.steps]
    running: dict[Future, str] = {}
    started: dict[str, float] = {}

    def attempt(s: Step) -> tuple[str, str]:
        rec = state.step(s.id)
        repaired = any(d in out.ran for d in s.deps if d != CLUSTER)  # e.g. credentials made anew: take them
        if rec.get("status") == "done" and rec.get("fingerprint") == s.fingerprint and not repaired:
            ok, _ = s.ready()
            if ok:
                return "skipped", "already done"
        state.set_step(s.id, status="running", fingerprint=s.fingerprint, started=time.time(), error=None)
        detail = s.run() or ""
        until(s.ready, s.timeout, s.id, s.poll)
        state.set_step(s.id, status="done", finished=time.time(), revision=s.revision)
        return "done", detail

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        while pending or running:
            for sid in list(pending):
                deps = steps[sid].deps
                if any(d in out.failed or d in out.blocked for d in deps):
                    pending.remove(sid)
                    out.blocked.append(sid)
                    reporter.step(sid, "blocked", "a step it needs failed")
                elif all(d in done for d in deps) and len(running) < max(1, parallel):
                    pending.remove(sid)
                    started[sid] = time.monotonic()
                    reporter.step(sid, "running", steps[sid].description)
                    running[pool.submit(attempt, steps[sid])] = sid
            if not running:
                break
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in finished:
                sid = running.pop(fut)
                took = time.monotonic() - started[sid]
                try:
                    status, detail = fut.result()
                except Exception as e:  # noqa: BLE001 — a step's failure is recorded and reported, not raised
                    msg = e.line() if isinstance(e, UserError) else f"{type(e).__name__}: {e}"
                    state.set_step(sid, status="failed", error=msg, finished=time.time())
                    out.failed[sid] = msg
                    reporter.step(sid, "failed", msg, took)
                    continue
                done.add(sid)
                (out.ran if status == "done" else out.skipped).append(sid)
                reporter.step(sid, status, detail, took)
    return out
