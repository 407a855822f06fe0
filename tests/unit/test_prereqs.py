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
    assert set(got) == {"debootstrap", "gcc", "npm"}  # npm: the notebook hub's proxy
    assert "node" in got["debootstrap"] and "python" in got["debootstrap"]


def test_cached_root_filesystems_need_nothing(cache):
    from appliance import paths
    from appliance.images import builds, debian
    from appliance.images.builds import BASE_PACKAGES

    pythons = [("python", [*BASE_PACKAGES, *p.packages]) for p in prereqs._python_images(_laptop(), "kind")]
    for name, pkgs in (("node", debian.NODE_PACKAGES), ("slim", debian.SLIM_PACKAGES), *pythons):
        path = debian.rootfs_path(name, pkgs)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    assert [n.program for n, _ in prereqs.needs(_laptop(), "kind")] == ["npm"]
    builds._npm_dir(paths.shipped("images/notebook-hub")).mkdir(parents=True)
    (builds._npm_dir(paths.shipped("images/notebook-hub")) / ".complete").write_text("")
    assert prereqs.needs(_laptop(), "kind") == []


def test_simulator_and_a_given_node_image_need_no_node_build(cache):
    assert prereqs.needs(_laptop(), "sim") == []
    got = [n.program for n, _ in prereqs.needs(_laptop("cluster.kind.image=kindest/node:v1.31.4"), "kind")]
    assert got == ["debootstrap", "npm"]  # only the images' python root filesystems, the hub's npm packages


def test_up_fails_in_its_first_step_with_the_fix(cache, monkeypatch):
    _without(monkeypatch, "debootstrap")
    monkeypatch.setattr(orchestrator, "Cluster", lambda *a: pytest.fail("up made the cluster's provider before checking the host"))
    with pytest.raises(UserError) as e:
        orchestrator.up(_laptop(), "kind", reporter=None)
    line = e.value.line()
    assert "debootstrap" in line and "make host-setup" in line and "apt-get install -y debootstrap" in line
    assert line.count("fix:") == 1


def test_setup_without_root_says_what_to_run(monkeypatch):
    _without(monkeypatch, "debootstrap", "gcc", "chromedriver")
    monkeypatch.setattr(prereqs.os, "geteuid", lambda: 1000)
    said = []
    missing = prereqs.setup(said.append)
    assert [n.program for n in missing] == ["debootstrap", "gcc", "chromedriver"]
    assert "apt-get install -y debootstrap debian-archive-keyring gcc libc6-dev chromium chromium-driver" in said[0]
