"""A declared Deployment's (or StatefulSet's) container run as a supervised host process, as the kit renders it."""

from __future__ import annotations

import hashlib
import json
import mmap
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from appliance import procs
from appliance.kube import decoded
from appliance.runtime.process import STARTED, HostProcess, controllers_dir, stop_all

#: on the host runtime, the API server reaches host controllers' webhooks here
HOST_IP = "127.0.0.1"


@dataclass(frozen=True)
class Workload:
    """One workload of `host:` in component.yaml, in the runtime's terms (the kit makes it)."""

    #: the argv prefix of its program (a Go build, an entrypoint): asked for only when the process starts
    program: Callable[[], list[str]]
    #: what it runs and its version: a process an older version started is replaced
    image: dict
    version: str
    #: added to its environment (the hooks' `host_env`)
    env: dict[str, str]
    #: `service.namespace:port` pattern → the name of the port (of the component's) that stands for it
    routes: dict[str, str]
    unprivileged: bool = False
    fixed_paths: tuple[str, ...] = ()
    private_paths: tuple[str, ...] = ()
    #: a line the program logs once it serves: not ready until logged since its last start
    ready_line: str = ""


def _logged_since_start(log: Path, line: str, since: int) -> bool:
    """`line` is in the process's log (from byte `since`, where its start began) after the supervisor's last
    start of its program."""
    if not log.is_file() or log.stat().st_size <= since:
        return False
    with open(log, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        return m.rfind(line.encode(), since) > m.rfind(STARTED.encode(), since)


class HostController(HostProcess):
    """A declared Deployment's (or StatefulSet's) container run as a supervised host process against the API
    server (where pods cannot run): the program is the workload's; args and env as rendered (Secret keys
    resolved, the workload's env added); ConfigMap volumes written to files, a Secret volume copied (by the
    supervisor), empty dirs and claims as folders kept under its folder, mount paths in args and env rewritten;
    free loopback ports in place of the declared ones, kept while it runs; routes for the Services it dials by
    name; unprivileged for a server that refuses root; private paths for paths fixed in a program's code (its
    folder is bound there for that process only)."""

    def ready(self, dep: dict) -> bool:
        """Alive, its ready line (if it has one) logged since it started, and its readiness probe answering on
        loopback as a kubelet would ask (httpGet: 2xx/3xx; tcpSocket, grpc: a connection), when the probe's port
        is one given to it (declared or named)."""
        cur = self.load()
        if not (cur and cur.alive()):
            return False
        if (line := (cur.extra or {}).get("ready_line")) and not _logged_since_start(self.log, line, cur.extra.get("log_from", 0)):
            return False
        (c,) = dep["spec"]["template"]["spec"]["containers"]
        probe = c.get("readinessProbe") or {}
        how = next((k for k in ("httpGet", "tcpSocket", "grpc") if k in probe), None)
        named = {p["name"]: p["containerPort"] for p in c.get("ports") or [] if "name" in p}
        given = set(((cur.extra or {}).get("ports") or {}).values())
        port = named.get(probe[how]["port"], probe[how]["port"]) if how else None
        if port not in given:
            return True  # no probe, or not on a port we chose: being alive is all we can tell
        try:
            if how == "httpGet":
                import urllib.request

                with urllib.request.urlopen(f"http://{HOST_IP}:{port}{probe[how].get('path', '/')}", timeout=2) as r:
                    return 200 <= r.status < 400
            with socket.create_connection((HOST_IP, port), timeout=2):
                return True
        except OSError:
            return False

    def ports(self, declared: dict[str, int]) -> dict[str, int]:
        """Loopback ports in place of the `declared` ones: those it runs with, else free ones."""
        cur = self.load()
        if cur and cur.alive() and set((cur.extra or {}).get("ports") or {}) == set(declared):
            return cur.extra["ports"]
        return dict(zip(declared, procs.free_ports(len(declared)), strict=True))

    def run(self, w: Workload, dep: dict, objs: list[dict], kubeconfig: str, ports: dict[str, int]) -> str:
        """Start (or keep) the process for Deployment `dep`; its ConfigMaps are taken from `objs`."""
        pod = dep["spec"]["template"]["spec"]
        (c,) = pod["containers"]
        ns = dep["metadata"]["namespace"]
        root = self.folder / f"{self.name}-root"
        fixed, private = set(w.fixed_paths), set(w.private_paths)
        binds: dict[str, str] = {}
        volumes = {v["name"]: v for v in pod.get("volumes") or []}
        volumes |= {t["metadata"]["name"]: {"claim": True} for t in dep["spec"].get("volumeClaimTemplates") or []}
        moved: dict[str, str] = {}
        secret = cert_dir = ""
        for m in c.get("volumeMounts") or []:
            v, target = volumes[m["name"]], m["mountPath"]
            where = target if target in fixed else str(self.tmp_dir()) if target == "/tmp" else str(root) + target
            if target in private:
                binds[where] = target  # the program sees it at its own path, this process only
            else:
                moved[target] = where
            if "secret" in v:
                secret, cert_dir = f"{ns}/{v['secret']['secretName']}", where
            elif "configMap" in v:
                (cm,) = [o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"] == v["configMap"]["name"]
                         and o["metadata"].get("namespace") == ns]
                Path(where).mkdir(parents=True, exist_ok=True)
                for key, text in (cm.get("data") or {}).items():
                    Path(where, key).write_text(text)
            else:  # an empty dir or a claim: a folder of its own, kept across restarts
                Path(where).mkdir(parents=True, exist_ok=True)
        args = [_moved(a, moved) for a in c.get("args") or []]
        # programs that find a mount through the temp dir (controller-runtime's default cert dir) find it moved
        env = {"TMPDIR": moved.get("/tmp", str(root / "tmp"))} if any((t == "/tmp" or t.startswith("/tmp/")) and t not in fixed for t in moved) else {}
        secrets: dict[str, str] = {}
        for e in c.get("env") or []:
            ref = e.get("valueFrom") or {}
            if "value" in e:
                env[e["name"]] = _moved(e["value"], moved)
            elif ref.get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
                env[e["name"]] = ns
            elif "secretKeyRef" in ref:
                secrets[e["name"]] = _secret_key(objs, ns, ref["secretKeyRef"])
        env.update(w.env)
        routes = {pattern: ports[name] for pattern, name in w.routes.items()}
        sig = {"image": w.image, "args": args, "env": env, "version": w.version, "routes": routes,
               "secrets": hashlib.sha256(json.dumps(secrets, sort_keys=True).encode()).hexdigest()[:16]}
        if ann := dep["spec"]["template"]["metadata"].get("annotations"):
            sig["annotations"] = ann  # what restarts the pod (a configuration's hash) restarts the process
        if cur := self.current(sig):
            return f"host process running (pid {cur.pid})"
        if "TMPDIR" in env:
            Path(env["TMPDIR"]).mkdir(parents=True, exist_ok=True)
        log_from = self.log.stat().st_size if self.log.is_file() else 0  # what an earlier process logged stays behind
        proc = self.start(w.program() + args, kubeconfig, secret=secret, cert_dir=cert_dir,
                          extra={"sig": sig, "ports": ports, "ready_line": w.ready_line, "log_from": log_from}, env=env | secrets, routes=routes,
                          unprivileged=w.unprivileged, binds=binds)
        return f"host process started (pid {proc.pid}, log {self.log})"


class HostControllers:
    """A component's host processes on one cluster, one per workload it runs there (none where they run as pods)."""

    def __init__(self, kube, names: list[str]):
        self.kube = kube
        self.controllers = [HostController(controllers_dir(kube.kubeconfig), n) for n in names]

    def ports(self, declared: dict[str, int]) -> dict[str, int] | None:
        """The loopback ports they all use in place of the `declared` ones (None with no process)."""
        return self.controllers[0].ports(declared) if self.controllers else None

    def run(self, deps: list[dict], objs: list[dict], ports: dict[str, int] | None, workload: Callable[[str], Workload]) -> list[str]:
        """Start (or keep) each process for its rendered workload in `deps` (same order), `workload(name)` saying
        how; a note each."""
        return [h.run(workload(h.name), dep, objs, self.kube.kubeconfig, ports)
                for h, dep in zip(self.controllers, deps, strict=True)]

    def missing(self, deps: list[dict]) -> list[str]:
        """The processes not ready, as `ready` reports them."""
        return [f"host process {h.name} (log {h.log})" for h, dep in zip(self.controllers, deps, strict=True) if not h.ready(dep)]

    def stop(self) -> None:
        stop_all(self.controllers)


def _secret_key(objs: list[dict], ns: str, ref: dict) -> str:
    """The value of a rendered Secret's key (data or stringData)."""
    (sec,) = [o for o in objs if o["kind"] == "Secret" and o["metadata"]["name"] == ref["name"] and o["metadata"].get("namespace") == ns]
    return decoded(sec)[ref["key"]]


def _moved(arg: str, moved: dict[str, str]) -> str:
    for target, where in sorted(moved.items(), key=lambda kv: -len(kv[0])):
        if target in arg:
            return arg.replace(target, where)
    return arg
