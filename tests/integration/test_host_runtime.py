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


def test_a_pods_tmp_holds_unix_sockets_under_a_long_state_path_and_goes_when_it_stops(tmp_path):
    """A unix socket path holds 108 bytes: a pod's /tmp on the host is a short folder of its own (PostgreSQL
    could not start under a long state folder), gone once the process stops."""
    import time

    from appliance.runtime.controller import HostController, Workload

    folder = tmp_path / ("long-state-path-" * 8) / "controllers"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("")
    code = ("import os, socket; s = socket.socket(socket.AF_UNIX); s.bind(os.environ['TMPDIR'] + '/.s.PGSQL.5432'); "
            "open(os.environ['TMPDIR'] + '/up', 'w').write('bound'); import time; time.sleep(600)")
    dep = {"metadata": {"name": "db", "namespace": "database"},
           "spec": {"template": {"metadata": {}, "spec": {"containers": [{"name": "db", "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]}],
                                                          "volumes": [{"name": "tmp", "emptyDir": {}}]}}}}
    host = HostController(folder, "postgres")
    w = Workload(program=lambda: [sys.executable, "-c", code], image={"name": "probe"}, version="1", env={}, routes={})
    host.run(w, dep, [], str(kubeconfig), {})
    try:
        tmp = host.tmp_dir()
        assert len(str(folder)) > 108 and len(str(tmp / ".s.PGSQL.5432")) < 108
        deadline = time.monotonic() + 30
        while not (tmp / "up").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (tmp / "up").read_text() == "bound", host.log.read_text()
    finally:
        host.stop()
    assert not tmp.exists()


def test_a_process_that_listens_before_it_serves_is_ready_once_it_logs_so_and_again_after_a_restart(tmp_path):
    """PostgreSQL listens before it takes logins: with a ready line, a process is ready only once it logged
    that line since its last start (the supervisor restarting it starts over), its probe's port answering too."""
    import time

    import psutil

    from appliance.procs import free_ports
    from appliance.runtime.controller import HostController, Workload
    from appliance.runtime.process import STARTED

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("")
    code = ("import os, socket, sys, time; s = socket.create_server(('127.0.0.1', int(sys.argv[1]))); t = os.environ['TMPDIR']; "
            "open(t + '/listening', 'w').close()\nwhile not os.path.exists(t + '/go'): time.sleep(0.1)\n"
            "print('ready to serve', flush=True); time.sleep(600)")
    (port,) = free_ports(1)
    dep = {"metadata": {"name": "db", "namespace": "database"},
           "spec": {"template": {"metadata": {}, "spec": {"containers": [{
               "name": "db", "ports": [{"name": "db", "containerPort": port}], "readinessProbe": {"tcpSocket": {"port": port}},
               "args": [str(port)], "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]}],
               "volumes": [{"name": "tmp", "emptyDir": {}}]}}}}
    host = HostController(tmp_path / "controllers", "db")
    host.folder.mkdir(parents=True)
    host.log.write_text(f"{STARTED} 1: an earlier process\nready to serve\n")  # what a process before it logged
    w = Workload(program=lambda: [sys.executable, "-c", code], image={"name": "probe"}, version="1", env={}, routes={},
                 ready_line="ready to serve")
    host.run(w, dep, [], str(kubeconfig), {"db": port})
    tmp = host.tmp_dir()

    def until(cond, what: str) -> None:
        deadline = time.monotonic() + 30
        while not cond():
            assert time.monotonic() < deadline, f"{what}: {host.log.read_text()[-2000:]}"
            time.sleep(0.2)

    def restart() -> None:
        (tmp / "listening").unlink()
        (child,) = psutil.Process(host.load().pid).children()
        child.kill()  # the supervisor starts it again
        until(lambda: (tmp / "listening").exists(), "listening again")

    try:
        assert not host.ready(dep)  # the log of a process before it (below) does not count
        until(lambda: (tmp / "listening").exists(), "listening")
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass  # it accepts connections...
        assert not host.ready(dep)  # ...but has not said it serves
        (tmp / "go").touch()
        until(lambda: host.ready(dep), "ready once it says so")
        (tmp / "go").unlink()
        restart()
        assert host.log.read_text().count("ready to serve") == 2 and not host.ready(dep)  # the line of the start before does not count
        (tmp / "go").touch()
        until(lambda: host.ready(dep), "ready after its restart")
    finally:
        host.stop()
