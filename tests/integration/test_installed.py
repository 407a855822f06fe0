"""The appliance as a tool outside its checkout: the wheel built from this tree, installed into a fresh
virtualenv (its dependencies taken from the test's own environment, nothing downloaded but the build's
setuptools), run from a folder outside the repository — last, a user's project there: `e2e init`, a broken
scenario caught with its line; then docs/ci.md's GitHub Actions job, its commands in order, from an empty
repository to a green run on the simulator (their trainer's image built by the installed appliance, its
reference in their job and pipeline; the step asking their model, for kind, skipped) with JUnit and the
report kept. The same template on kind, where it all runs: test_project_kind.py."""

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]

#: run inside the installed venv: the package is the wheel's, its data the wheel's copy, every file a component names there
CHECK = """
import importlib.util, sys
from appliance import paths
from appliance.components import kit
spec = importlib.util.spec_from_file_location("packaging_checks", sys.argv[1])
checks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(checks)
venv = sys.argv[2]
assert paths.PACKAGE.is_relative_to(venv), paths.PACKAGE
assert paths.shipped("profiles") == paths.PACKAGE / "_data" / "profiles", paths.shipped("profiles")
missing = [f for c in kit.discover() for f in checks._declared_files(c.decl) if not paths.shipped(f).exists()]
assert not missing, missing
print("wheel data ok")
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(run, folder): `run(*args)` runs the installed `appliance` (or `python`) in `folder`, outside the repository."""
    tmp = tmp_path_factory.mktemp("installed")
    source = tmp / "source"  # a copy: an in-tree build would leave build/ behind (and take stale files from it)
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "reports", "__pycache__"))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "dist"), str(source)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next((tmp / "dist").glob("appliance-*.whl"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = Path(subprocess.run([str(venv / "bin/python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    (purelib / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # this environment's packages, after the wheel's
    inst = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin/python"), "install", "-q", "--no-deps", str(wheel)],
                          capture_output=True, text=True)
    assert inst.returncode == 0, inst.stderr[-2000:]
    work = tmp / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # state: the session's folder (swept after a killed run)

    def run(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
        return subprocess.run([str(venv / "bin" / args[0]), *args[1:]], cwd=work, env=env, capture_output=True, text=True, timeout=timeout)

    return run, work


def test_version_is_the_wheels(installed):
    run, _ = installed
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    r = run("appliance", "--version")
    assert r.returncode == 0 and r.stdout.strip() == f"appliance, version {version}", r.stdout + r.stderr


def test_the_wheel_carries_what_components_read(installed):
    run, work = installed
    r = run("python", "-c", CHECK, str(ROOT / "tests/unit/test_packaging.py"), str(work.parent / "venv"))
    assert r.returncode == 0 and "wheel data ok" in r.stdout, r.stdout + r.stderr


def test_plan_and_profiles_work_outside_the_checkout(installed):
    run, _ = installed
    r = run("appliance", "plan", "--profile", "laptop", "--provider", "sim")
    assert r.returncode == 0 and "wave 1: cluster" in r.stdout, r.stdout + r.stderr
    r = run("appliance", "profiles", "list")
    assert r.returncode == 0 and "sim-dgx-pod" in r.stdout, r.stdout + r.stderr


def test_e2e_validate_and_schema_work_outside_the_checkout(installed):
    run, _ = installed
    r = run("appliance", "e2e", "validate")
    shipped = len(list((ROOT / "e2e" / "scenarios").glob("*.yaml")))
    assert r.returncode == 0 and f"ok: {shipped} scenario file(s)" in r.stdout, r.stdout + r.stderr
    r = run("appliance", "e2e", "schema")
    assert r.returncode == 0 and '"title": "appliance e2e scenario"' in r.stdout, r.stdout + r.stderr


def test_init_writes_a_project_and_a_broken_scenario_is_caught_with_its_line(installed):
    run, work = installed
    r = run("appliance", "e2e", "init", "project/e2e")
    assert r.returncode == 0 and "wrote project/e2e/my-model.yaml" in r.stdout and "wrote project/e2e/trainer/train.py" in r.stdout, r.stdout + r.stderr

    broken = work / "project" / "broken"
    shutil.copytree(work / "project" / "e2e", broken)
    text = (broken / "my-model.yaml").read_text()
    line = text[: text.index("timeout: 900")].count("\n") + 1
    (broken / "my-model.yaml").write_text(text.replace("timeout: 900", "timeout: -5", 1))
    r = run("appliance", "e2e", "validate", "project/broken")
    assert r.returncode == 2 and r.stdout.startswith(f"project/broken/my-model.yaml:{line} (steps.0.timeout): "), r.stdout + r.stderr
    r = run("appliance", "e2e", "--scenarios", "project/broken")
    assert r.returncode == 2 and f"my-model.yaml:{line}" in r.stderr and "Traceback" not in r.stderr, r.stderr


def _local(line: str) -> str | None:
    """A line of docs/ci.md's GitHub Actions job as it runs here: on the simulator (this machine's CI runs kind
    elsewhere), the appliance already installed from the wheel (the `pip install` line skipped), as root."""
    if line.startswith("pip install"):
        return None
    return line.replace("--provider kind", "--provider sim").removeprefix("sudo ")


@pytest.mark.slow
def test_docs_ci_github_actions_steps_take_an_empty_repository_to_a_green_run_on_the_simulator(installed):
    """docs/ci.md's promise: from an empty repository, `e2e init`, then the GitHub Actions job's commands in
    their order (each must succeed; `down` always runs) — the scenarios pass, JUnit and the report are kept."""
    from tests.unit.test_ci_docs import _examples

    _, work = installed
    repo = work / "repo"
    repo.mkdir()
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    env = {**os.environ, "APPLIANCE_VERSION": version, "PATH": f"{work.parent / 'venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)

    def sh(line: str, timeout: int = 1200) -> None:
        r = subprocess.run(["bash", "-euo", "pipefail", "-c", line], cwd=repo, env=env, capture_output=True, text=True, timeout=timeout)
        assert r.returncode == 0, f"{line}: exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"

    sh("appliance e2e init e2e")
    (job,) = _examples()["GitHub Actions"]["jobs"].values()
    steps = [s for s in job["steps"] if "run" in s]
    always = [s for s in steps if s.get("if") == "always()"]
    try:
        for step in (s for s in steps if s not in always):
            for line in filter(None, map(_local, step["run"].splitlines())):
                sh(line)
    finally:
        for step in always:
            for line in filter(None, map(_local, step["run"].splitlines())):
                sh(line, timeout=300)
    reports = repo / "reports"
    suite = ET.parse(reports / "junit.xml").getroot().find("testsuite")
    assert suite.get("name") == "my-model" and suite.get("failures") == "0" and suite.get("skipped") == "1"
    (skipped,) = [c for c in suite.iter("testcase") if c.find("skipped") is not None]  # the simulator's pods run no code
    assert skipped.get("name") == "the model answers" and skipped.find("skipped").get("message") == "runs on kind/baremetal only"
    built = next(c for c in suite.iter("testcase") if c.get("name") == "build my trainer's image")
    assert "built appliance.local/e2e/my-trainer:" in ET.tostring(built, encoding="unicode"), ET.tostring(built, encoding="unicode")
    assert (reports / "report.html").is_file()
