"""Shared fixtures: the whole test session keeps cluster state in its own folder (build caches stay shared)."""

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _isolated_state(tmp_path_factory):
    old = os.environ.get("APPLIANCE_STATE")
    os.environ["APPLIANCE_STATE"] = str(tmp_path_factory.mktemp("state"))
    yield
    if old is None:
        os.environ.pop("APPLIANCE_STATE", None)
    else:
        os.environ["APPLIANCE_STATE"] = old


def pytest_addoption(parser):
    parser.addoption("--no-skips", action="store_true",
                     help="fail the run when a test is skipped (CI: every test must run on its machine), unless --allow-skip matches its reason")
    parser.addoption("--allow-skip", action="append", default=[], metavar="REGEX",
                     help="with --no-skips: a skip whose reason matches REGEX is expected (say why in the command that passes it)")


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
