"""The bare-metal playbooks parse (syntax check through ansible-runner) and are lint clean."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from appliance.errors import UserError
from appliance.providers.baremetal.runner import ansible_envvars, ansible_program, playbooks_dir

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = ["site.yml", "reset.yml", "logs.yml"]
ROLES = ["preflight", "containerd", "nvidia_driver", "nvidia_container_toolkit", "kubernetes", "cni", "gpu_operator"]


def test_roles_layout():
    pb = playbooks_dir()
    site = yaml.safe_load((pb / "site.yml").read_text())
    assert [r["role"] for r in site[0]["roles"]] == ROLES
    for role in ROLES:
        assert (pb / "roles" / role / "tasks" / "main.yml").exists(), role
        assert (pb / "roles" / role / "defaults" / "main.yml").exists(), role


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_syntax_check(playbook, tmp_path, monkeypatch):
    """With the venv off PATH (a fresh machine): the provider's environment finds this interpreter's Ansible."""
    ansible_runner = pytest.importorskip("ansible_runner")
    monkeypatch.setenv("PATH", os.defpath)
    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  children:\n    control_plane:\n      hosts:\n        node1: {}\n    workers:\n      hosts: {}\n")
    pb = playbooks_dir()
    r = ansible_runner.run(
        private_data_dir=str(tmp_path),
        project_dir=str(pb),
        playbook=playbook,
        inventory=str(inv),
        cmdline="--syntax-check",
        envvars=ansible_envvars(pb),
        quiet=True,
    )
    out = r.stdout.read() if hasattr(r.stdout, "read") else ""
    assert r.rc == 0, out


def test_ansible_lint_clean(monkeypatch):
    monkeypatch.setenv("PATH", os.defpath)  # a fresh machine: the venv not activated
    try:
        lint = ansible_program("ansible-lint")
    except UserError:
        pytest.skip("ansible-lint not installed (pip install ansible-lint)")
    # it runs ansible-playbook itself (and warns when it has to fix PATH)
    env = {**os.environ, "PATH": ansible_envvars(playbooks_dir())["PATH"]}
    r = subprocess.run([lint, "--offline", "-q", "--nocolor", "playbooks/"], cwd=ROOT, capture_output=True, text=True,
                       timeout=600, env=env)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]


def test_host_probe_prints_json():
    import json

    probe = playbooks_dir() / "roles" / "preflight" / "files" / "probe.sh"
    r = subprocess.run(["sh", str(probe)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    facts = json.loads(r.stdout)
    assert {"container", "nvidia_pci", "nvidia_proc", "modules", "swap", "apt_lists", "packages"} <= set(facts)
    assert isinstance(facts["nvidia_pci"], int) and isinstance(facts["nvidia_proc"], bool)
