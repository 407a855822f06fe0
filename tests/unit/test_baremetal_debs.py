"""The hosts' Debian packages for offline converges: the roles' package list, the flat repository's index,
the inventory variable that points the roles at it."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest
import yaml

from appliance.errors import UserError
from appliance.providers.baremetal import BaremetalProvider, debs
from appliance.providers.baremetal.inventory import Inventory
from appliance.schema import ClusterSpec
from appliance.util import offline


def _tar_xz(name: str, text: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(text.encode())
        tar.addfile(info, io.BytesIO(text.encode()))
    return buf.getvalue()


def fake_deb(path: Path, package: str, version: str) -> Path:
    """A .deb as dpkg-deb writes it: an ar archive of debian-binary, control.tar.xz and data.tar.xz."""
    members = [("debian-binary", b"2.0\n"),
               ("control.tar.xz", _tar_xz("./control", f"Package: {package}\nVersion: {version}\nArchitecture: amd64\n")),
               ("data.tar.xz", _tar_xz("./usr/share/doc/x", "x"))]
    out = b"!<arch>\n"
    for name, body in members:
        out += f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(body):<10}`\n".encode() + body + (b"\n" if len(body) % 2 else b"")
    path.write_bytes(out)
    return path


def test_the_package_list_is_what_the_roles_install():
    got = debs.role_packages()
    assert {"containerd", "runc", "conntrack", "containernetworking-plugins", "systemd-timesyncd"} <= set(got), got
    assert got == sorted(set(got))


def test_the_repository_indexes_every_package_with_its_size_and_hash(tmp_path):
    a = fake_deb(tmp_path / "runc_1.1_amd64.deb", "runc", "1.1")
    b = fake_deb(tmp_path / "containerd_1.6_amd64.deb", "containerd", "1.6")
    debs.write_repo([a, b], tmp_path / "repo.tar")
    with tarfile.open(tmp_path / "repo.tar") as tar:
        assert sorted(tar.getnames()) == ["Packages", "containerd_1.6_amd64.deb", "runc_1.1_amd64.deb"]
        index = tar.extractfile("Packages").read().decode()
    stanzas = [dict(ln.split(": ", 1) for ln in s.splitlines()) for s in index.strip().split("\n\n")]
    assert [(s["Package"], s["Version"], s["Filename"]) for s in stanzas] == [("runc", "1.1", "./runc_1.1_amd64.deb"),
                                                                              ("containerd", "1.6", "./containerd_1.6_amd64.deb")]
    assert stanzas[0]["Size"] == str(a.stat().st_size) and stanzas[0]["SHA256"] == hashlib.sha256(a.read_bytes()).hexdigest()


def test_a_file_that_is_not_a_package_is_named(tmp_path):
    bad = tmp_path / "broken.deb"
    bad.write_bytes(b"<html>a proxy's error page</html>")
    with pytest.raises(UserError) as e:
        debs.write_repo([bad], tmp_path / "repo.tar")
    assert "broken.deb is not a Debian package" in e.value.line() and "fix:" in e.value.line()


def test_the_cache_key_follows_the_suite_and_the_packages(monkeypatch, tmp_path):
    monkeypatch.setenv("APPLIANCE_CACHE", str(tmp_path))
    base = debs.repo_dir("bookworm")
    assert base == debs.repo_dir("bookworm", debs.role_packages()) and base.parent == tmp_path / "images" / "host-debs"
    assert debs.repo_dir("trixie") != base and debs.repo_dir("bookworm", ["containerd"]) != base


def test_offline_a_missing_repository_is_refused_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("APPLIANCE_CACHE", str(tmp_path))
    with offline.enabled(), pytest.raises(UserError) as e:
        debs.host_debs()
    assert "the hosts' Debian packages" in e.value.line() and "not in the bundle or the caches" in e.value.line()


def test_offline_hosts_are_given_the_repository_unless_their_inventory_names_one(monkeypatch, tmp_path):
    repo = tmp_path / "repo"
    monkeypatch.setattr(Inventory, "debs_dir", lambda self: repo)
    hv = {"appliance_k8s_binaries_dir": "/bins", "appliance_kubeadm_init": False}
    spec = ClusterSpec.model_validate({"name": "x", "baremetal": {"offline": True, "hosts": [{"name": "a", "address": "1.1.1.1", "vars": hv}]}})
    got = yaml.safe_load(Path(BaremetalProvider(spec, tmp_path / "a").inventory.write()[0]).read_text())["all"]["vars"]
    assert got["appliance_debs_dir"] == str(repo)
    mine = spec.model_copy(deep=True)
    mine.baremetal.hosts[0].vars["appliance_debs_dir"] = "/theirs"
    got = yaml.safe_load(Path(BaremetalProvider(mine, tmp_path / "b").inventory.write()[0]).read_text())["all"]["vars"]
    assert "appliance_debs_dir" not in got
