"""Node image build pieces that need no Docker: apt sources, cache keys, docker-archive writer."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from appliance.errors import UserError
from appliance.images import archive, builds, debian, node


def test_apt_sources_deb822_and_one_line(tmp_path):
    d = tmp_path / "etc/apt/sources.list.d"
    d.mkdir(parents=True)
    (d / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n"
    )
    (tmp_path / "etc/apt/sources.list").write_text("deb [arch=amd64] http://other.example/debian trixie main\n# deb http://x y z\n")
    assert debian.apt_sources(str(tmp_path))[0] == ("http://other.example/debian", ["trixie"])
    assert debian.debian_mirror("bookworm", root=str(tmp_path)) == "http://mirror.example/debian"
    assert debian.debian_mirror("trixie", root=str(tmp_path)) == "http://other.example/debian"
    assert debian.debian_mirror("bookworm", override="http://o/", root=str(tmp_path)) == "http://o/"
    with pytest.raises(UserError):
        debian.debian_mirror("sid", root=str(tmp_path))
    (tmp_path / "etc/apt/sources.list").unlink()  # a bookworm host: trixie comes from the archive it uses
    assert debian.debian_mirror("trixie", root=str(tmp_path)) == "http://mirror.example/debian"


def test_mirror_env_override(monkeypatch, tmp_path):
    monkeypatch.setenv("APPLIANCE_DEBIAN_MIRROR", "http://env.example/debian")
    assert debian.debian_mirror(root=str(tmp_path)) == "http://env.example/debian"


def test_rootfs_key_depends_on_packages_only_as_a_set():
    assert debian.rootfs_key(["a", "b"]) == debian.rootfs_key(["b", "a"])
    assert debian.rootfs_key(["a"]) != debian.rootfs_key(["a", "b"])


def test_docker_archive_deterministic(tmp_path):
    binf = tmp_path / "tool"
    binf.write_bytes(b"\x7fELF fake")
    ids = []
    for i in range(2):
        lt = tmp_path / f"l{i}.tar"
        archive.write_layer([archive.FileEntry("usr/local/bin/tool", src=binf)], lt)
        ids.append(
            archive.write_docker_archive(
                archive.ImageSpec("registry.k8s.io/tool:v1", [lt], entrypoint=["/usr/local/bin/tool"]), tmp_path / f"a{i}.tar"
            )
        )
    assert ids[0] == ids[1]
    assert (tmp_path / "a0.tar").read_bytes() == (tmp_path / "a1.tar").read_bytes()
    with tarfile.open(tmp_path / "a0.tar") as t:
        manifest = json.load(t.extractfile("manifest.json"))
        assert manifest[0]["RepoTags"] == ["registry.k8s.io/tool:v1"]
        cfg = json.load(t.extractfile(manifest[0]["Config"]))
        assert cfg["config"]["Entrypoint"] == ["/usr/local/bin/tool"]
        layer = t.extractfile(manifest[0]["Layers"][0])
        with tarfile.open(fileobj=layer) as lt:
            assert lt.getnames() == ["usr", "usr/local", "usr/local/bin", "usr/local/bin/tool"]


def test_context_files_present():
    ctx = node.context_dir()
    for rel in [
        "node/files/usr/local/bin/entrypoint",
        "node/files/etc/systemd/system/kubelet.service",
        "node/files/etc/systemd/system/containerd.service",
        "node/files/etc/containerd/config.toml.in",
        "cni/default-cni.yaml.in",
        "cni/appliance-cni",
        "pause/pause.c",
    ]:
        assert (ctx / rel).is_file(), rel
    conf = (ctx / "node/files/etc/containerd/config.toml.in").read_text()
    assert "SystemdCgroup = true" in conf and "@PAUSE_IMAGE@" in conf and "version = 2" in conf
    cni = (ctx / "cni/default-cni.yaml.in").read_text()
    assert "would you kindly template this file" in cni and "{{ .PodSubnet }}" in cni


def test_kubeadm_images_parse(tmp_path):
    fake = tmp_path / "kubeadm"
    fake.write_text(
        "#!/bin/sh\nprintf 'registry.k8s.io/kube-apiserver:v1.31.4\\nregistry.k8s.io/coredns/coredns:v1.11.3\\n"
        "registry.k8s.io/pause:3.10\\nregistry.k8s.io/etcd:3.5.15-0\\n'\n"
    )
    fake.chmod(0o755)
    got = node.kubeadm_images(fake, "v1.31.4")
    assert got == {
        "kube-apiserver": "registry.k8s.io/kube-apiserver:v1.31.4",
        "coredns": "registry.k8s.io/coredns/coredns:v1.11.3",
        "pause": "registry.k8s.io/pause:3.10",
        "etcd": "registry.k8s.io/etcd:3.5.15-0",
    }


def test_go_program_failure_is_remembered(monkeypatch, tmp_path):
    from appliance.images import gobuild

    monkeypatch.setenv("APPLIANCE_CACHE", str(tmp_path))
    fake_go = tmp_path / "go"
    fake_go.write_text('#!/bin/sh\necho \'no proxy\' >&2\necho x >> "$(dirname "$0")/calls"\nexit 1\n')
    fake_go.chmod(0o755)
    monkeypatch.setattr(gobuild.builds, "find_go", lambda: str(fake_go))
    msgs = []
    assert gobuild.go_program("local-path-provisioner", report=msgs.append) is None
    assert gobuild.go_program("local-path-provisioner", report=msgs.append) is None
    assert (tmp_path / "calls").read_text().count("x") == 1  # second call did not rebuild
    assert gobuild.go_program("local-path-provisioner", report=msgs.append, retry=True) is None
    assert (tmp_path / "calls").read_text().count("x") == 2
    assert any("build failed" in m for m in msgs)


def test_go_program_without_go(monkeypatch, tmp_path):
    from appliance.images import gobuild

    monkeypatch.setenv("APPLIANCE_CACHE", str(tmp_path))
    monkeypatch.setattr(gobuild.builds, "find_go", lambda: None)
    assert gobuild.go_program("local-path-provisioner", report=lambda m: None) is None


def test_storage_manifest_template():
    text = (node.context_dir() / "storage/default-storage.yaml.in").read_text()
    assert text.count("@STORAGE_IMAGE@") == 3
    assert "storageclass.kubernetes.io/is-default-class" in text and "name: standard" in text


def test_runtime_base_spec_drops_net_raw_and_rlimits():
    """The node's base OCI spec: containerd's default without NET_RAW (every set) and its 1024-file rlimit."""
    caps = ["CAP_CHOWN", "CAP_NET_RAW", "CAP_NET_BIND_SERVICE"]
    spec = {"ociVersion": "1.1.0", "process": {"cwd": "/", "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                                               "capabilities": {k: list(caps) for k in ("bounding", "effective", "permitted")}}}
    out = node.runtime_base_spec(spec)
    assert out["process"]["capabilities"] == {k: ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"] for k in ("bounding", "effective", "permitted")}
    assert "rlimits" not in out["process"] and out["process"]["cwd"] == "/" and out["ociVersion"] == "1.1.0"
    assert "CAP_NET_RAW" in spec["process"]["capabilities"]["bounding"]  # the input is left as it was
    conf = (node.context_dir() / "node/files/etc/containerd/config.toml.in").read_text()
    assert conf.count('base_runtime_spec = "/etc/containerd/cri-base.json"') == 2  # runc and nvidia


def test_lock_hashes_leave_the_image_ref_alone_and_make_pip_require_them(tmp_path, monkeypatch):
    from appliance.images import builds

    plain, locked = tmp_path / "plain.lock", tmp_path / "hashed.lock"
    plain.write_text("# why\nsix==1.17.0\nidna==3.10  # a comment\n")
    locked.write_text("# why\nsix==1.17.0 --hash=sha256:aa\nidna==3.10 --hash=sha256:bb  # a comment\n")
    assert builds.read_lock(plain) == builds.read_lock(locked) == ["six==1.17.0", "idna==3.10"]
    assert builds.hashed(locked) and not builds.hashed(plain)
    assert builds.python_image_ref("r", builds.read_lock(plain), {}) == builds.python_image_ref("r", builds.read_lock(locked), {})
    ran = []
    monkeypatch.setenv("APPLIANCE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(builds, "_run", lambda cmd, **kw: ran.append(cmd))
    builds.wheels(builds.read_lock(locked), "k1", lock=locked)
    assert ran[-1][-4:] == ["--no-deps", "--require-hashes", "-r", str(locked)]
    builds.wheels(builds.read_lock(plain), "k2", lock=plain)
    assert "--require-hashes" not in ran[-1] and ran[-1][-2:] == ["six==1.17.0", "idna==3.10"]


def test_an_image_of_another_suite_gets_its_pythons_wheels_and_leaves_bookworms_caches_alone(tmp_path, monkeypatch):
    """trixie's python3 (3.13): wheels fetched for cp313 into a folder of their own, its stdlib's unused parts
    dropped, no bytecode made by our 3.11; bookworm's wheel folders keep the names they had."""
    import hashlib

    trixie = builds.PYTHONS["trixie"]
    reqs = ["six==1.17.0", "idna==3.10"]
    assert builds.wheels_key(reqs) == hashlib.sha256(b"idna==3.10\nsix==1.17.0").hexdigest()[:16]
    assert builds.wheels_key(reqs, trixie) != builds.wheels_key(reqs)
    assert builds.python_image_ref("r", reqs, {}, py=trixie) != builds.python_image_ref("r", reqs, {})
    ran = []
    monkeypatch.setenv("APPLIANCE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(builds, "_run", lambda cmd, **kw: ran.append(cmd))
    builds.wheels(reqs, builds.wheels_key(reqs, trixie), py=trixie)
    assert ran[-1][ran[-1].index("--python-version") + 1] == "313" and "cp313" in ran[-1]
    rootfs = tmp_path / "rootfs.tar"
    with tarfile.open(rootfs, "w") as t:
        for name in ("./usr/lib/python3.13/mod.py", "./usr/lib/python3.13/test/test_mod.py", "./usr/share/doc/x"):
            t.addfile(tarfile.TarInfo(name), io.BytesIO(b""))
    builds.slim_rootfs(rootfs, tmp_path / "slim.tar", trixie)
    with tarfile.open(tmp_path / "slim.tar") as t:
        assert [m.name.lstrip("./") for m in t if m.isreg()] == ["usr/lib/python3.13/mod.py"]


def test_every_image_lock_pins_each_wheel_by_hash():
    """What an image installs is exactly what was locked (tools/lock_hashes.py writes the hashes)."""
    from appliance.images import builds

    locks = sorted(Path(__file__).resolve().parents[2].glob("images/*/requirements.lock"))
    assert locks
    unhashed = [str(p) for p in locks if builds.read_lock(p) and not builds.hashed(p)]
    assert not unhashed, "run: .venv/bin/python tools/lock_hashes.py " + " ".join(unhashed)


@pytest.mark.skipif(not builds.PY.compiles, reason="our Python is not the images' (3.11)")
def test_a_python_images_modules_are_compiled_once_at_build_and_read_as_they_are(tmp_path):
    """The rootfs layer's stdlib modules and the wheels' get checked-hash bytecode, the same bytes each build;
    Python loads it (read-only file systems: nothing compiled is kept at run time) and takes the source
    again where it changed."""
    import subprocess
    import sys
    import zipfile

    rootfs = tmp_path / "rootfs.tar"
    with tarfile.open(rootfs, "w") as t:
        for name, data in (("./usr/lib/python3.11/mod.py", b"X = 1\n"), ("./usr/lib/python3.11/__pycache__/mod.cpython-311.pyc", b"stale"),
                           ("./usr/lib/python3.11/broken.py", b"def (:\n"), ("./etc/notes.py", b"Y = 2\n")):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    builds.slim_rootfs(rootfs, tmp_path / "a.tar")
    builds.slim_rootfs(rootfs, tmp_path / "b.tar")
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    with tarfile.open(tmp_path / "a.tar") as t:
        files = {m.name.lstrip("./"): t.extractfile(m).read() for m in t if m.isreg()}
    pyc = "usr/lib/python3.11/__pycache__/mod.cpython-311.pyc"
    assert set(files) == {"usr/lib/python3.11/mod.py", "usr/lib/python3.11/broken.py", "etc/notes.py", pyc}  # stale one replaced
    assert files[pyc] != b"stale" and files["etc/notes.py"] == b"Y = 2\n"
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / "pkg-1-py3-none-any.whl", "w") as z:
        z.writestr("pkg/__init__.py", "from pkg.inner import Z\n")
        z.writestr("pkg/inner.py", "Z = 3\n")
    builds.wheel_layer(wheels, tmp_path / "w.tar", site="site")
    with tarfile.open(tmp_path / "w.tar") as t:
        t.extractall(tmp_path / "image", filter="data")
    assert sorted(p.name for p in (tmp_path / "image/site/pkg/__pycache__").iterdir()) == ["__init__.cpython-311.pyc", "inner.cpython-311.pyc"]

    def imported(*extra: str) -> str:
        r = subprocess.run([sys.executable, "-v", "-c", "import pkg; print(pkg.Z)"], capture_output=True, text=True, timeout=60,
                           env={"PYTHONPATH": str(tmp_path / "image/site"), "PYTHONDONTWRITEBYTECODE": "1"})
        assert r.returncode == 0 and r.stdout.strip() == "3", r.stderr[-2000:]
        return r.stderr

    log = imported()
    assert f"code object from '{tmp_path}/image/site/pkg/__pycache__/inner.cpython-311.pyc'" in log, log[-3000:]
    (tmp_path / "image/site/pkg/inner.py").write_text("Z = 3  # changed\n")
    log = imported()  # the source changed: the hash is checked, the source compiled
    assert f"code object from {tmp_path}/image/site/pkg/inner.py" in log and "inner.cpython-311.pyc'" not in log, log[-3000:]
