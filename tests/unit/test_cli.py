"""The real console entry: --help everywhere, JSON outputs parse, bad input is one line and exit 2."""

import json
import os
import subprocess
import sys

import pytest

COMMANDS = [[], ["up"], ["down"], ["status"], ["doctor"], ["plan"], ["profiles"], ["profiles", "list"],
            ["profiles", "show"], ["profiles", "validate"], ["e2e"], ["e2e", "validate"], ["e2e", "schema"], ["e2e", "init"], ["backup"], ["restore"], ["upgrade"],
            ["node"], ["node", "drain"], ["node", "remove"]]


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-c", "from appliance.cli import run; run()", *args],
                          capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c) or "root")
def test_help(cmd):
    r = cli(*cmd, "--help")
    assert r.returncode == 0 and "Usage:" in r.stdout


def test_plan_json_is_the_dag():
    r = cli("plan", "--profile", "sim-dgx-pod", "--json")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    assert plan["provider"] == "sim" and plan["waves"][0] == ["cluster"]
    wave_of = {sid: i for i, wave in enumerate(plan["waves"]) for sid in wave}
    for step in plan["steps"]:
        assert all(wave_of[n] < wave_of[step["id"]] for n in step["needs"]), step
    needs = {s["id"]: s["needs"] for s in plan["steps"]}
    assert needs["user-profiles"] == ["cluster", "platform-base"]


def test_plan_provider_flag_and_set():
    r = cli("plan", "--profile", "laptop", "--provider", "sim", "--set", "components.kserve.enabled=false", "--json")
    plan = json.loads(r.stdout)
    assert plan["provider"] == "sim" and plan["provider_reason"] == "chosen with --provider"
    ids = [s["id"] for s in plan["steps"]]
    assert ids[:2] == ["cluster", "platform-base"] and "kserve" not in ids


def test_validate_broken_profile_exits_2_with_one_line(tmp_path):
    f = tmp_path / "broken.yaml"
    f.write_text("name: broken\ncluster:\n  workers: -1\n")
    r = cli("profiles", "validate", str(f))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{f}:3 (cluster.workers)" in lines[0] and "Traceback" not in r.stderr


def test_validate_shipped_profiles():
    r = cli("profiles", "validate")
    assert r.returncode == 0 and r.stdout.count("ok ") == 4


def test_doctor_json_lists_checks():
    r = cli("doctor", "--profile", "sim-dgx-pod", "--json")
    data = json.loads(r.stdout)
    names = {c["name"] for c in data["checks"]}
    assert {"cpu", "memory", "disk", "inotify", "cgroup", "docker", "kernel-modules", "capabilities", "gpus", "budget"} <= names
    assert r.returncode == (0 if data["ok"] else 1)


def test_bad_flag_and_unknown_profile_are_one_line():
    r = cli("up", "--provider", "nope")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    r = cli("plan", "--profile", "lapto")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "did you mean 'laptop'" in r.stderr


def test_node_commands_on_an_unknown_cluster_are_one_line(tmp_path):
    for action in ("drain", "remove"):
        r = cli("node", action, "w1", "--cluster", "ghost", env={"APPLIANCE_STATE": str(tmp_path)})
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        assert r.stderr.strip().splitlines()[-1].endswith("no cluster named 'ghost' — fix: run `appliance up` first (or check --cluster)"), r.stderr


def test_status_of_unknown_cluster(tmp_path):
    r = cli("status", "--cluster", "ghost", env={"APPLIANCE_STATE": str(tmp_path)})
    assert r.returncode == 1 and "no cluster named 'ghost'" in r.stderr


NOW = 1_700_000_000.0
SIM_STATUS = {
    "cluster": "demo", "provider": "sim", "profile": "laptop", "ready": True, "kubeconfig": "/state/demo/kubeconfig",
    "steps": {"cluster": "done", "platform-base": "done"},
    "components": {"platform-base": {"step": "done", "error": None, "ready": True, "missing": []}},
    "provider_status": {
        "provider": "sim", "state": "degraded", "state_dir": "/state/demo/sim", "kubeconfig": "/state/demo/kubeconfig",
        "apiserver": "https://127.0.0.1:6443", "ports": {"etcd": 2379, "kube-apiserver": 6443},
        "processes": [
            {"name": "etcd", "pid": 29934, "alive": True, "rss_bytes": 81883136, "cpu_seconds": 3.5,
             "create_time": NOW - 7380, "log": "/state/demo/sim/etcd.log", "binary": "/cache/bin/etcd"},
            {"name": "kube-scheduler", "pid": 0, "alive": False, "rss_bytes": 0},
        ],
        "crashed": ["kube-scheduler"], "rss_bytes_total": 81883136,
        "nodes": {"total": 6, "ready": 6, "gpus": 32},
    },
}


def test_status_text_is_a_table_without_paths():
    from appliance.report import status_text

    text = status_text(SIM_STATUS, now=NOW)
    lines = text.splitlines()
    header = next(ln for ln in lines if ln.split()[:1] == ["NAME"])
    assert header.split() == ["NAME", "PID", "STATE", "MEMORY", "CPU", "TIME", "UPTIME"]
    etcd = next(ln for ln in lines if ln.split()[:1] == ["etcd"])
    assert etcd.split() == ["etcd", "29934", "running", "78", "MiB", "3.5s", "2h03m"]
    assert etcd.index("29934") == header.index("PID") and etcd.index("78 MiB") == header.index("MEMORY")
    assert next(ln for ln in lines if ln.split()[:1] == ["kube-scheduler"]).split() == ["kube-scheduler", "-", "exited", "-", "-", "-"]
    assert "memory: 78 MiB" in text and "nodes: total 6, ready 6, gpus 32" in text and "crashed: kube-scheduler" in text
    assert "ports" not in text and "/state/demo/sim" not in text and "/cache/bin" not in text
    assert "=" not in text and "{" not in text and "rss_bytes" not in text
    assert "  kubeconfig: /state/demo/kubeconfig" in lines and text.count("/state/demo/kubeconfig") == 1


def test_status_text_verbose_adds_paths_and_ports():
    from appliance.report import status_text

    text = status_text(SIM_STATUS, verbose=True, now=NOW)
    header = next(ln for ln in text.splitlines() if ln.split()[:1] == ["NAME"])
    assert header.split()[-2:] == ["LOG", "BINARY"]
    assert "/state/demo/sim/etcd.log" in text and "/cache/bin/etcd" in text and "state_dir: /state/demo/sim" in text
    assert "ports: etcd 2379, kube-apiserver 6443" in text


def test_status_json_keeps_everything(monkeypatch):
    from click.testing import CliRunner

    from appliance import cli as cli_mod

    monkeypatch.setattr(cli_mod.orchestrator, "status", lambda name: SIM_STATUS)
    r = CliRunner().invoke(cli_mod.main, ["status", "--cluster", "demo", "--json"])
    assert r.exit_code == 0 and json.loads(r.output) == SIM_STATUS
    r = CliRunner().invoke(cli_mod.main, ["status", "--cluster", "demo", "-v"])
    assert r.exit_code == 0 and "/cache/bin/etcd" in r.output and "LOG" in r.output


def test_version_prints_the_release_and_its_pins():
    from importlib.metadata import version

    r = cli("version", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["appliance"] == version("appliance") and out["kubernetes"].startswith("v1.")
    assert any(g.startswith("sigs.k8s.io/kueue@v") for g in out["components"]["queues"]["go"])
    assert "images/notebook/requirements.lock" in out["components"]["notebooks"]["locks"]


def test_the_changelog_has_the_version_and_every_release_tag():
    from importlib.metadata import version
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    text = (root / "CHANGELOG.md").read_text()
    assert f"({version('appliance')})" in text or f"## {version('appliance')} " in text
    tags = subprocess.run(["git", "-C", str(root), "tag", "-l", "v*"], capture_output=True, text=True).stdout.split()
    assert all(f"## {t.removeprefix('v')} " in text for t in tags), tags


def test_bundles_are_refused_where_they_cannot_carry_everything(tmp_path):
    r = cli("bundle", "create", "--profile", "dgx", "--provider", "baremetal", "-o", str(tmp_path / "b.bundle"))
    assert r.returncode == 2 and r.stderr.startswith("error: --provider: no bundles for the baremetal provider"), r.stderr
    assert not (tmp_path / "b.bundle").exists()
