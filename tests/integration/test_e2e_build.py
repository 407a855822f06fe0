"""A scenario's `build:` step for real: a user's project in a temporary folder (a package of their own and a
requirements file) built by the appliance's Python image builder, then run in Docker: their package and
their requirement import there, their hidden files stayed out, and a second build finds the image cached."""

import shutil
import subprocess
import time

import pytest

from appliance.e2e import build
from appliance.e2e.scenario import Build

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.docker]


def _docker_ok() -> bool:
    return bool(shutil.which("docker")) and subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0


@pytest.mark.skipif(not _docker_ok(), reason="no Docker daemon")
def test_a_users_project_becomes_an_image_with_their_package_inside(tmp_path):
    project = tmp_path / "project"
    (project / "mypkg").mkdir(parents=True)
    (project / "mypkg" / "__init__.py").write_text("import numpy\n\nANSWER = int(numpy.arange(43).max())\n")
    (project / "requirements.txt").write_text("# what mypkg imports\nnumpy==2.1.3\n")
    (project / ".git").mkdir()
    (project / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    spec = Build(name="it-user-image", context="project")

    ref, how = build.build_and_deliver(spec, tmp_path, kube=None, pods_run=False)
    assert ref.startswith("appliance.local/e2e/it-user-image:") and "only its reference" in how
    t0 = time.monotonic()
    again, archive = build.image(spec, tmp_path).build()
    assert again == ref and time.monotonic() - t0 < 5  # cached by its inputs

    subprocess.run(["docker", "load", "-i", str(archive)], check=True, capture_output=True, timeout=300)
    try:
        r = subprocess.run(["docker", "run", "--rm", "--network", "none", ref, "-c",  # the entrypoint: python3, in /app
                            "import mypkg, numpy, os; print(mypkg.ANSWER, numpy.__version__, sorted(os.listdir('/app')))"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "42 2.1.3 ['mypkg', 'requirements.txt']", r.stdout
    finally:
        subprocess.run(["docker", "rmi", "-f", ref], capture_output=True, timeout=60)
