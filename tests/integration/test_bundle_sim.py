"""Offline sites on the simulator: the `ci` profile bundled here, then, with an empty HOME inside a network namespace
holding only loopback (no connection out is possible), `appliance up --bundle` brings the cluster and stack to ready
and a scenario passes; a bundle made for another provider, a truncated one and an altered one are each refused in
one line with nothing unpacked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]
APPLIANCE = str(Path(sys.executable).with_name("appliance"))
#: bring loopback up in the new namespace (nothing else is there), then run the script
NETNS = ("import fcntl, socket, struct, subprocess, sys\n"
         "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
         "flags = struct.unpack('16sH', fcntl.ioctl(s, 0x8913, struct.pack('16sH', b'lo', 0))[:18])[1]\n"
         "fcntl.ioctl(s, 0x8914, struct.pack('16sH', b'lo', flags | 1))\n"
         "sys.exit(subprocess.run(['bash', '-c', sys.argv[1]]).returncode)\n")


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """(the ci profile's simulator bundle, signed by a site key made here, its `create --json` output)."""
    folder = tmp_path_factory.mktemp("bundle")
    out = folder / "ci-sim.bundle"
    subprocess.run([APPLIANCE, "bundle", "keygen", "-o", str(folder / "site.key")], check=True, capture_output=True, timeout=60)
    r = subprocess.run([APPLIANCE, "bundle", "create", "--profile", "ci", "--provider", "sim", "-o", str(out), "--sign", str(folder / "site.key"),
                        "--json"], capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    return out, json.loads(r.stdout)


def _fresh_home(tmp_path: Path, trust: Path | None = None) -> dict[str, str]:
    """The environment of a machine that never ran the appliance: an empty HOME, no cache or state overrides;
    `trust`: a public key it trusts."""
    home = tmp_path / "home"
    home.mkdir()
    if trust is not None:
        (home / ".config" / "appliance" / "trusted-keys").mkdir(parents=True)
        (home / ".config" / "appliance" / "trusted-keys" / trust.name).write_text(trust.read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APPLIANCE_", "XDG_"))}
    return {**env, "HOME": str(home)}


def _offline(script: str, env: dict[str, str], timeout: int) -> subprocess.CompletedProcess:
    """Run a bash script in a new network namespace that has only loopback."""
    return subprocess.run(["unshare", "--net", sys.executable, "-c", NETNS, script], env=env, capture_output=True, text=True, timeout=timeout)


def test_the_bundle_holds_what_the_simulator_runs(made):
    path, out = made
    assert set(out["summary"]) == {"toolchain", "go programs", "CRDs"}, out["summary"]
    r = subprocess.run([APPLIANCE, "bundle", "verify", str(path), "--trust", str(path.with_name("site.key.pub")), "--json"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and json.loads(r.stdout)["ok"] and json.loads(r.stdout)["signed_by"], r.stderr


def test_a_bundle_signed_by_a_key_the_site_does_not_trust_is_refused_before_anything_is_unpacked(made, tmp_path):
    path, _ = made
    subprocess.run([APPLIANCE, "bundle", "keygen", "-o", str(tmp_path / "other.key")], check=True, capture_output=True, timeout=60)
    env = _fresh_home(tmp_path, trust=tmp_path / "other.key.pub")
    r = subprocess.run([APPLIANCE, "up", "--profile", "ci", "--provider", "sim", "--bundle", str(path)], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "which is not trusted here" in r.stderr.strip().splitlines()[-1], r.stderr[-2000:]
    assert not Path(env["HOME"], ".cache", "appliance").exists()


def test_up_from_the_bundle_with_no_network_and_an_empty_home(made, tmp_path):
    path, _ = made
    env = _fresh_home(tmp_path, trust=path.with_name("site.key.pub"))  # the site trusts the key it was signed with
    script = (f"set -e; {APPLIANCE} up --profile ci --provider sim --bundle {path} --json > {tmp_path}/up.json; "
              f"{APPLIANCE} e2e --provider sim --profile ci --scenario user-isolation --scenario pipeline-admission --out {tmp_path}/e2e")
    try:
        r = _offline(script, env, 1200)
        assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
        up = json.loads((tmp_path / "up.json").read_text())
        assert not up["failed"] and "queues" in up["ran"] and "tuning" in up["ran"], up
        assert "PASS user-isolation" in r.stdout and "PASS pipeline-admission" in r.stdout, r.stdout
        assert "first run" not in r.stderr  # nothing left to build: the e2e run's `up` found it all
        cache = Path(env["HOME"], ".cache", "appliance")
        assert (cache / "components" / "go").is_dir() and not list(cache.glob(".bundle-*"))
        assert not (cache / "toolchain" / "go").exists()  # nothing was built: no Go cache was ever made
    finally:
        subprocess.run([APPLIANCE, "down", "--profile", "ci", "--yes"], env=env, capture_output=True, timeout=300)


def test_a_bundle_for_another_provider_is_refused(made, tmp_path):
    path, _ = made
    env = _fresh_home(tmp_path)
    r = subprocess.run([APPLIANCE, "up", "--profile", "ci", "--provider", "kind", "--bundle", str(path)], env=env,
                       capture_output=True, text=True, timeout=120)
    last = r.stderr.strip().splitlines()[-1]
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert last.startswith("error: ") and "the bundle was made for provider 'sim', this run's is 'kind'" in last, r.stderr
    assert not Path(env["HOME"], ".cache").exists()


def _without(src: Path, dest: Path, entry_part: str) -> str:
    """A copy of the bundle lacking the first entry whose path has `entry_part` (manifest and files); its path."""
    import io
    import tarfile

    import zstandard

    with open(src, "rb") as fh, zstandard.ZstdDecompressor().stream_reader(fh) as z, tarfile.open(fileobj=z, mode="r|") as tin, \
            open(dest, "wb") as out, zstandard.ZstdCompressor(threads=-1).stream_writer(out) as zw, \
            tarfile.open(fileobj=zw, mode="w|", format=tarfile.PAX_FORMAT) as tout:
        first = tin.next()
        manifest = json.loads(tin.extractfile(first).read())
        gone = next(f["entry"] for f in manifest["files"] if entry_part in f["entry"])
        manifest["files"] = [f for f in manifest["files"] if f["entry"] != gone]
        data = json.dumps(manifest).encode()
        first.size = len(data)
        tout.addfile(first, io.BytesIO(data))
        while (m := tin.next()) is not None:
            if not m.name.startswith(f"cache/{gone}"):
                tout.addfile(m, tin.extractfile(m))
    return gone


def test_a_program_missing_from_the_bundle_is_named_before_anything_is_created(made, tmp_path):
    path, _ = made
    env = _fresh_home(tmp_path)
    gone = _without(path, tmp_path / "less.bundle", "components/go/sigs.k8s.io_kueue")
    r = _offline(f"{APPLIANCE} up --profile ci --provider sim --bundle {tmp_path / 'less.bundle'}", env, 600)
    last = r.stderr.strip().splitlines()[-1]
    assert r.returncode == 2 and last.startswith("error: bundle: ") and "kueue" in last and "not in the bundle" in last, r.stderr[-2000:]
    assert gone.startswith("components/go/sigs.k8s.io_kueue")
    assert not Path(env["HOME"], ".local", "state", "appliance", "appliance-ci", "state.json").exists()  # no cluster was begun


def test_a_truncated_or_altered_bundle_is_named_and_nothing_is_unpacked(made, tmp_path):
    path, _ = made
    env = _fresh_home(tmp_path)
    data = path.read_bytes()
    cut = tmp_path / "cut.bundle"
    cut.write_bytes(data[: len(data) // 2])
    flipped = tmp_path / "flipped.bundle"
    flipped.write_bytes(data[: len(data) // 3] + bytes([data[len(data) // 3] ^ 0xFF]) + data[len(data) // 3 + 1:])
    for bad in (cut, flipped):
        v = subprocess.run([APPLIANCE, "bundle", "verify", str(bad)], env=env, capture_output=True, text=True, timeout=600)
        assert v.returncode == 2 and str(bad) in v.stderr and ("truncated" in v.stderr or "corrupted" in v.stderr), v.stderr
        r = _offline(f"{APPLIANCE} up --profile ci --provider sim --bundle {bad}", env, 600)
        assert r.returncode == 2 and "Traceback" not in r.stderr and str(bad) in r.stderr.splitlines()[-1], r.stderr[-2000:]
        cache = Path(env["HOME"], ".cache", "appliance")
        left = [p for p in cache.rglob("*") if p.is_file()] if cache.exists() else []
        assert not left, left
        assert not Path(env["HOME"], ".local", "state", "appliance", "appliance-ci", "kubeconfig").exists()
