"""Backups: sealed credentials, the manifest's checks, what of an object is kept, one user's part of a volume."""

import io
import json
import tarfile

import pytest

from appliance import backup as backups
from appliance.backup import archive, sealing, volumes
from appliance.errors import UserError
from appliance.util.files import sha256_file


def test_credentials_are_sealed_and_only_the_right_key_opens_them():
    blob = sealing.seal(b'{"postgres": "s3cret"}', b"a long passphrase, 32 bytes ...")
    assert b"s3cret" not in blob
    assert sealing.unseal(blob, b"a long passphrase, 32 bytes ...", "f") == b'{"postgres": "s3cret"}'
    with pytest.raises(UserError, match="the key does not open"):
        sealing.unseal(blob, b"another long passphrase .......", "f")
    with pytest.raises(UserError, match="the key does not open"):
        sealing.unseal(blob[:-1] + bytes([blob[-1] ^ 1]), b"a long passphrase, 32 bytes ...", "f")  # altered


def test_a_short_or_missing_key_file_is_one_line(tmp_path):
    (tmp_path / "k").write_text("short")
    with pytest.raises(UserError, match="fewer than 16 bytes"):
        sealing.key(tmp_path / "k")
    with pytest.raises(UserError, match="cannot read the key file"):
        sealing.key(tmp_path / "none")
    assert sealing.key(None) is None


def _folder(tmp_path, files: dict[str, bytes]):
    root = tmp_path / "b"
    rows = []
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
        rows.append({"name": name, "kind": "resources", "user": "alice", "size": len(data), "sha256": sha256_file(root / name)})
    (root / backups.MANIFEST).write_text(json.dumps({"format": backups.FORMAT, "files": rows}))
    return root


def test_verify_names_the_corrupted_missing_or_outside_file(tmp_path):
    root = _folder(tmp_path, {"resources/user-alice/a.json": b"[1]", "volumes/user-alice/home-alice.tar": b"x" * 100})
    assert len(backups.verify(root)["files"]) == 2
    (root / "volumes/user-alice/home-alice.tar").write_bytes(b"y" * 100)
    with pytest.raises(UserError) as e:
        backups.verify(root)
    assert "does not match its size and sha256" in e.value.line() and "home-alice.tar" in e.value.where and e.value.code == 2
    (root / "volumes/user-alice/home-alice.tar").unlink()
    with pytest.raises(UserError, match="a file of the backup is missing"):
        backups.verify(root)
    m = json.loads((root / backups.MANIFEST).read_text())
    m["files"] = [{**m["files"][0], "name": "../../etc/passwd"}]
    (root / backups.MANIFEST).write_text(json.dumps(m))
    with pytest.raises(UserError, match="outside the backup"):
        backups.verify(root)
    with pytest.raises(UserError, match="not a backup"):
        backups.verify(tmp_path / "nothing")


def test_a_backup_as_one_file_reads_back_as_its_folder_and_names_a_bad_member_in_it(tmp_path):
    files = {"resources/user-alice/a.json": b"[1]", "volumes/user-alice/home-alice.tar": b"x" * 100_000}
    src = _folder(tmp_path, files)
    out = tmp_path / "b.tar.zst"
    assert archive.is_archive(out) and not archive.is_archive(src)
    with archive.sink(out) as sink:
        w = backups._Writer(src, sink)
        for name in files:
            w.add(name, "resources")  # hashed, then moved into the archive
        sink.put(src / backups.MANIFEST, backups.MANIFEST)
    assert out.stat().st_size < 10_000 and not (src / "volumes/user-alice/home-alice.tar").exists()
    with archive.unpacked(out, tmp_path / "scratch") as folder:
        assert [r["name"] for r in backups.verify(folder, out)["files"]] == list(files)
        assert (folder / "volumes/user-alice/home-alice.tar").read_bytes() == b"x" * 100_000
    assert list((tmp_path / "scratch").iterdir()) == []  # unpacked copy gone
    cut = tmp_path / "cut.tar.zst"
    cut.write_bytes(out.read_bytes()[: out.stat().st_size // 2])
    with pytest.raises(UserError, match="truncated or corrupted") as e, archive.unpacked(cut, tmp_path / "scratch"):
        pass
    assert e.value.where == str(cut)
    (plain := tmp_path / "plain.tar.zst").write_bytes(b"not compressed")
    with pytest.raises(UserError, match="not zstd-compressed"), archive.unpacked(plain, tmp_path / "scratch"):
        pass


def test_an_archive_member_that_is_a_link_or_leaves_the_folder_is_refused(tmp_path):
    import io
    import tarfile

    import zstandard

    for name, kind in (("../escape", tarfile.REGTYPE), ("volumes/link", tarfile.SYMTYPE)):
        bad = tmp_path / "bad.tar.zst"
        with open(bad, "wb") as fh, zstandard.ZstdCompressor().stream_writer(fh) as z, tarfile.open(fileobj=z, mode="w|") as tar:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, "/etc/passwd"
            tar.addfile(info, io.BytesIO(b""))
        with pytest.raises(UserError, match="no file of a backup"), archive.unpacked(bad, tmp_path / "scratch"):
            pass
    assert not (tmp_path / "escape").exists()


def test_an_object_is_kept_as_it_can_be_made_again_its_status_only_where_it_is_a_record():
    live = {"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment",
            "metadata": {"name": "e", "namespace": "user-alice", "uid": "u1", "resourceVersion": "9", "generation": 2,
                         "creationTimestamp": "t", "managedFields": [{}], "labels": {"a": "b"},
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "note": "kept"}},
            "spec": {"maxTrialCount": 2}, "status": {"conditions": [{"type": "Succeeded"}]}}
    rec = backups._clean(live, record=True)
    assert rec["metadata"] == {"name": "e", "namespace": "user-alice", "labels": {"a": "b"}, "annotations": {"note": "kept"}}
    assert rec["status"] == live["status"] and rec["spec"] == live["spec"]
    assert "status" not in backups._clean(live, record=False)  # e.g. a server: its controller makes the status anew


def test_one_users_part_of_a_volume_is_only_their_paths(tmp_path):
    path = tmp_path / "store.tar"
    with tarfile.open(path, "w") as t:
        for name in ("./buckets/user-alice/run/out.txt", "./buckets/user-bob/secret.txt", "./meta/user-alice/run/out.txt",
                     "./buckets/user-alice2/x"):
            data = name.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    with volumes.part(path, ["./buckets/user-alice", "./meta/user-alice"]) as f:
        names = tarfile.open(fileobj=f).getnames()
    assert names == ["./buckets/user-alice/run/out.txt", "./meta/user-alice/run/out.txt"]
    with volumes.part(path, ["."]) as f:
        assert len(tarfile.open(fileobj=f).getnames()) == 4


def test_a_simulator_cluster_is_refused_in_one_line(tmp_path, monkeypatch):
    from tests.unit.test_data_safety import _cluster

    name = _cluster(tmp_path, monkeypatch, {"platform-base": "done"})
    with pytest.raises(UserError) as e:
        backups.Target(name)
    assert "the simulator runs none" in e.value.line() and e.value.code == 2
