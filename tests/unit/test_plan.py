"""Planner: ordering, parallel waves, resume after a failure, no-op re-run, fingerprints, the lock."""

import subprocess
import sys
import threading
import time

import pytest

from appliance.errors import UserError
from appliance.plan import Lock, Plan, State, Step, execute
from appliance.report import Reporter


class Recorder(Reporter):
    def __init__(self):
        super().__init__()
        self.events = []

    def message(self, text):
        self.events.append(("msg", text))

    def step(self, step, status, detail="", seconds=None):
        self.events.append((step, status))


class Fake:
    """Steps whose work is recorded; `fail` makes a step raise once."""

    def __init__(self, fail=(), delay=0.0):
        self.done, self.log, self.fail = set(), [], set(fail)
        self.delay, self.active, self.max_active = delay, 0, 0
        self.lock = threading.Lock()

    def step(self, sid, deps=(), fp="v1"):
        def run():
            with self.lock:
                self.active += 1
                self.max_active = max(self.max_active, self.active)
            time.sleep(self.delay)
            with self.lock:
                self.active -= 1
            if sid in self.fail:
                self.fail.discard(sid)
                raise RuntimeError(f"{sid} broke")
            self.log.append(sid)
            self.done.add(sid)
            return f"{sid} ok"

        return Step(sid, list(deps), fp, run=run, ready=lambda: (sid in self.done, ""))


def diamond(f, fp="v1"):
    return Plan([f.step("cluster", fp=fp), f.step("a", ["cluster"]), f.step("b", ["cluster"]), f.step("c", ["a", "b"])])


def test_waves_group_independent_steps():
    assert diamond(Fake()).waves() == [["cluster"], ["a", "b"], ["c"]]


def test_runs_in_dependency_order_and_in_parallel(tmp_path):
    f = Fake(delay=0.3)
    out = execute(diamond(f), State(tmp_path), Recorder(), parallel=2)
    assert out.ran == ["cluster", "a", "b", "c"] or out.ran == ["cluster", "b", "a", "c"]
    assert f.log[0] == "cluster" and f.log[-1] == "c"
    assert f.max_active == 2  # a and b overlapped


def test_parallelism_is_bounded(tmp_path):
    f = Fake(delay=0.2)
    execute(diamond(f), State(tmp_path), Recorder(), parallel=1)
    assert f.max_active == 1


def test_failure_blocks_dependents_then_resume_runs_only_the_rest(tmp_path):
    f = Fake(fail={"b"})
    rec = Recorder()
    out = execute(diamond(f), State(tmp_path), rec)
    assert out.failed == {"b": "RuntimeError: b broke"} and out.blocked == ["c"] and "a" in out.ran
    assert State(tmp_path).step("b")["status"] == "failed"
    f.log.clear()
    out2 = execute(diamond(f), State(tmp_path), Recorder())  # a fresh State reads the file: a new process would
    assert sorted(out2.skipped) == ["a", "cluster"] and out2.ran == ["b", "c"] and f.log == ["b", "c"]


def test_rerun_on_ready_cluster_is_noop(tmp_path):
    f = Fake()
    execute(diamond(f), State(tmp_path), Recorder())
    f.log.clear()
    out = execute(diamond(f), State(tmp_path), Recorder())
    assert out.noop and f.log == [] and len(out.skipped) == 4


def test_drift_or_changed_input_reruns_the_step_and_what_depends_on_a_component_run_again(tmp_path):
    f = Fake()
    execute(diamond(f), State(tmp_path), Recorder())
    f.done.discard("a")  # someone deleted what `a` made (say, credentials `a` then makes anew)
    f.log.clear()
    out = execute(diamond(f), State(tmp_path), Recorder())
    assert out.ran == ["a", "c"] and f.log == ["a", "c"]  # c takes what a made anew; b does not need a
    f.log.clear()
    out = execute(diamond(f, fp="v2"), State(tmp_path), Recorder())
    assert out.ran == ["cluster"]  # the cluster's own step again does not re-apply every component


def test_interrupted_step_is_rerun(tmp_path):
    st = State(tmp_path)
    st.set_step("cluster", status="running", fingerprint="v1")  # the process died mid-step
    f = Fake()
    f.done.add("cluster")
    out = execute(diamond(f), State(tmp_path), Recorder())
    assert "cluster" in out.ran


def test_corrupt_state_is_one_clear_error(tmp_path):
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(UserError, match="state file is not valid JSON"):
        State(tmp_path)


def test_second_holder_is_refused(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", f"""
import time, sys
from appliance.plan import Lock
with Lock({str(tmp_path)!r}, 'c1'):
    print('held', flush=True); time.sleep(30)
"""], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UserError) as e:
            with Lock(tmp_path, "c1"):
                pass
        assert f"pid {holder.pid}" in e.value.line() and "c1" in e.value.line() and e.value.code == 3
    finally:
        holder.kill()
        holder.wait()
    with Lock(tmp_path, "c1"):  # released by the kernel when the holder died
        pass


def test_step_waits_for_its_readiness_after_run(tmp_path):
    checks = []

    def ready():
        checks.append(1)
        return (len(checks) >= 3, "DaemonSet/x")

    step = Step("slow", [], "v1", run=lambda: "applied", ready=ready, poll=0.01)
    out = execute(Plan([step]), State(tmp_path), Recorder())
    assert out.ran == ["slow"] and len(checks) == 3


def test_never_ready_fails_with_what_is_missing(tmp_path):
    step = Step("stuck", [], "v1", run=lambda: None, ready=lambda: (False, "DaemonSet/x"), timeout=0.05, poll=0.01)
    out = execute(Plan([step]), State(tmp_path), Recorder())
    assert "not ready after" in out.failed["stuck"] and "DaemonSet/x" in out.failed["stuck"]
    assert State(tmp_path).step("stuck")["status"] == "failed"


def test_a_components_inputs_cover_its_dependencies():
    """Removing a user (user-profiles' options) re-runs the components rendering per-user objects (queues: a
    ClusterQueue each) and those depending on one of them (tracking: the artifact store's accounts), not the others."""
    from appliance import orchestrator, profiles

    def prints(*sets):
        p = orchestrator.Cluster(profiles.load("laptop", list(sets), "kind").profile, "kind").plan()
        return {s.id: s.fingerprint for s in p.steps}

    before, after = prints(), prints("components.user-profiles.options.users=[alice]")
    changed = {n for n in before if before[n] != after[n]}
    assert changed == {"user-profiles", "notebooks", "pipelines", "queues", "tracking"}


def test_prebuild_builds_provider_then_components_and_names_a_failed_build(monkeypatch, tmp_path):
    """prebuild: the provider's own needs first, then each component in the profile; a build error is one line
    naming the component (what was built before it stays)."""
    import io

    from appliance import components, orchestrator, prereqs, profiles
    from appliance.images.builds import BuildError
    from appliance.providers.sim import SimProvider

    monkeypatch.setenv("APPLIANCE_STATE", str(tmp_path))
    order = []
    monkeypatch.setattr(prereqs, "check", lambda profile, provider: None)
    monkeypatch.setattr(prereqs, "announce", lambda profile, provider, reporter: 0)
    monkeypatch.setattr(SimProvider, "prebuild", lambda self: order.append("cluster"))
    profile = profiles.load("laptop", [], "sim").profile
    comps = components.enabled(profile, SimProvider.runtime())
    for name, comp in comps.items():
        monkeypatch.setattr(comp, "prebuild", lambda n=name: order.append(n) or 1)
    monkeypatch.setattr(components, "enabled", lambda profile, runtime: comps)
    out = orchestrator.prebuild(profile, "sim", Reporter(io.StringIO()))
    assert order == ["cluster", *comps] and out["components"] == {"cluster": 0, **dict.fromkeys(comps, 1)}
    broken = next(iter(comps))
    monkeypatch.setattr(comps[broken], "prebuild", lambda: (_ for _ in ()).throw(BuildError("go build: exit 1")))
    with pytest.raises(UserError) as e:
        orchestrator.prebuild(profile, "sim", Reporter(io.StringIO()))
    assert e.value.line().startswith(f"{broken}: build failed: go build: exit 1")
