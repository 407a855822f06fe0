"""Controllers run as supervised host processes against a cluster's kubeconfig (the simulator has no
kubelet to run them as pods): where their records live, and start/stop/alive."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import psutil

from appliance import paths, procs

#: what the supervisor logs each time it starts the program (a start's log begins there)
STARTED = "supervisor: started pid"


def controllers_dir(kubeconfig: str) -> Path:
    """Where host controllers of this cluster keep pid and log files: <state_dir(cluster)>/controllers.
    The cluster is the state folder holding the kubeconfig; otherwise a folder keyed by the kubeconfig."""
    kc = Path(kubeconfig).resolve()
    base = paths.state_dir().resolve()
    if kc.parent.parent == base:
        return paths.state_dir(kc.parent.name) / "controllers"
    return paths.state_dir("host-controllers") / hashlib.sha256(str(kc).encode()).hexdigest()[:12] / "controllers"


class HostProcess:
    """The supervised host process of one controller: record in <dir>/<name>.json, log in <dir>/<name>.log."""

    def __init__(self, folder: Path, name: str):
        self.folder, self.name = folder, name
        self.record = folder / f"{name}.json"
        self.log = folder / f"{name}.log"

    def load(self) -> procs.Proc | None:
        try:
            return procs.Proc(**json.loads(self.record.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def current(self, sig: dict) -> procs.Proc | None:
        """The running process if it was started with signature `sig`; otherwise stop whatever runs
        (a stale or differently configured one) and return None, so the caller starts anew."""
        cur = self.load()
        if cur and cur.alive() and cur.extra.get("sig") == sig:
            return cur
        self.stop()
        return None

    def alive(self) -> bool:
        p = self.load()
        return bool(p and p.alive())

    def tmp_dir(self) -> Path:
        """Its pod's /tmp on this host: a folder of its own in the host's temp dir, named after its record's path —
        short whatever the state folder's path, as the unix sockets programs make there need (108 bytes: a
        PostgreSQL under a long state path could not start); removed when it stops."""
        key = hashlib.sha256(str(self.record.resolve()).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"appliance-{key}"

    def start(self, argv: list[str], kubeconfig: str, secret: str = "", cert_dir: str = "", extra: dict | None = None,
              env: dict[str, str] | None = None, routes: dict[str, int] | None = None, unprivileged: bool = False,
              binds: dict[str, str] | None = None) -> procs.Proc:
        """Spawn the supervisor (appliance/runtime/supervisor.py) running `argv`; `secret` (ns/name) is
        copied into `cert_dir` as a Pod's Secret volume would be; `env` is added to the controller's;
        `routes` (`host:port` pattern → loopback port) stand in for the Services it dials by name;
        `unprivileged`: as root, it runs as nobody in a user namespace; `binds` (folder → path): it sees
        the folder at that path."""
        self.folder.mkdir(parents=True, exist_ok=True)
        sup = [sys.executable, "-m", "appliance.runtime.supervisor", "--kubeconfig", kubeconfig]
        if secret:
            sup += ["--secret", secret, "--cert-dir", cert_dir]
        for pattern, port in (routes or {}).items():
            sup += ["--route", f"{pattern}={port}"]
        if unprivileged:
            sup.append("--unprivileged")
        for src, dst in (binds or {}).items():
            sup += ["--bind", f"{src}:{dst}"]
        full = {**os.environ, **(env or {})}
        root = str(Path(__file__).resolve().parents[2])
        full["PYTHONPATH"] = os.pathsep.join([root] + ([full["PYTHONPATH"]] if full.get("PYTHONPATH") else []))
        proc = procs.spawn(self.name, sup + ["--"] + argv, self.log, self.folder, full)
        proc.extra = extra or {}
        self.record.write_text(json.dumps(proc.to_dict(), indent=2))
        return proc

    def stop(self) -> None:
        stop_all([self])


def stop_all(hosts: list[HostProcess]) -> None:
    """Stop these host processes together (every SIGTERM first, so their shutdowns overlap) and forget them."""
    procs.stop_all([p for h in hosts if (p := h.load())], grace=15)
    for h in hosts:
        h.record.unlink(missing_ok=True)
        shutil.rmtree(h.tmp_dir(), ignore_errors=True)


def recorded(kubeconfig: str) -> list[HostProcess]:
    """Every host process this cluster has a record of (those of components its profile since left too)."""
    folder = controllers_dir(kubeconfig)
    return [HostProcess(folder, record.stem) for record in sorted(folder.glob("*.json"))]


def infos(kubeconfig: str) -> list[dict]:
    """Each host process of this cluster (`status`): its record's facts, memory and CPU time counting the
    program its supervisor runs (and that program's children)."""
    out = []
    for host in recorded(kubeconfig):
        if not (proc := host.load()):
            continue
        info = proc.info()
        if live := proc.process():
            for child in live.children(recursive=True):
                try:
                    times = child.cpu_times()
                    info["rss_bytes"] += child.memory_info().rss
                    info["cpu_seconds"] = round(info["cpu_seconds"] + times.user + times.system, 1)
                except psutil.Error:
                    pass
        out.append(info)
    return out
