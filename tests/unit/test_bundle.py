"""Bundles on a small cache of their own: what is carried, the manifest, verify naming a truncated or altered file,
unpack placing whole entries only (nothing left behind on failure), the room check, and the offline refusals."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
import zstandard

from appliance import paths
from appliance.errors import UserError
from appliance.images import bundle
from appliance.util import offline

SET = "k8s-v1.31.4-build"


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A cache with an entry of each carried kind, plus what a bundle leaves out (Go's caches, locks)."""
    root = tmp_path / "cache"
    monkeypatch.setenv("APPLIANCE_CACHE", str(root))
    files = {
        f"toolchain/{SET}/bin/etcd": b"etcd-binary" * 100,
        f"toolchain/{SET}/bin/kubelet": b"not used by this profile",
        f"toolchain/{SET}/manifest.json": json.dumps({"tools": {"etcd": {"sha256": "x"}, "kubelet": {"sha256": "y"}}}).encode(),
        "toolchain/go/mod/cache/download/x.zip": b"go module source",
        "components/go/example.com_ctl/v1.0.0/ctl": b"\x7fELF controller",
        "components/go/example.com_ctl/v1.0.0/ctl.json": b"{}",
        "components/images/ctl/abc123/image.tar": b"image layers" * 1000,
        "images/locks/node-1.lock": b"",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    (root / f"toolchain/{SET}/bin/etcd").chmod(0o755)
    return root


def _use(root: Path) -> dict[str, set]:
    """Record the uses a prebuild would make (cache_dir calls and a toolchain binary's explicit note)."""
    with paths.recording() as used:
        paths.cache_dir("toolchain", SET)
        paths.note("paths", root / "toolchain" / SET / "bin" / "etcd")
        paths.cache_dir("toolchain", "go", "mod")
        paths.cache_dir("components", "go", "example.com_ctl", "v1.0.0") / "ctl"
        paths.cache_dir("components", "images", "ctl", "abc123")
        paths.cache_dir("images", "locks", "node-1.lock")
        paths.cache_dir("components", "images", "gone", "none")  # recorded, never built: left out
    return used


def _make(root: Path, out: Path) -> dict:
    meta = {"appliance": "0.1.0", "profile": "ci", "provider": "sim", "arch": "amd64", "pins": {"kubernetes": "v1.31.4", "go": [], "images": []}}
    return bundle.create(out, _use(root), meta, lambda m: None)


def test_carries_the_entries_used_and_nothing_else(cache, tmp_path):
    m = _make(cache, tmp_path / "b.bundle")
    names = sorted(f["name"] for f in m["files"])
    assert names == ["cache/components/go/example.com_ctl/v1.0.0/ctl", "cache/components/go/example.com_ctl/v1.0.0/ctl.json",
                     "cache/components/images/ctl/abc123/image.tar", f"cache/toolchain/{SET}/bin/etcd", f"cache/toolchain/{SET}/manifest.json"]
    etcd = next(f for f in m["files"] if f["name"].endswith("etcd"))
    assert etcd["size"] == 1100 and etcd["mode"] == 0o755 and etcd["kind"] == "toolchain"
    assert m["summary"]["component images"] == {"files": 1, "bytes": 12000}
    assert bundle.read_manifest(tmp_path / "b.bundle")["profile"] == "ci"
    assert bundle.verify(tmp_path / "b.bundle")["files"] == m["files"]


def test_a_truncated_bundle_is_named(cache, tmp_path):
    _make(cache, tmp_path / "b.bundle")
    data = (tmp_path / "b.bundle").read_bytes()
    (tmp_path / "t.bundle").write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(UserError) as e:
        bundle.verify(tmp_path / "t.bundle")
    assert str(tmp_path / "t.bundle") in e.value.line() and "truncated" in e.value.line() and e.value.code == 2


def _rewrite(src: Path, dest: Path, change) -> None:
    """Decompress, let `change(name, data)` return new bytes per member, compress again."""
    out = io.BytesIO()
    with open(src, "rb") as fh, zstandard.ZstdDecompressor().stream_reader(fh) as z, tarfile.open(fileobj=z, mode="r|") as tin, \
            tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tout:
        for m in tin:
            data = change(m.name, tin.extractfile(m).read())
            m.size = len(data)
            tout.addfile(m, io.BytesIO(data))
    dest.write_bytes(zstandard.ZstdCompressor().compress(out.getvalue()))


def test_an_altered_file_is_named(cache, tmp_path):
    _make(cache, tmp_path / "b.bundle")
    _rewrite(tmp_path / "b.bundle", tmp_path / "a.bundle",
             lambda name, data: data.replace(b"controller", b"CONTROLLER") if name.endswith("/ctl") else data)
    with pytest.raises(UserError) as e:
        bundle.verify(tmp_path / "a.bundle")
    assert "cache/components/go/example.com_ctl/v1.0.0/ctl does not match its sha256" in e.value.line()


def test_not_a_bundle(tmp_path):
    (tmp_path / "x.bundle").write_text("hello")
    with pytest.raises(UserError) as e:
        bundle.read_manifest(tmp_path / "x.bundle")
    assert "not an appliance bundle" in e.value.line()
    with pytest.raises(UserError) as e:
        bundle.read_manifest(tmp_path / "missing.bundle")
    assert "no such bundle file" in e.value.line()


def test_unpack_fills_an_empty_cache_and_merges_the_toolchain_manifest(cache, tmp_path, monkeypatch):
    m = _make(cache, tmp_path / "b.bundle")
    fresh = tmp_path / "fresh"
    (fresh / "toolchain" / SET).mkdir(parents=True)
    (fresh / "toolchain" / SET / "manifest.json").write_text(json.dumps({"tools": {"kwok": {"sha256": "z"}}}))
    monkeypatch.setenv("APPLIANCE_CACHE", str(fresh))
    todo = bundle.needed(m, fresh)
    assert len(todo) == 4
    got = bundle.unpack(tmp_path / "b.bundle", todo, lambda _: None)
    assert got["files"] == 5
    assert (fresh / "components/images/ctl/abc123/image.tar").read_bytes() == (cache / "components/images/ctl/abc123/image.tar").read_bytes()
    assert (fresh / f"toolchain/{SET}/bin/etcd").stat().st_mode & 0o777 == 0o755
    assert sorted(json.loads((fresh / f"toolchain/{SET}/manifest.json").read_text())["tools"]) == ["etcd", "kubelet", "kwok"]
    assert not list(fresh.glob(".bundle-*"))
    assert bundle.needed(m, fresh) == {f"toolchain/{SET}/manifest.json"}  # the rest is there now


def test_a_failed_unpack_leaves_nothing_behind(cache, tmp_path, monkeypatch):
    m = _make(cache, tmp_path / "b.bundle")
    _rewrite(tmp_path / "b.bundle", tmp_path / "a.bundle",
             lambda name, data: data[:-1] + b"!" if name.endswith("image.tar") else data)
    fresh = tmp_path / "fresh"
    monkeypatch.setenv("APPLIANCE_CACHE", str(fresh))
    with pytest.raises(UserError, match="image.tar does not match"):
        bundle.unpack(tmp_path / "a.bundle", bundle.needed(m, fresh), lambda _: None)
    assert not fresh.exists() or not [p for p in fresh.rglob("*") if p.is_file()]


def test_room_is_checked_before_unpacking(cache, tmp_path, monkeypatch):
    m = _make(cache, tmp_path / "b.bundle")
    fresh = tmp_path / "fresh"
    monkeypatch.setattr(bundle.shutil, "disk_usage", lambda p: type("U", (), {"free": 5000})())
    with pytest.raises(UserError) as e:
        bundle.check_room(m, bundle.needed(m, fresh), fresh)
    assert "needs 0.0 GiB" in e.value.line() and "free some space" in e.value.line()


def test_offline_refuses_what_needs_the_network(tmp_path, monkeypatch):
    from appliance.images import builds

    monkeypatch.setenv("APPLIANCE_CACHE", str(tmp_path))
    offline.refuse("nothing")  # not offline: no-op
    with offline.enabled():
        with pytest.raises(UserError) as e:
            builds.go_binary("example.com/ctl", "v1.0.0", "", "ctl")
        assert "ctl (example.com/ctl v1.0.0) is not in the bundle" in e.value.line()
        with pytest.raises(UserError, match="wheels of k1"):
            builds.wheels(["x==1"], "k1")
    assert not offline.active()


@pytest.mark.parametrize("evil", ["cache/../../outside", "cache/components/go/../../../outside", "/etc/outside",
                                  "cache/images/locks/x.lock"])
def test_a_bundle_naming_a_path_outside_the_cache_entries_is_refused(cache, tmp_path, monkeypatch, evil):
    m = _make(cache, tmp_path / "b.bundle")

    def change(name, data):
        if name == bundle.MANIFEST:
            doc = json.loads(data)
            doc["files"][0]["name"], doc["files"][0]["entry"] = evil, evil.removeprefix("cache/")
            return json.dumps(doc).encode()
        return data

    _rewrite(tmp_path / "b.bundle", tmp_path / "evil.bundle", change)
    fresh = tmp_path / "fresh"
    monkeypatch.setenv("APPLIANCE_CACHE", str(fresh))
    with pytest.raises(UserError, match="outside the cache entries a bundle may fill"):
        bundle.unpack(tmp_path / "evil.bundle", bundle.needed(m, fresh), lambda _: None)
    assert not (tmp_path / "outside").exists() and not fresh.exists()


def test_a_signed_manifest_is_checked_against_the_trusted_keys(tmp_path, monkeypatch):
    from appliance.images import signing

    monkeypatch.setenv("APPLIANCE_CONFIG", str(tmp_path / "config"))
    key, pub, name = signing.keygen(tmp_path / "site.key")
    assert oct(key.stat().st_mode & 0o777) == "0o600" and pub.name == "site.key.pub"
    other, other_pub, _ = signing.keygen(tmp_path / "other.key")
    m = {"format": 1, "files": [{"name": "cache/x", "sha256": "ab" * 32, "size": 1}]}
    signed = signing.sign(m, key)
    assert signed["signature"]["key"] == name
    assert signing.check(m, signing.trusted(), "b") is None  # nothing trusted: taken, unchecked (the caller warns)
    assert signing.check(signing.sign(m, other), signing.trusted(), "b") is None
    assert signing.check(signed, signing.trusted((pub,)), "b") == name
    (tmp_path / "config" / "trusted-keys").mkdir(parents=True)
    (tmp_path / "config" / "trusted-keys" / "site.pub").write_text(pub.read_text())
    assert signing.check(signed, signing.trusted(), "b") == name
    refused = {
        "not signed": m,
        "which is not trusted here": signing.sign(m, other),
        "does not match its manifest (forged or altered)": {**signed, "files": [{**signed["files"][0], "sha256": "cd" * 32}]},
    }
    for why, manifest in refused.items():
        with pytest.raises(UserError) as e:
            signing.check(manifest, signing.trusted(), "the.bundle")
        assert why in e.value.line() and e.value.where == "the.bundle" and e.value.code == 2
    with pytest.raises(UserError, match="the key file exists"):
        signing.keygen(tmp_path / "site.key")
    with pytest.raises(UserError, match="not an Ed25519 public key"):
        (tmp_path / "bad.pub").write_text("aGVsbG8=\n")
        signing.trusted((tmp_path / "bad.pub",))


def test_an_image_archive_naming_another_tag_is_refused_and_that_tag_removed(monkeypatch, tmp_path):
    import subprocess
    import types

    removed = []

    class Load:
        def __init__(self, out: str):
            self.stdin, self.stdout, self.stderr = io.BytesIO(), io.BytesIO(out.encode()), io.BytesIO()

        def wait(self):
            return 0

    reader = types.SimpleNamespace(path=tmp_path / "b.bundle", copy=lambda row, src, dest, bar: None)
    row = {"name": "docker/node.tar", "entry": "docker:appliance.local/node:v1"}
    monkeypatch.setattr(subprocess, "run", lambda argv, **kw: removed.append(argv[-1]))
    monkeypatch.setattr(bundle, "_docker", lambda *a, **kw: Load("Loaded image: appliance.local/node:v1\n"))
    bundle._load(reader, row, io.BytesIO(), None)
    assert removed == []
    monkeypatch.setattr(bundle, "_docker", lambda *a, **kw: Load("Loaded image: appliance.local/node:v1\nLoaded image: registry.k8s.io/pause:3.10\n"))
    with pytest.raises(UserError) as e:
        bundle._load(reader, row, io.BytesIO(), None)
    assert "carries image tags besides appliance.local/node:v1: registry.k8s.io/pause:3.10" in e.value.line()
    assert removed == ["registry.k8s.io/pause:3.10"]
