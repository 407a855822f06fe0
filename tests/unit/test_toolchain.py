"""Toolchain: wrapper go.mod generation, cache manifest, corruption detection, source fallback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appliance.errors import UserError
from appliance.toolchain import TOOLS, Toolchain
from appliance.toolchain.pins import staging_version
from appliance.toolchain.sources import (
    GoBuildSource,
    ReleaseSource,
    Source,
    SourceError,
    kubernetes_wrapper_gomod,
    parse_checksum,
    staging_modules,
    wrapper_gomod,
)

K8S_GOMOD = """module k8s.io/kubernetes

go 1.22.0

require (
\tk8s.io/api v0.0.0
\tk8s.io/client-go v0.0.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tk8s.io/kms => ./staging/src/k8s.io/kms
)
"""


def test_staging_version():
    assert staging_version("v1.31.4") == "v0.31.4"
    assert staging_version("v1.30.10") == "v0.30.10"


def test_staging_modules_parsed_from_kubernetes_gomod():
    assert staging_modules(K8S_GOMOD) == ["k8s.io/api", "k8s.io/client-go", "k8s.io/kms"]


def test_kubernetes_wrapper_gomod_pins_every_staging_module():
    text = kubernetes_wrapper_gomod("v1.31.4", staging_modules(K8S_GOMOD))
    assert "\tk8s.io/kubernetes v1.31.4\n" in text
    for m in ("api", "client-go", "kms"):
        assert f"\tk8s.io/{m} => k8s.io/{m} v0.31.4\n" in text
    assert text.startswith("module appliance.local/toolchain/kubernetes\n")


def test_kubernetes_wrapper_gomod_fallback_list_covers_core_staging():
    text = kubernetes_wrapper_gomod("v1.31.4")
    for m in ("api", "apimachinery", "apiserver", "client-go", "kubectl", "kubelet", "cri-client", "endpointslice"):
        assert f"k8s.io/{m} => k8s.io/{m} v0.31.4" in text


def test_wrapper_gomod_without_replaces():
    text = wrapper_gomod("x/y", {"sigs.k8s.io/kwok": "v0.6.1"})
    assert "replace" not in text and "\tsigs.k8s.io/kwok v0.6.1\n" in text


def test_parse_checksum_forms():
    h = "a" * 64
    assert parse_checksum(h + "\n", "kube-apiserver") == h
    assert parse_checksum(f"{'b' * 64}  other.tgz\n{h}  etcd-v3.5.17-linux-amd64.tar.gz\n", "etcd-v3.5.17-linux-amd64.tar.gz") == h
    assert parse_checksum(f"{h} *kind-linux-amd64\n", "kind-linux-amd64") == h
    with pytest.raises(SourceError):
        parse_checksum(f"{'b' * 64}  other\n{'c' * 64}  other2\n", "mine")


def test_build_source_env_is_static_and_honours_goproxy(monkeypatch):
    monkeypatch.setenv("GOPROXY", "https://proxy.example")
    env = GoBuildSource(go="/bin/true").env()
    assert env["CGO_ENABLED"] == "0" and env["GOPROXY"] == "https://proxy.example"
    assert env["GOTOOLCHAIN"] == "local" and "toolchain" in env["GOCACHE"] and "toolchain" in env["GOMODCACHE"]


def test_go_build_of_a_group_is_one_numbered_step_with_a_heartbeat(tmp_path, monkeypatch):
    """A fake `go` that takes a while: the group build says its step, beats, then its time."""
    from appliance import progress

    monkeypatch.setenv("APPLIANCE_CACHE", str(tmp_path / "cache"))
    go = tmp_path / "go"
    go.write_text('#!/bin/sh\nsleep 0.3\nwhile [ "$1" != "-o" ]; do shift; done\ntouch "$2kwok" "$2kwokctl"\n')
    go.chmod(0o755)
    monkeypatch.setattr(progress, "HEARTBEAT_S", 0.1)
    (tmp_path / "bin").mkdir()
    lines: list[str] = []
    with progress.reporting(None, total=2):
        took = GoBuildSource(go=str(go)).fetch([TOOLS["kwok"], TOOLS["kwokctl"]], tmp_path / "bin", lines.append)
    assert set(took) == {"kwok", "kwokctl"} and (tmp_path / "bin" / "kwokctl").exists()
    assert lines[0].startswith("build 1/2 kwok, kwokctl: from sigs.k8s.io/kwok@")
    assert any(ln.startswith("still building kwok, kwokctl, 0.") and ln.endswith("s (build 1/2)") for ln in lines)
    assert lines[-1].startswith("build 1/2 kwok, kwokctl done in ")


# --------------------------------------------------------------------------- cache + fallback


class FakeSource(Source):
    def __init__(self, name: str, ok: bool = True, fail: bool = False):
        self.name, self.ok, self.fail, self.calls = name, ok, fail, []

    def available(self):
        return (self.ok, "" if self.ok else f"{self.name} unreachable")

    def fetch(self, tools, dest, report):
        self.calls.append([t.name for t in tools])
        if self.fail:
            raise SourceError("boom")
        for t in tools:
            (dest / t.name).write_bytes(f"{self.name}:{t.name}:{t.version}".encode())
        return {t.name: 1.0 for t in tools}


def _tc(tmp_path: Path, source="auto", dl=None, build=None) -> Toolchain:
    dl = dl or FakeSource("download")
    build = build or FakeSource("build")
    return Toolchain(source=source, root=tmp_path, sources={"download": dl, "build": build})


def test_auto_falls_back_to_build_when_download_unreachable(tmp_path):
    dl, build = FakeSource("download", ok=False), FakeSource("build")
    tc = _tc(tmp_path, dl=dl, build=build)
    paths = tc.ensure(["kubectl", "etcd"])
    assert dl.calls == [] and build.calls == [["etcd", "kubectl"]]
    assert paths["kubectl"].read_bytes().startswith(b"build:kubectl")
    st = {s.tool: s for s in tc.status(["kubectl", "etcd", "kind"])}
    assert st["kubectl"].ok and st["kubectl"].source == "build"
    assert not st["kind"].ok and st["kind"].state == "missing"


def test_auto_falls_back_when_download_fails_midway(tmp_path):
    dl, build = FakeSource("download", fail=True), FakeSource("build")
    paths = _tc(tmp_path, dl=dl, build=build).ensure(["kind"])
    assert dl.calls == [["kind"]] and build.calls == [["kind"]]
    assert paths["kind"].exists()


def test_auto_prefers_download(tmp_path):
    dl, build = FakeSource("download"), FakeSource("build")
    _tc(tmp_path, dl=dl, build=build).ensure(["kwok"])
    assert dl.calls == [["kwok"]] and build.calls == []


def test_cached_tool_is_not_fetched_again(tmp_path):
    build = FakeSource("build")
    tc = _tc(tmp_path, source="build", build=build)
    tc.ensure(["kubectl"])
    tc.ensure(["kubectl"])
    assert build.calls == [["kubectl"]]


def test_manifest_records_sha256(tmp_path):
    tc = _tc(tmp_path, source="build")
    p = tc.ensure(["kubectl"])["kubectl"]
    m = json.loads((p.parent.parent / "manifest.json").read_text())
    import hashlib

    assert m["tools"]["kubectl"]["sha256"] == hashlib.sha256(p.read_bytes()).hexdigest()
    assert m["tools"]["kubectl"]["version"] == TOOLS["kubectl"].version


def test_corrupted_binary_detected_and_rebuilt(tmp_path):
    build = FakeSource("build")
    tc = _tc(tmp_path, source="build", build=build)
    p = tc.ensure(["kubectl"])["kubectl"]
    good = p.read_bytes()
    p.write_bytes(bytes([good[0] ^ 1]) + good[1:])  # same size, different content
    (st,) = tc.status(["kubectl"])
    assert not st.ok and st.state == "corrupted"
    tc.ensure(["kubectl"])
    assert build.calls == [["kubectl"], ["kubectl"]]
    assert p.read_bytes() == good
    assert tc.status(["kubectl"])[0].ok


def test_garbage_manifest_means_missing(tmp_path):
    build = FakeSource("build")
    tc = _tc(tmp_path, source="build", build=build)
    p = tc.ensure(["kubectl"])["kubectl"]
    (p.parent.parent / "manifest.json").write_text("{not json")
    assert tc.status(["kubectl"])[0].state == "missing"
    tc.ensure(["kubectl"])
    assert len(build.calls) == 2


def test_no_go_and_no_download_is_one_user_error_line(tmp_path):
    tc = _tc(tmp_path, dl=FakeSource("download", ok=False), build=FakeSource("build", ok=False))
    with pytest.raises(UserError) as e:
        tc.ensure(["kubectl"])
    line = e.value.line()
    assert "\n" not in line and "Go" in line and "fix:" in line


def test_real_build_source_without_go_is_unavailable():
    src = GoBuildSource()
    src.go = None
    ok, why = src.available()
    assert not ok and "Go" in why


def test_release_source_unreachable_is_quick(monkeypatch):
    src = ReleaseSource(connect_timeout=0.5)
    src.probe_url = "https://127.0.0.1:9/"  # nothing listens on the discard port
    ok, why = src.available()
    assert not ok and "unreachable" in why


def test_unknown_tool_and_source(tmp_path):
    with pytest.raises(UserError):
        _tc(tmp_path).ensure(["nope"])
    with pytest.raises(UserError):
        Toolchain(source="ftp")


def test_path_of_missing_tool_says_how_to_fetch(tmp_path):
    with pytest.raises(UserError) as e:
        _tc(tmp_path).path("kind")
    assert "toolchain fetch kind" in e.value.line()


def test_cli_status_json(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from appliance.commands.toolchain import toolchain

    monkeypatch.setenv("APPLIANCE_CACHE", str(tmp_path))
    r = CliRunner().invoke(toolchain, ["status", "--json"])
    data = json.loads(r.output)
    assert {d["tool"] for d in data} >= {"kube-apiserver", "etcd", "kwok", "kind", "coredns"}
    assert r.exit_code == 0 and not any(d["ok"] for d in data)  # nothing cached in an empty cache
    r = CliRunner().invoke(toolchain, ["status"])
    assert r.exit_code == 1 and "missing" in r.output
