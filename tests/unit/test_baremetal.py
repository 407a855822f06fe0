"""Bare-metal provider without hosts: inventory, event stream, failure mapping, image inputs."""

from __future__ import annotations

import io
import json
import os
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

from appliance import orchestrator, profiles, report
from appliance.errors import ProfileError, UserError
from appliance.providers.baremetal import BaremetalProvider
from appliance.providers.baremetal import image as img
from appliance.providers.baremetal.inventory import Inventory
from appliance.providers.baremetal.runner import (
    RunResult,
    _Events,
    ansible_envvars,
    ansible_program,
    classify_failure,
    playbooks_dir,
)
from appliance.schema import ClusterSpec


def spec(**bm) -> ClusterSpec:
    base = {
        "hosts": [
            {"name": "dgx1", "address": "10.0.0.11", "user": "ubuntu", "vars": {"appliance_nvswitch": True}},
            {"name": "dgx2", "address": "10.0.0.12", "user": "ubuntu", "port": 2222, "role": "worker"},
        ],
        "mig_profile": "all-1g.10gb",
        "gpu_stack": "operator",
    }
    base.update(bm)
    return ClusterSpec.model_validate({"name": "lab", "baremetal": base})


def test_generated_inventory(tmp_path):
    p = BaremetalProvider(spec(), tmp_path)
    inv = p.inventory.generate()
    cp = inv["all"]["children"]["control_plane"]["hosts"]
    wk = inv["all"]["children"]["workers"]["hosts"]
    assert cp["dgx1"] == {"ansible_host": "10.0.0.11", "ansible_user": "ubuntu", "ansible_port": 22,
                          "appliance_nvswitch": True}
    assert wk["dgx2"]["ansible_port"] == 2222
    v = inv["all"]["vars"]
    assert v["appliance_cluster_name"] == "lab"
    assert v["appliance_mig_profile"] == "all-1g.10gb" and v["appliance_gpu_stack"] == "operator"
    assert v["appliance_k8s_version"].startswith("v1.")
    assert v["appliance_offline"] is False


def test_write_inventory_generated(tmp_path):
    p = BaremetalProvider(spec(), tmp_path)
    paths = p.inventory.write()
    assert len(paths) == 1
    data = yaml.safe_load(Path(paths[0]).read_text())
    assert set(data["all"]["children"]) == {"control_plane", "workers"}


def test_user_inventory_layers_defaults_under_it(tmp_path):
    user = tmp_path / "mine.ini"
    user.write_text("[control_plane]\nbox ansible_host=1.2.3.4\n")
    p = BaremetalProvider(spec(inventory=str(user), hosts=[]), tmp_path / "state")
    paths = p.inventory.write()
    assert paths[-1] == str(user.resolve())  # the user's inventory comes last, so it wins
    assert yaml.safe_load(Path(paths[0]).read_text())["all"]["vars"]["appliance_cluster_name"] == "lab"


def test_missing_user_inventory(tmp_path):
    p = BaremetalProvider(spec(inventory=str(tmp_path / "nope.yml"), hosts=[]), tmp_path)
    with pytest.raises(UserError) as e:
        p.inventory.write()
    assert "does not exist" in e.value.line() and "fix:" in e.value.line()


def test_no_hosts(tmp_path):
    with pytest.raises(UserError) as e:
        BaremetalProvider(spec(hosts=[]), tmp_path).inventory.generate()
    assert "cluster.baremetal.hosts" in e.value.line()


def test_no_control_plane(tmp_path):
    s = spec(hosts=[{"name": "w", "address": "1.1.1.1", "role": "worker"}])
    with pytest.raises(UserError) as e:
        BaremetalProvider(s, tmp_path).inventory.generate()
    assert "control-plane" in e.value.line()


def test_offline_uses_inventory_binaries_dir_without_toolchain(tmp_path):
    hv = {"appliance_k8s_binaries_dir": "/bins", "appliance_k8s_images_dir": "/imgs", "appliance_debs_dir": "/debs"}
    p = BaremetalProvider(spec(offline=True, hosts=[{"name": "a", "address": "1.1.1.1", "vars": hv}]), tmp_path)
    assert not p.inventory.offline_default("appliance_k8s_binaries_dir") and not p.inventory.offline_default("appliance_k8s_images_dir")
    data = yaml.safe_load(Path(p.inventory.write()[0]).read_text())
    assert data["all"]["children"]["control_plane"]["hosts"]["a"]["appliance_k8s_binaries_dir"] == "/bins"
    assert "appliance_k8s_images_dir" not in data["all"]["vars"]


def test_offline_provides_control_plane_images_and_the_cni_unless_init_is_off(tmp_path, monkeypatch):
    images = tmp_path / "control-plane"
    images.mkdir()
    (images / ".complete").write_text(json.dumps({"appliance-cni": "appliance.local/cni-agent:abc"}))
    monkeypatch.setattr(Inventory, "k8s_images_dir", lambda self: images)
    hv = {"appliance_k8s_binaries_dir": "/bins", "appliance_debs_dir": "/debs", "appliance_pod_cidr": "10.32.0.0/16"}
    p = BaremetalProvider(spec(offline=True, hosts=[{"name": "a", "address": "1.1.1.1", "vars": hv}]), tmp_path / "a")
    got = yaml.safe_load(Path(p.inventory.write()[0]).read_text())["all"]["vars"]
    assert got["appliance_k8s_images_dir"] == str(images)
    agent = next(d for d in yaml.safe_load_all(Path(got["appliance_cni_manifest"]).read_text()) if d["kind"] == "DaemonSet")
    (container,) = agent["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "appliance.local/cni-agent:abc" and {"name": "POD_SUBNET", "value": "10.32.0.0/16"} in container["env"]
    mine = {**hv, "appliance_cni_manifest": "/mine.yaml"}   # a CNI of the user's: theirs is applied
    p = BaremetalProvider(spec(offline=True, hosts=[{"name": "a", "address": "1.1.1.1", "vars": mine}]), tmp_path / "m")
    assert "appliance_cni_manifest" not in yaml.safe_load(Path(p.inventory.write()[0]).read_text())["all"]["vars"]
    hv = {"appliance_k8s_binaries_dir": "/bins", "appliance_debs_dir": "/debs", "appliance_kubeadm_init": False}
    p = BaremetalProvider(spec(offline=True, hosts=[{"name": "a", "address": "1.1.1.1", "vars": hv}]), tmp_path / "b")
    assert "appliance_k8s_images_dir" not in yaml.safe_load(Path(p.inventory.write()[0]).read_text())["all"]["vars"]
    online = BaremetalProvider(spec(hosts=[{"name": "a", "address": "1.1.1.1"}]), tmp_path / "c")
    assert "appliance_k8s_images_dir" not in yaml.safe_load(Path(online.inventory.write()[0]).read_text())["all"]["vars"]


@pytest.mark.parametrize(
    "res,unreachable,what,fix",
    [
        ({"msg": "Failed to connect to the host via ssh: ssh: connect to host 10.0.0.11 port 22: Connection refused"},
         True, "host unreachable", "ssh -p 22 ubuntu@10.0.0.11"),
        ({"msg": "Failed to connect to the host via ssh: ubuntu@10.0.0.11: Permission denied (publickey)."},
         True, "SSH login refused", "ssh-copy-id ubuntu@10.0.0.11"),
        ({"msg": "Failed to connect to the host via ssh: Host key verification failed."},
         True, "host key not trusted", "ssh-keyscan"),
        ({"msg": "The following modules failed to execute: ansible.legacy.setup.",
          "failed_modules": {"ansible.legacy.setup": {"module_stderr": "sudo: a password is required\n"}}},
         False, "no sudo", "NOPASSWD"),
        ({"msg": "Missing sudo password"}, False, "no sudo", "/etc/sudoers.d/ubuntu"),
        ({"msg": "APPLIANCE unsupported OS CentOS 7 — fix: install one of Debian/Ubuntu ({})"},
         False, "unsupported OS CentOS 7", "install one of Debian/Ubuntu"),
        ({"msg": "APPLIANCE missing inventory var appliance_k8s_version — fix: set appliance_k8s_version for this host"},
         False, "missing inventory var appliance_k8s_version", "set appliance_k8s_version"),
        ({"msg": "The task includes an option with an undefined variable. 'appliance_foo' is undefined"},
         False, "missing inventory var appliance_foo", "set appliance_foo"),
        ({"msg": "Failed to update apt cache: unknown reason"}, False, "package install failed", "apt sources"),
        ({"msg": "/bin/sh: 1: /usr/bin/python3: not found"}, False, "no Python", "apt-get install -y python3"),
        ({"msg": "something odd"}, False, "something odd", "run again"),
    ],
)
def test_classify_failure(res, unreachable, what, fix):
    f = classify_failure("dgx1", "preflight : x", res, unreachable=unreachable,
                         hostinfo={"address": "10.0.0.11", "user": "ubuntu", "port": 22})
    assert f.what.startswith(what), f.what
    assert fix in f.fix, f.fix
    line = f.line()
    assert line.startswith("dgx1: preflight : x: ") and "\n" not in line and " — fix: " in line


def _ev(kind, host="dgx1", task="Install", role="containerd", **res):
    return {"event": kind, "event_data": {"host": host, "task": task, "role": role, "res": res}}


def test_event_stream_lines_and_bookkeeping():
    lines: list[str] = []
    h = _Events(lines.append, {"dgx1": {"address": "10.0.0.11", "user": "ubuntu", "port": 22}})
    h({"event": "playbook_on_task_start", "event_data": {}})
    h(_ev("runner_on_ok", changed=False))
    h(_ev("runner_on_ok", task="Configure", changed=True))
    h(_ev("runner_on_skipped", task="Skip me"))
    h(_ev("runner_on_unreachable", host="dgx2", role=None, task="Gathering Facts",
          msg="Failed to connect to the host via ssh: Connection timed out"))
    h({"event": "playbook_on_stats", "event_data": {"ok": {"dgx1": 2}, "changed": {"dgx1": 1}, "dark": {"dgx2": 1}}})
    assert lines[0] == "dgx1 / containerd : Install / ok"
    assert lines[1] == "dgx1 / containerd : Configure / changed"
    assert lines[2].startswith("dgx2 / Gathering Facts / unreachable: host unreachable")
    assert "fix:" in lines[2]
    assert h.changed == [("dgx1", "containerd : Configure")]
    assert h.stats == {"dgx1": {"ok": 2, "changed": 1}, "dgx2": {"unreachable": 1}}
    assert len(h.failures) == 1 and h.failures[0].unreachable


def test_a_censored_result_counts_as_changed_by_its_line():
    """no_log (a join holding its token) censors `res`, its `changed` too: the callback's line still says it."""
    h = _Events(lambda _: None, {})
    hidden = "the output has been hidden due to the fact that 'no_log: true' was specified for this result"
    h({**_ev("runner_on_ok", task="Join the cluster", role="kubernetes", censored=hidden), "stdout": "changed: [dgx2]"})
    h({**_ev("runner_on_ok", task="Make a join command", role="kubernetes", censored=hidden), "stdout": "ok: [dgx1]"})
    assert h.changed == [("dgx1", "kubernetes : Join the cluster")]


def test_ignored_failure_is_not_a_failure():
    lines: list[str] = []
    h = _Events(lines.append, {})
    ev = _ev("runner_on_failed", msg="nope")
    ev["event_data"]["ignore_errors"] = True
    h(ev)
    assert not h.failures and lines == ["dgx1 / containerd : Install / failed (ignored)"]


def test_error_is_one_line_and_reports_every_host(tmp_path):
    lines: list[str] = []
    p = BaremetalProvider(spec(), tmp_path, report=lines.append)
    r = RunResult("x", "failed", 2, 1.0, str(tmp_path), failures=[
        classify_failure("dgx1", "t", {"msg": "Missing sudo password"}),
        classify_failure("dgx2", "t", {"msg": "Failed to connect: Connection refused"}, unreachable=True),
    ])
    err = p._error(r)
    assert "\n" not in err.line() and "and 1 more hosts" in err.line()
    assert [ln.split(":")[0] for ln in lines] == ["dgx1", "dgx2"]
    assert json.dumps(r.to_dict())  # artifacts summary is plain data


def test_failed_up_step_prints_one_fix(tmp_path, monkeypatch):
    """A host's failure wrapped by the planner and `up` keeps its own fix, and only that one."""
    monkeypatch.setenv("APPLIANCE_STATE", str(tmp_path / "state"))
    failure = classify_failure("dgx-01", "Gathering Facts", {"msg": "Failed to connect: Connection refused"},
                               unreachable=True, hostinfo={"address": "10.0.0.5", "user": "ubuntu", "port": 22})
    monkeypatch.setattr(BaremetalProvider, "run_playbook", lambda self, playbook="site.yml", **kw: RunResult(
        "x", "failed", 4, 0.1, str(tmp_path / "runs" / "x"), failures=[failure]))
    profile = profiles.load("dgx", ["cluster.baremetal.hosts.0.address=10.0.0.5"]).profile
    with pytest.raises(UserError) as e:
        orchestrator.up(profile, "baremetal", report.Reporter(io.StringIO()))
    line = e.value.line()
    assert "step 'cluster' failed: dgx-01: Gathering Facts: host unreachable" in line, line
    assert line.count("fix:") == 1 and line.endswith(f"fix: {failure.fix}"), line


def test_host_without_address_is_refused_first(tmp_path):
    with pytest.raises(ProfileError) as e:
        BaremetalProvider(spec(hosts=[{"name": "dgx-01", "address": ""}]), tmp_path)
    line = e.value.line()
    assert line.startswith("cluster.baremetal.hosts.0.address: host 'dgx-01' has no address — fix: ")
    assert "--set cluster.baremetal.hosts.0.address=" in line and "cluster.baremetal.inventory" in line
    assert line.count("fix:") == 1 and not tmp_path.joinpath("inventory").exists()
    # the user's own inventory says where the hosts are
    BaremetalProvider(spec(hosts=[{"name": "dgx-01", "address": ""}], inventory="hosts.ini"), tmp_path)


def test_dgx_profile_needs_an_address(tmp_path, monkeypatch):
    monkeypatch.setenv("APPLIANCE_STATE", str(tmp_path / "state"))
    with pytest.raises(ProfileError) as e:
        orchestrator.up(profiles.load("dgx").profile, "baremetal", report.Reporter(io.StringIO()))
    assert "cluster.baremetal.hosts.0.address" in e.value.line()
    assert not (tmp_path / "state").exists()  # refused before any work: no lock, no state
    set_ = profiles.load("dgx", ["cluster.baremetal.hosts.0.address=10.0.0.5"]).profile
    assert BaremetalProvider(set_.cluster, tmp_path).inventory.generate()["all"]["children"]["control_plane"][
        "hosts"]["dgx-01"]["ansible_host"] == "10.0.0.5"


def test_ansible_programs_of_this_interpreter_whatever_path(monkeypatch):
    pytest.importorskip("ansible")
    monkeypatch.setenv("PATH", "/nonexistent")
    beside = {sysconfig.get_path("scripts"), os.path.dirname(sys.executable)}
    prog = ansible_program("ansible-playbook")
    assert str(prog.parent) in beside and os.access(prog, os.X_OK)
    assert ansible_envvars(playbooks_dir())["PATH"].split(os.pathsep)[0] == str(prog.parent)


def test_missing_ansible_program_is_one_line(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(UserError) as e:
        ansible_program("ansible-no-such-program")
    assert "ansible-no-such-program not found" in e.value.line() and "pip install" in e.value.fix


def test_status_without_runs(tmp_path):
    st = BaremetalProvider(spec(), tmp_path).status()
    assert st["provider"] == "baremetal" and st["last_run"] == {} and len(st["hosts"]) == 2


def test_available_and_playbooks_dir(monkeypatch):
    assert BaremetalProvider.available() == (True, "")  # the test extras install ansible-runner and ansible-core
    monkeypatch.setitem(sys.modules, "ansible_runner", None)  # import fails as if not installed
    ok, why = BaremetalProvider.available()
    assert not ok and "pip install ansible-runner" in why
    assert (playbooks_dir() / "site.yml").exists()


# -- image inputs -------------------------------------------------------------------------------


def _apt_root(tmp_path: Path) -> Path:
    d = tmp_path / "apt"
    (d / "sources.list.d").mkdir(parents=True)
    (d / "sources.list").write_text("# nothing here\n")
    (d / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\n"
    )
    (d / "sources.list.d" / "other.list").write_text("deb [arch=amd64] https://vendor.example/apt stable main\n")
    return d


def test_mirror_from_host_apt_sources(tmp_path, monkeypatch):
    monkeypatch.setenv("APPLIANCE_APT_ROOT", str(_apt_root(tmp_path)))
    monkeypatch.delenv("APPLIANCE_DEBIAN_MIRROR", raising=False)
    assert img.debian_mirrors() == ("http://mirror.example/debian", "http://mirror.example/debian-security")


def test_mirror_override_and_key(tmp_path, monkeypatch):
    monkeypatch.setenv("APPLIANCE_APT_ROOT", str(_apt_root(tmp_path)))
    monkeypatch.delenv("APPLIANCE_DEBIAN_MIRROR", raising=False)
    k1 = img.image_key()
    monkeypatch.setenv("APPLIANCE_DEBIAN_MIRROR", "http://other.example/debian/")
    assert img.debian_mirrors()[0] == "http://other.example/debian"
    assert img.image_key() != k1  # the cache key follows the inputs
    assert img.image_tag().startswith("appliance/systemd-host:bookworm-")


def test_no_debian_source(tmp_path, monkeypatch):
    d = tmp_path / "apt"
    (d / "sources.list.d").mkdir(parents=True)
    monkeypatch.setenv("APPLIANCE_APT_ROOT", str(d))
    monkeypatch.delenv("APPLIANCE_DEBIAN_MIRROR", raising=False)
    with pytest.raises(UserError) as e:
        img.debian_mirrors()
    assert "APPLIANCE_DEBIAN_MIRROR" in e.value.line()


def test_cli_inventory(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from appliance.commands.baremetal import baremetal

    monkeypatch.setenv("APPLIANCE_STATE", str(tmp_path / "state"))
    prof = tmp_path / "lab.yaml"
    prof.write_text(yaml.safe_dump({"name": "lab", "provider": "baremetal", "cluster": {"name": "lab", "baremetal": {
        "hosts": [{"name": "dgx1", "address": "10.0.0.11", "user": "ubuntu"}]}}}))
    r = CliRunner().invoke(baremetal, ["inventory", str(prof), "--set", "cluster.baremetal.offline=true"])
    assert r.exit_code == 0, r.output
    inv = yaml.safe_load(r.output)
    assert inv["all"]["children"]["control_plane"]["hosts"]["dgx1"]["ansible_host"] == "10.0.0.11"
    assert inv["all"]["vars"]["appliance_offline"] is True


def test_missing_user_inventory_offline(tmp_path):
    p = BaremetalProvider(spec(inventory=str(tmp_path / "nope.yml"), hosts=[], offline=True), tmp_path)
    p.inventory.k8s_binaries_dir = p.inventory.k8s_images_dir = lambda: pytest.fail("built before checking the inventory")
    with pytest.raises(UserError) as e:
        p.inventory.write()
    assert "does not exist" in e.value.line()
