"""Toolchain against the real Go build (slow the first time: a cold build of the whole set)."""

from __future__ import annotations

import shutil
import struct
import subprocess
import time

import pytest

from appliance.toolchain import ORDER, TOOLS, Toolchain
from appliance.toolchain.sources import find_go

pytestmark = [pytest.mark.integration, pytest.mark.slow,
              pytest.mark.skipif(find_go() is None, reason="needs Go to build the toolchain")]

VERSION_CMD = {
    "kube-apiserver": ["--version"], "kube-controller-manager": ["--version"], "kube-scheduler": ["--version"],
    "kubelet": ["--version"], "kubeadm": ["version", "-o", "short"], "kubectl": ["version", "--client"],
    "kube-proxy": ["--version"], "etcd": ["--version"], "kwok": ["--version"], "kwokctl": ["--version"],
    "kind": ["version"], "coredns": ["-version"],
}


def is_static_elf(path) -> bool:
    """No PT_INTERP program header = no dynamic loader = static."""
    with open(path, "rb") as f:
        h = f.read(64)
        assert h[:4] == b"\x7fELF" and h[4] == 2  # 64-bit
        phoff, = struct.unpack_from("<Q", h, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", h, 0x36)
        f.seek(phoff)
        for _ in range(phnum):
            ph = f.read(phentsize)
            if struct.unpack_from("<I", ph, 0)[0] == 3:
                return False
    return True


@pytest.fixture(scope="module")
def tools():
    return Toolchain(source="auto", report=print).ensure(ORDER)


@pytest.mark.parametrize("name", ORDER)
def test_tool_is_static_and_reports_pinned_version(tools, name):
    p = tools[name]
    assert is_static_elf(p)
    out = subprocess.run([str(p), *VERSION_CMD[name]], capture_output=True, text=True, timeout=60)
    text = out.stdout + out.stderr
    assert TOOLS[name].version.lstrip("v") in text, text[:300]


def test_status_all_ok(tools):
    st = Toolchain(source="auto").status()
    assert all(s.ok for s in st), [s for s in st if not s.ok]
    assert {s.source for s in st} <= {"build", "download"}


def test_corrupted_cache_entry_is_rebuilt_with_warm_go_cache(tmp_path):
    reports = []
    tc = Toolchain(source="auto", root=tmp_path, report=lambda m: reports.append((time.monotonic(), m)))
    t0 = time.monotonic()
    p = tc.ensure(["kube-scheduler"])["kube-scheduler"]
    first = time.monotonic() - t0
    # auto falls back to the build when downloads are unreachable (here: no release downloads), saying so first
    said = [m for _, m in reports]
    fallback = next(i for i, m in enumerate(said) if m.endswith("building from Go modules instead") or m.startswith("download failed"))
    assert any(m.startswith("build ") and " kube-scheduler: " in m for m in said[fallback:]), said  # "build n/N" counts the whole run
    good = p.read_bytes()
    with open(p, "r+b") as f:
        f.seek(len(good) // 2)
        f.write(bytes([good[len(good) // 2] ^ 0xFF]))
    (st,) = tc.status(["kube-scheduler"])
    assert st.state == "corrupted" and not st.ok
    tc.ensure(["kube-scheduler"])
    assert tc.status(["kube-scheduler"])[0].ok
    assert any("checksum mismatch" in m for _, m in reports)
    print(f"kube-scheduler from warm GOCACHE: {first:.1f}s")
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_cli_fetch_and_status(tools):
    from click.testing import CliRunner

    from appliance.commands.toolchain import toolchain

    r = CliRunner().invoke(toolchain, ["fetch", "kubectl", "etcd"])
    assert r.exit_code == 0, r.output
    assert str(tools["kubectl"]) in r.output
    r = CliRunner().invoke(toolchain, ["status"])
    assert r.exit_code == 0 and "kube-apiserver" in r.output and "corrupted" not in r.output
