"""Daemonized local processes: start detached (survive the CLI), identify by pid + start time, stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from appliance.util import wait


@dataclass
class Proc:
    name: str
    argv: list[str]
    log: str
    pid: int = 0
    create_time: float = 0.0
    extra: dict = field(default_factory=dict)

    def process(self) -> psutil.Process | None:
        """The live process this record describes, or None (dead, zombie, or pid reused)."""
        if not self.pid:
            return None
        try:
            p = psutil.Process(self.pid)
            if abs(p.create_time() - self.create_time) > 1.0:
                return None  # pid reused by something else
            if p.status() == psutil.STATUS_ZOMBIE:
                return None
            return p
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None

    def alive(self) -> bool:
        return self.process() is not None

    def rss(self) -> int:
        p = self.process()
        try:
            return p.memory_info().rss if p else 0
        except psutil.Error:
            return 0

    def info(self) -> dict:
        p = self.process()
        rss = 0
        cpu = 0.0
        if p:
            try:
                rss = p.memory_info().rss
                t = p.cpu_times()
                cpu = t.user + t.system
            except psutil.Error:
                pass
        return {"name": self.name, "pid": self.pid, "alive": p is not None, "rss_bytes": rss, "cpu_seconds": round(cpu, 1),
                "create_time": self.create_time if p else 0.0, "log": self.log, "binary": self.argv[0] if self.argv else ""}

    def to_dict(self) -> dict:
        return asdict(self)


def spawn(name: str, argv: list[str], log: Path, cwd: Path, env: dict | None = None) -> Proc:
    """Start argv detached from us (own session, re-parented to init), output appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    # sh backgrounds the command and prints its pid, then exits: the daemon's parent is init,
    # so it outlives the CLI and never lingers as our zombie.
    script = 'LOG="$1"; shift; "$@" </dev/null >>"$LOG" 2>&1 & echo $!'
    out = subprocess.run(
        ["/bin/sh", "-c", script, "sh", str(log), *argv],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, check=True, timeout=30,
    )
    pid = int(out.stdout.decode().strip())
    try:
        ct = psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        ct = 0.0
    return Proc(name=name, argv=list(argv), log=str(log), pid=pid, create_time=ct)


def stop(proc: Proc, grace: float = 10.0) -> None:
    """SIGTERM, wait up to `grace` seconds, then SIGKILL. Only ever our recorded process."""
    stop_all([proc], grace)


def stop_all(procs: list[Proc], grace: float = 10.0) -> None:
    """Stop in reverse start order; send every SIGTERM first so shutdown overlaps."""
    live = [(pr, pr.process()) for pr in reversed(procs)]
    for _, p in live:
        if p:
            try:
                p.send_signal(signal.SIGTERM)
            except psutil.Error:
                pass
    deadline = time.monotonic() + grace
    for _, p in live:
        if not p:
            continue
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except psutil.TimeoutExpired:
            try:
                p.kill()
                p.wait(timeout=5)
            except psutil.Error:
                pass
        except psutil.Error:
            pass


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def busy_ports(ports: dict[str, int], timeout: float = 15.0, host: str = "127.0.0.1") -> list[str]:
    """`name=port` of each port still taken after up to `timeout` s (a just-killed process's sockets
    take a moment to be torn down)."""
    busy: list[str] = []

    def free() -> tuple[bool, str]:
        busy[:] = [f"{k}={v}" for k, v in ports.items() if not port_free(v, host)]
        return not busy, ""

    wait.within(free, timeout, interval=0.5)
    return busy


#: where picked listening ports start: below the kernel's ephemeral range, and above well-known services
LISTEN_LOW = 10000


def _ephemeral_low() -> int:
    """The first port the kernel hands outgoing connections (net.ipv4.ip_local_port_range), 32768 if unread."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_ports(n: int, host: str = "127.0.0.1", avoid: set[int] | None = None) -> list[int]:
    """n distinct free ports, held open together while picking, so they differ. Picked at random below the
    kernel's ephemeral range: an outgoing connection never takes one as its source port in the seconds between
    this pick and the server's bind (on a busy host it can: a server then dies at start, address in use); from
    the ephemeral range only where there is no room below it."""
    import random

    socks, ports, avoid = [], [], avoid or set()
    low, rng = _ephemeral_low(), random.SystemRandom()
    try:
        for attempt in range(1000 + n):
            if len(ports) == n:
                break
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((host, rng.randrange(LISTEN_LOW, low) if low - LISTEN_LOW > 100 * n and attempt < 1000 else 0))
            except OSError:
                s.close()
                continue
            socks.append(s)
            port = s.getsockname()[1]
            if port not in avoid and port not in ports:
                ports.append(port)
    finally:
        for s in socks:
            s.close()
    return ports


def tail(path: str | Path, lines: int = 3) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 8192))
            text = f.read().decode(errors="replace")
        return " | ".join(ln.strip() for ln in text.strip().splitlines()[-lines:])
    except OSError:
        return ""
