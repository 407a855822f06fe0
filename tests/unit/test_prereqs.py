"""Host prerequisites of a plan: found before any build, installed by host-setup where allowed."""

import shutil

import pytest

from appliance import orchestrator, prereqs, profiles
from appliance.errors import UserError


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("APPLIANCE_CACHE", str(tmp_path))
    return tmp_path


def _laptop(*sets):
    return profiles.load("laptop", list(sets)).profile


def _without(monkeypatch, *programs):
    real = shutil.which
    monkeypatch.setattr(prereqs.shutil, "which", lambda p, *a, **k: None if p in programs else real(p, *a, **k))


def test_kind_on_a_cold_cache_needs_debootstrap_and_gcc(cache):
    got = {n.program: why for n, why in prereqs.needs(_laptop(), "kind")}
    assert set(got) == {"debootstrap", "gcc"}
    assert "node" in got["debootstrap"] and "python" in got["debootstrap"]


def test_cached_root_filesystems_need_nothing(cache):
    from appliance.images import debian
    from appliance.images.builds import BASE_PACKAGES

    for name, pkgs in (("node", debian.NODE_PACKAGES), ("slim", debian.SLIM_PACKAGES), ("python", BASE_PACKAGES)):
        path = debian.rootfs_path(name, pkgs)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    assert prereqs.needs(_laptop(), "kind") == []


def test_simulator_and_a_given_node_image_need_no_node_build(cache):
    assert prereqs.needs(_laptop(), "sim") == []
    got = [n.program for n, _ in prereqs.needs(_laptop("cluster.kind.image=kindest/node:v1.31.4"), "kind")]
    assert got == ["debootstrap"]  # only the stub images' python rootfs


def test_up_fails_in_its_first_step_with_the_fix(cache, monkeypatch):
    _without(monkeypatch, "debootstrap")
    monkeypatch.setattr(orchestrator, "Cluster", lambda *a: pytest.fail("up made the cluster's provider before checking the host"))
    with pytest.raises(UserError) as e:
        orchestrator.up(_laptop(), "kind", reporter=None)
    line = e.value.line()
    assert "debootstrap" in line and "make host-setup" in line and "apt-get install -y debootstrap" in line
    assert line.count("fix:") == 1


def test_setup_without_root_says_what_to_run(monkeypatch):
    _without(monkeypatch, "debootstrap", "gcc")
    monkeypatch.setattr(prereqs.os, "geteuid", lambda: 1000)
    said = []
    missing = prereqs.setup(said.append)
    assert [n.program for n in missing] == ["debootstrap", "gcc"]
    assert "apt-get install -y debootstrap gcc libc6-dev" in said[0]
