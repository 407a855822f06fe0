"""`appliance up --profile dgx` as the README runs it on a fresh machine: the venv not activated (PATH is the
system default). Needs ssh and Ansible on the controller only, no host and no Docker."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.integration]


def appliance(*args: str, state) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": os.defpath, "APPLIANCE_STATE": str(state)}
    return subprocess.run([sys.executable, "-c", "from appliance.cli import run; run()", *args],
                          capture_output=True, text=True, timeout=300, env=env)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_host_is_one_line_with_one_fix(tmp_path):
    pytest.importorskip("ansible_runner")
    if not shutil.which("ssh", path=os.defpath):
        pytest.skip(f"no ssh client on {os.defpath}")
    port = closed_port()
    r = appliance("up", "--profile", "dgx", "--set", "cluster.baremetal.hosts.0.address=127.0.0.1",
                  "--set", f"cluster.baremetal.hosts.0.port={port}", state=tmp_path)
    assert r.returncode == 1, r.stderr
    error = r.stderr.strip().splitlines()[-1]
    assert "not found" not in r.stderr, r.stderr  # ansible-playbook of this interpreter, not of PATH
    assert "step 'cluster' failed: dgx-01: " in error and "host unreachable" in error, error
    assert error.count("fix:") == 1 and error.endswith(f"fix: check that 127.0.0.1:{port} is up and that "
                                                       f"`ssh -p {port} ubuntu@127.0.0.1` works"), error


def test_dgx_without_address_says_so_first(tmp_path):
    r = appliance("up", "--profile", "dgx", state=tmp_path)
    assert r.returncode == 2, r.stderr
    error = r.stderr.strip().splitlines()[-1]
    assert error == ("error: cluster.baremetal.hosts.0.address: host 'dgx-01' has no address — fix: set it: "
                     "--set cluster.baremetal.hosts.0.address=<IP or DNS name>, or use your own inventory: "
                     "--set cluster.baremetal.inventory=./hosts.ini"), error
    assert "ansible" not in r.stderr and not any(tmp_path.iterdir())  # nothing ran, nothing was written
