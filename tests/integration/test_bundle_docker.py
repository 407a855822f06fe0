"""A bundle carries images the Docker daemon holds (kind's node image) as `docker save`, and unpacking loads them
back: here a tiny image made for the test, removed from the daemon between pack and unpack, comes back with the
same id; a bundle whose image bytes were altered loads nothing."""

import io
import json
import subprocess
import tarfile

import pytest

from appliance import paths
from appliance.errors import UserError
from appliance.images import bundle
from tests.integration.clusters import require_kind

pytestmark = [pytest.mark.integration, pytest.mark.docker]
TAG = "appliance.local/bundle-test:v1"


def _image_id(tag: str) -> str:
    r = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", tag], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else ""


@pytest.fixture
def image():
    """A one-file image imported from a tar (no registry), removed after."""
    require_kind()  # a Docker daemon
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as t:
        data = b"made for the bundle test\n"
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    subprocess.run(["docker", "import", "-", TAG], input=layer.getvalue(), check=True, capture_output=True)
    yield _image_id(TAG)
    subprocess.run(["docker", "rmi", "-f", TAG], capture_output=True)


def test_an_image_of_the_daemon_goes_through_a_bundle(image, tmp_path, monkeypatch):
    monkeypatch.setenv("APPLIANCE_CACHE", str(tmp_path / "cache"))
    with paths.recording() as used:
        paths.note("docker", TAG)
    meta = {"appliance": "test", "profile": "ci", "provider": "kind", "arch": "amd64", "pins": {"kubernetes": "v1.31.4"}}
    m = bundle.create(tmp_path / "b.bundle", used, meta, lambda _: None)
    (row,) = m["files"]
    assert row["entry"] == f"docker:{TAG}" and row["kind"] == "node image" and row["size"] > 0
    subprocess.run(["docker", "rmi", TAG], check=True, capture_output=True)
    todo = bundle.needed(m, paths.cache_dir())
    assert todo == {f"docker:{TAG}"}
    assert bundle.unpack(tmp_path / "b.bundle", todo, lambda _: None)["files"] == 1
    assert _image_id(TAG) == image
    assert bundle.needed(m, paths.cache_dir()) == set()
    assert json.loads(json.dumps(bundle.read_manifest(tmp_path / "b.bundle")))["files"] == m["files"]


def test_altered_image_bytes_load_nothing(image, tmp_path, monkeypatch):
    import zstandard

    monkeypatch.setenv("APPLIANCE_CACHE", str(tmp_path / "cache"))
    with paths.recording() as used:
        paths.note("docker", TAG)
    m = bundle.create(tmp_path / "b.bundle", used, {"pins": {}}, lambda _: None)
    raw = zstandard.ZstdDecompressor().stream_reader(open(tmp_path / "b.bundle", "rb")).read()
    at = raw.index(b"made for the bundle test")
    (tmp_path / "bad.bundle").write_bytes(zstandard.ZstdCompressor().compress(raw[:at] + b"M" + raw[at + 1:]))
    subprocess.run(["docker", "rmi", TAG], check=True, capture_output=True)
    with pytest.raises(UserError, match="does not match its sha256"):
        bundle.unpack(tmp_path / "bad.bundle", bundle.needed(m, paths.cache_dir()), lambda _: None)
    assert _image_id(TAG) == ""  # loaded, found altered, removed
