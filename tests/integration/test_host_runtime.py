"""What stands in for a pod around a host process: Services reached by name through a CONNECT proxy, a
user namespace for servers that refuse root, a path fixed in a program's code bound for it alone."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading

import pytest

from appliance.runtime import connect_proxy

pytestmark = [pytest.mark.integration]


def _echo_server() -> int:
    srv = socket.create_server(("127.0.0.1", 0))

    def serve():
        while True:
            conn, _ = srv.accept()
            with conn:
                conn.sendall(b"echo:" + conn.recv(100))

    threading.Thread(target=serve, daemon=True).start()
    return srv.getsockname()[1]


def _connect(proxy: int, authority: str, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", proxy), timeout=5) as s:
        s.sendall(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode() + payload)
        out = b""
        while chunk := s.recv(4096):
            out += chunk
            if out.count(b"\r\n\r\n") and (b"echo:" in out or not out.startswith(b"HTTP/1.1 200")):
                break
        return out


def test_the_proxy_routes_services_by_name_to_loopback_ports():
    echo = _echo_server()
    proxy = connect_proxy.serve([("katib-db-manager.katib:6789", echo), ("*.user-alice:6789", echo)])
    got = _connect(proxy, "tune-tpe.user-alice:6789", b"hello")  # bytes sent with the CONNECT reach the service
    assert got.startswith(b"HTTP/1.1 200") and got.endswith(b"echo:hello"), got
    assert _connect(proxy, "katib-db-manager.katib:6789", b"x").endswith(b"echo:x")
    assert _connect(proxy, "evil.example.com:443", b"").startswith(b"HTTP/1.1 502")  # no route: refused
    assert _connect(proxy, "tune-tpe.user-bob:6789", b"").startswith(b"HTTP/1.1 502")


def _userns(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "appliance.runtime.userns", *args], capture_output=True, text=True,
                          check=True, timeout=30).stdout


def test_as_nobody_a_root_process_runs_unprivileged_and_its_files_stay_ours(tmp_path):
    out = _userns("--as-nobody", "--", "sh", "-c", f"id -u; touch {tmp_path}/made")
    assert out.split() == [str(65534 if os.geteuid() == 0 else os.geteuid())]
    assert (tmp_path / "made").stat().st_uid == os.geteuid()  # outside, the file is ours


def test_a_bound_folder_is_seen_at_the_fixed_path_by_that_process_only(tmp_path):
    src, fixed = tmp_path / "cert", tmp_path / "fixed"
    src.mkdir()
    (src / "tls.crt").write_text("ours")
    assert _userns(f"--bind={src}:{fixed}", "--", "cat", f"{fixed}/tls.crt") == "ours"
    assert not (fixed / "tls.crt").exists()  # nobody else sees it there
