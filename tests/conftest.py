"""Shared fixtures: the whole test session keeps cluster state in its own folder (build caches stay shared),
registered in SESSIONS so that the next session takes down what a killed one left (its kind clusters and
simulator processes; a user's own clusters, kept elsewhere, are never touched)."""

import io
import os
import tempfile
from pathlib import Path

import pytest

#: one file per running test session: named by its pid, holding its state folder
SESSIONS = Path(tempfile.gettempdir()) / "appliance-test-sessions"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _take_down(state: Path) -> list[str]:
    """Every cluster under a dead session's state folder, `down` (which stops its host processes first)."""
    from appliance import orchestrator, report

    swept = []
    old = os.environ.get("APPLIANCE_STATE")
    os.environ["APPLIANCE_STATE"] = str(state)
    try:
        for folder in sorted(p.parent for p in state.glob("*/state.json")):
            try:
                orchestrator.down(folder.name, report.make(stream=io.StringIO()))
            except Exception as e:  # noqa: BLE001 — a sweep reports and goes on
                swept.append(f"{folder.name}: {e}")
                continue
            swept.append(folder.name)
    finally:
        if old is None:
            os.environ.pop("APPLIANCE_STATE", None)
        else:
            os.environ["APPLIANCE_STATE"] = old
    return swept


def pytest_sessionstart(session):
    """Take down what sessions that were killed left behind."""
    for entry in sorted(SESSIONS.glob("*")) if SESSIONS.is_dir() else []:
        if not entry.name.isdigit() or _alive(int(entry.name)):
            continue
        state = Path(entry.read_text().strip())
        swept = _take_down(state) if state.is_dir() else []
        entry.unlink(missing_ok=True)
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if swept and reporter:
            reporter.write_line(f"swept what killed test session {entry.name} left: {', '.join(swept)}", yellow=True)


@pytest.fixture(scope="session", autouse=True)
def _isolated_state(tmp_path_factory):
    old = os.environ.get("APPLIANCE_STATE")
    state = tmp_path_factory.mktemp("state")
    os.environ["APPLIANCE_STATE"] = str(state)
    SESSIONS.mkdir(exist_ok=True)
    mine = SESSIONS / str(os.getpid())
    mine.write_text(str(state))
    yield
    mine.unlink(missing_ok=True)
    if old is None:
        os.environ.pop("APPLIANCE_STATE", None)
    else:
        os.environ["APPLIANCE_STATE"] = old


def pytest_addoption(parser):
    parser.addoption("--no-skips", action="store_true",
                     help="fail the run when a test is skipped (CI: every test must run on its machine), unless --allow-skip matches its reason")
    parser.addoption("--allow-skip", action="append", default=[], metavar="REGEX",
                     help="with --no-skips: a skip whose reason matches REGEX is expected (say why in the command that passes it)")
    parser.addoption("--journey-twice", action="store_true",
                     help="run the kind and simulator journeys a second time after a no-op `up` (leftovers of the first break them); CI runs each once")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session, exitstatus):
    """With --no-skips, a skipped test fails the session: a missing Docker daemon, a failed image build or a
    broken toolchain must not turn tests into skips while CI stays green."""
    import re

    config = session.config
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if not config.getoption("--no-skips") or reporter is None:
        return
    allowed = [re.compile(p) for p in config.getoption("--allow-skip")]
    unexpected = []
    for rep in reporter.stats.get("skipped", []):
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        if not any(p.search(reason) for p in allowed):
            unexpected.append(f"{rep.nodeid}: {reason}")
    if unexpected:
        reporter.write_line(f"--no-skips: {len(unexpected)} test(s) skipped that must run here:", red=True)
        for line in unexpected:
            reporter.write_line(f"  {line}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
