"""Bare-metal provider: Ansible playbooks (playbooks/) run through ansible-runner.

The inventory is generated from the profile's `cluster.baremetal.hosts` (or the
user's own inventory file is used, with the appliance's defaults layered under
it). Every run keeps its artifacts under <state_dir>/runs/<ident>/, streams one
line per host and task to `report`, and maps failures to one line per host with
a fix. Roles are idempotent, so a failed run is resumed by running it again.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from appliance.errors import ProfileError, UserError
from appliance.images.delivery import node_mirrors
from appliance.providers.base import ClusterInfo, Provider
from appliance.toolchain import Toolchain
from appliance.toolchain.pins import KUBERNETES

K8S_BINARIES = ("kubelet", "kubeadm", "kubectl")
KEEP_RUNS = 10


def playbooks_dir() -> Path:
    """The playbooks folder: $APPLIANCE_PLAYBOOKS, beside the package (source tree) or inside it (wheel)."""
    env = os.environ.get("APPLIANCE_PLAYBOOKS")
    here = Path(__file__).resolve().parents[1]  # appliance/
    for cand in ([Path(env)] if env else []) + [here.parent / "playbooks", here / "playbooks"]:
        if (cand / "site.yml").exists():
            return cand
    raise UserError("the bare-metal playbooks are missing", where=str(here.parent / "playbooks"),
                    fix="reinstall the appliance or set APPLIANCE_PLAYBOOKS to the playbooks folder")


def ansible_program(name: str) -> Path:
    """Ansible program `name` installed beside the running interpreter (its venv's bin), whatever PATH says.

    PATH is the fallback only (an Ansible installed for another interpreter, e.g. by the OS)."""
    for folder in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
        cand = Path(folder, name)
        if cand.is_file() and os.access(cand, os.X_OK):
            return cand
    found = shutil.which(name)
    if found:
        return Path(found)
    raise UserError(f"{name} not found beside {sys.executable} nor on PATH", where="bare-metal provider",
                    fix=f"{sys.executable} -m pip install ansible-core ansible-runner")


def ansible_envvars(pb_dir: Path) -> dict[str, str]:
    """Environment of every Ansible run: the playbooks' config and roles, and the Ansible programs of this
    interpreter first on PATH (ansible-runner starts `ansible-playbook` by name)."""
    programs = ansible_program("ansible-playbook").parent
    return {
        "ANSIBLE_CONFIG": str(pb_dir / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(pb_dir / "roles"),
        "PATH": os.pathsep.join([str(programs), os.environ.get("PATH", os.defpath)]),
    }


# -- failures -------------------------------------------------------------------------------

_FIXES: list[tuple[str, re.Pattern, str]] = [
    ("host key not trusted", re.compile(r"Host key verification failed|REMOTE HOST IDENTIFICATION", re.I),
     "run `ssh-keyscan -H {address} >> ~/.ssh/known_hosts` after checking the key"),
    ("SSH login refused", re.compile(r"Permission denied \(publickey|Authentication failed|Invalid/incorrect password", re.I),
     "add your public key to ~{user}/.ssh/authorized_keys on the host (ssh-copy-id {user}@{address})"),
    ("host unreachable", re.compile(
        r"Failed to connect|Connection refused|Connection timed out|timed out|No route to host|"
        r"Could not resolve|Name or service not known|is not running|No such container|Network is unreachable", re.I),
     "check that {address}:{port} is up and that `ssh -p {port} {user}@{address}` works"),
    ("no sudo", re.compile(
        r"Missing sudo password|a password is required|not in the sudoers|sudo: not found|"
        r"Incorrect sudo password|Timeout \(\d+s\) waiting for privilege escalation|privilege escalation", re.I),
     "give {user} passwordless sudo ('{user} ALL=(ALL) NOPASSWD:ALL' in /etc/sudoers.d/{user}) or use root"),
    ("no Python on the host", re.compile(r"python3?: (command )?not found|No such file or directory.*python|"
                                         r"interpreter discovery|MODULE FAILURE", re.I),
     "install python3 on the host (apt-get install -y python3)"),
    ("package install failed", re.compile(r"Failed to update apt cache|Unable to locate package|"
                                          r"Could not get lock|dpkg was interrupted", re.I),
     "check the host's apt sources and network (apt-get update on the host), then run again"),
    ("undefined inventory variable", re.compile(r"'(\w+)' is undefined", re.I),
     "set {var} for this host or group in the inventory"),
]


@dataclass
class HostFailure:
    host: str
    task: str
    what: str
    fix: str
    unreachable: bool = False

    def line(self) -> str:
        return f"{self.host}: {self.task}: {self.what} — fix: {self.fix}"


def classify_failure(host: str, task: str, result: dict, unreachable: bool = False,
                     hostinfo: dict | None = None) -> HostFailure:
    """Turn one failed runner event into what went wrong and how to fix it."""
    info = {"address": host, "user": "root", "port": 22, "var": "the variable"}
    info.update({k: v for k, v in (hostinfo or {}).items() if v not in (None, "")})
    msg = str(result.get("msg") or "")
    parts = [result, *(result.get("failed_modules") or {}).values(), *(result.get("results") or [])]
    keys = ("msg", "stderr", "module_stderr", "module_stdout", "stdout")
    text = "\n".join(str(p.get(k) or "") for p in parts if isinstance(p, dict) for k in keys)
    first = next((ln.strip() for ln in (msg or text).splitlines() if ln.strip()), "failed")
    if msg == "non-zero return code":  # a command failed: its own words are more useful
        cmd = result.get("cmd") or ""
        cmd = " ".join(cmd) if isinstance(cmd, list) else str(cmd)
        out = str(result.get("stderr") or result.get("stdout") or "")
        lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
        errs = [ln for ln in lines if re.match(r"(error|fatal|E\d{4}|\[ERROR)", ln, re.I)]
        err = (errs or lines or [""])[0 if errs else -1]
        first = f"`{_short(cmd, 80)}` exited {result.get('rc')}" + (f": {err}" if err else "")
    # our playbooks' own assertions: "APPLIANCE <what> — fix: <fix>"
    m = re.search(r"APPLIANCE (.+?) — fix: (.+)", " ".join(text.split()))
    if m:
        return HostFailure(host, task, m.group(1).strip(), m.group(2).strip(), unreachable)
    for what, pat, fix in _FIXES:
        hit = pat.search(text)
        if hit:
            if what == "undefined inventory variable":
                info["var"] = hit.group(1)
                what = f"missing inventory var {hit.group(1)}"
            elif what in ("no Python on the host",) and "MODULE FAILURE" in text and "python" not in text.lower():
                continue
            elif what == "host unreachable" and not unreachable and "Failed to connect" not in text:
                continue
            detail = next((ln.strip() for ln in text.splitlines() if pat.search(ln)), first)
            return HostFailure(host, task, f"{what} ({_short(detail)})", fix.format(**info), unreachable)
    if unreachable:
        return HostFailure(host, task, f"host unreachable ({_short(first)})",
                           "check that {address}:{port} is up and that `ssh -p {port} {user}@{address}` works".format(**info),
                           True)
    return HostFailure(host, task, _short(first), "see the run log and run again once fixed (the run resumes)")


def _short(s: str, n: int = 200) -> str:
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 1] + "…"


# -- runs -----------------------------------------------------------------------------------


@dataclass
class RunResult:
    ident: str
    status: str  # successful | failed | timeout | canceled
    rc: int
    seconds: float
    artifacts: str
    stats: dict[str, dict[str, int]] = field(default_factory=dict)  # host -> ok/changed/failures/...
    changed: list[tuple[str, str]] = field(default_factory=list)  # (host, task)
    failures: list[HostFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "successful" and self.rc == 0 and not self.failures

    @property
    def changed_count(self) -> int:
        return sum(s.get("changed", 0) for s in self.stats.values())

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["changed_count"] = self.changed_count
        return d


class _Events:
    """Runner event handler: one report line per host and task, and the run's bookkeeping."""

    STATUS = {
        "runner_on_ok": "ok", "runner_on_failed": "failed", "runner_on_unreachable": "unreachable",
        "runner_on_skipped": "skipped",
    }

    def __init__(self, report: Callable[[str], None], hostinfo: dict[str, dict]):
        self.report = report
        self.hostinfo = hostinfo
        self.changed: list[tuple[str, str]] = []
        self.failures: list[HostFailure] = []
        self.stats: dict[str, dict[str, int]] = {}

    def __call__(self, event: dict) -> bool:
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        if kind == "playbook_on_stats":
            for key in ("ok", "changed", "failures", "dark", "skipped", "rescued", "ignored"):
                for host, n in (data.get(key) or {}).items():
                    self.stats.setdefault(host, {})["unreachable" if key == "dark" else key] = n
            return True
        status = self.STATUS.get(kind)
        if not status:
            return True
        host = data.get("host", "?")
        task = (data.get("task") or "?").strip()
        role = data.get("role")
        label = f"{role} : {task}" if role else task
        res = data.get("res") or {}
        if status == "ok" and res.get("changed"):
            status = "changed"
            self.changed.append((host, label))
        ignored = data.get("ignore_errors") or False
        if status in ("failed", "unreachable") and not ignored:
            f = classify_failure(host, label, res, unreachable=status == "unreachable",
                                 hostinfo=self.hostinfo.get(host))
            self.failures.append(f)
            self.report(f"{host} / {label} / {status}: {f.what} — fix: {f.fix}")
            return True
        if status == "skipped":
            return True
        self.report(f"{host} / {label} / {status}" + (" (ignored)" if ignored and status == "failed" else ""))
        return True


class BaremetalProvider(Provider):
    """Bootstraps GPU servers with the appliance's Ansible playbooks."""

    name = "baremetal"

    def __init__(self, spec: Any, state_dir: Path, report=None):
        super().__init__(spec, state_dir, report)
        self.bm = getattr(spec, "baremetal", spec)
        self.cluster_name = getattr(spec, "name", "appliance")
        self._check_addresses()

    def _check_addresses(self) -> None:
        """Refuse a host without an address (the `dgx` profile ships one) before any work, unless an
        inventory of the user's says where the hosts are."""
        if self.bm.inventory:
            return
        for i, h in enumerate(self.bm.hosts):
            if not h.address.strip():
                raise ProfileError(
                    f"host '{h.name}' has no address", where=f"cluster.baremetal.hosts.{i}.address",
                    fix=f"set it: --set cluster.baremetal.hosts.{i}.address=<IP or DNS name>, or use your own "
                        "inventory: --set cluster.baremetal.inventory=./hosts.ini")

    # -- availability

    @classmethod
    def available(cls) -> tuple[bool, str]:
        try:
            import ansible_runner  # noqa: F401
        except ImportError:
            return False, "ansible-runner is not installed (pip install ansible-runner ansible-core)"
        try:
            import ansible  # noqa: F401
        except ImportError:
            return False, "ansible-core is not installed (pip install ansible-core)"
        return True, ""

    # -- paths

    @property
    def kubeconfig_path(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def runs_dir(self) -> Path:
        return self.state_dir / "runs"

    # -- inventory

    def _hostinfo(self) -> dict[str, dict]:
        return {h.name: {"address": h.address, "user": h.user, "port": h.port} for h in self.bm.hosts}

    def k8s_binaries_dir(self) -> Path:
        """A folder with kubelet/kubeadm/kubectl from the appliance toolchain (offline installs)."""
        self.report("toolchain: making sure kubelet, kubeadm, kubectl are cached (built once)")
        paths = Toolchain(report=self.report).ensure(list(K8S_BINARIES))
        dest = self.state_dir / "k8s-bin"
        dest.mkdir(parents=True, exist_ok=True)
        for name, p in paths.items():
            link = dest / name
            if link.is_symlink() or link.exists():
                if link.resolve() == Path(p).resolve():
                    continue
                link.unlink()
            link.symlink_to(Path(p).resolve())
        return dest

    def defaults_vars(self) -> dict[str, Any]:
        """Variables every host gets (the user's inventory overrides them)."""
        v: dict[str, Any] = {
            "appliance_cluster_name": self.cluster_name,
            "appliance_k8s_version": KUBERNETES,
            "appliance_offline": bool(self.bm.offline),
            "appliance_mig_profile": self.bm.mig_profile,
            "appliance_gpu_stack": self.bm.gpu_stack,
            # skips interpreter discovery on every host (one round trip less per run)
            "ansible_python_interpreter": "/usr/bin/python3",
        }
        images = getattr(self.spec, "images", None)
        if images is not None and node_mirrors(images):
            v["appliance_registry_mirrors"] = {h: [u] for h, u in node_mirrors(images).items()}
        return v

    def _offline_default(self, var: str) -> bool:
        """Offline, and the user's hosts or inventory do not set `var`: the appliance provides it."""
        if not self.bm.offline:
            return False
        if any(var in h.vars for h in self.bm.hosts):
            return False
        inv = Path(self.bm.inventory).expanduser() if self.bm.inventory else None
        return not (inv and inv.is_file() and var in inv.read_text())

    def k8s_images_dir(self) -> Path:
        """Control-plane image archives for `kubeadm init` without a registry (built once, cached)."""
        from appliance.images.node import control_plane_archives

        self.report("images: making sure the control-plane image archives exist (built once)")
        return control_plane_archives(report=self.report)

    def generate_inventory(self) -> dict[str, Any]:
        """The inventory (as YAML data) made from the profile's hosts."""
        if not self.bm.hosts:
            raise UserError("no hosts for the bare-metal provider", where="cluster.baremetal.hosts",
                            fix="list your servers under cluster.baremetal.hosts or set cluster.baremetal.inventory")
        groups: dict[str, dict] = {"control_plane": {"hosts": {}}, "workers": {"hosts": {}}}
        for h in self.bm.hosts:
            hv: dict[str, Any] = {"ansible_host": h.address, "ansible_user": h.user, "ansible_port": h.port}
            hv.update(h.vars)
            groups["control_plane" if h.role == "control-plane" else "workers"]["hosts"][h.name] = hv
        if not groups["control_plane"]["hosts"]:
            raise UserError("no control-plane host", where="cluster.baremetal.hosts",
                            fix="give one host role: control-plane")
        return {"all": {"vars": self.defaults_vars(), "children": groups}}

    def write_inventory(self) -> list[str]:
        """Write the inventory file(s) under the state dir; returns the -i list for the run."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        inv_dir = self.state_dir / "inventory"
        inv_dir.mkdir(exist_ok=True)
        defaults = self.defaults_vars()
        if self._offline_default("appliance_k8s_binaries_dir"):
            defaults["appliance_k8s_binaries_dir"] = str(self.k8s_binaries_dir())
        init = all(h.vars.get("appliance_kubeadm_init", True) for h in self.bm.hosts)
        if init and self._offline_default("appliance_k8s_images_dir"):
            defaults["appliance_k8s_images_dir"] = str(self.k8s_images_dir())
        if self.bm.inventory:
            user_inv = Path(self.bm.inventory).expanduser()
            if not user_inv.exists():
                raise UserError(f"inventory {user_inv} does not exist", where="cluster.baremetal.inventory",
                                fix="point cluster.baremetal.inventory at an Ansible inventory file")
            base = inv_dir / "00-appliance-defaults.yml"
            base.write_text(yaml.safe_dump({"all": {"vars": defaults}}, sort_keys=False))
            return [str(base), str(user_inv.resolve())]
        data = self.generate_inventory()
        data["all"]["vars"] = defaults
        path = inv_dir / "hosts.yml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return [str(path)]

    # -- running playbooks

    def run_playbook(self, playbook: str = "site.yml", tags: list[str] | None = None, limit: str | None = None,
                     extravars: dict[str, Any] | None = None, ident: str | None = None) -> RunResult:
        """Run one playbook through ansible-runner; never raises on Ansible failures (see RunResult)."""
        ok, why = self.available()
        if not ok:
            raise UserError(why, where="bare-metal provider", fix="pip install ansible-runner ansible-core")
        import ansible_runner

        inventory = self.write_inventory()
        pb_dir = playbooks_dir()
        ident = ident or time.strftime("%Y%m%dT%H%M%S") + f"-{Path(playbook).stem}"
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        private = self.state_dir / "ansible"
        private.mkdir(exist_ok=True)
        handler = _Events(self.report, self._hostinfo())
        xv = {"appliance_kubeconfig_dest": str(self.kubeconfig_path)}
        xv.update(extravars or {})
        envvars = {**ansible_envvars(pb_dir), "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCAL_TEMP": str(private / "tmp")}
        if os.environ.get("APPLIANCE_SSH_HOST_KEY_CHECKING", "").lower() in ("0", "false", "no"):
            envvars["ANSIBLE_HOST_KEY_CHECKING"] = "False"
        t0 = time.monotonic()
        self.report(f"ansible: {playbook} on {', '.join(h.name for h in self.bm.hosts) or 'inventory hosts'}"
                    f" (artifacts: {self.runs_dir / ident})")
        r = ansible_runner.run(
            private_data_dir=str(private),
            project_dir=str(pb_dir),
            artifact_dir=str(self.runs_dir),
            ident=ident,
            playbook=playbook,
            inventory=inventory,
            extravars=xv,
            envvars=envvars,
            tags=",".join(tags) if tags else None,
            limit=limit,
            event_handler=handler,
            quiet=True,
            rotate_artifacts=KEEP_RUNS,
            suppress_env_files=True,  # else the first run's env/envvars (PATH included) overrides every later run's
        )
        result = RunResult(
            ident=ident, status=r.status, rc=r.rc if r.rc is not None else -1,
            seconds=round(time.monotonic() - t0, 2), artifacts=str(self.runs_dir / ident),
            stats=handler.stats, changed=handler.changed, failures=handler.failures,
        )
        if result.rc != 0 and not result.failures:
            tail = ""
            try:
                out = (Path(result.artifacts) / "stdout").read_text().strip().splitlines()
                err = [i for i, ln in enumerate(out) if ln.startswith(("[ERROR]", "ERROR!"))]
                tail = " ".join(out[err[0]:err[0] + 2] if err else out[-3:])
            except OSError:
                pass
            result.failures.append(HostFailure("controller", playbook, _short(tail or f"ansible exited {result.rc}"),
                                               f"see {result.artifacts}/stdout"))
        summary = json.dumps(result.to_dict(), indent=2)
        Path(result.artifacts).mkdir(parents=True, exist_ok=True)
        Path(result.artifacts, "summary.json").write_text(summary)
        (self.state_dir / "last-run.json").write_text(summary)
        return result

    def converge(self, tags: list[str] | None = None, limit: str | None = None,
                 extravars: dict[str, Any] | None = None) -> RunResult:
        """Run site.yml; raise one UserError (after one report line per failed host) on failure."""
        result = self.run_playbook("site.yml", tags=tags, limit=limit, extravars=extravars)
        self.report(f"ansible: {result.status} in {result.seconds:.1f}s, changed={result.changed_count}")
        if not result.ok:
            raise self._error(result)
        return result

    def _error(self, result: RunResult) -> UserError:
        for f in result.failures:
            self.report(f.line())
        first, more = result.failures[0], len(result.failures) - 1
        err = UserError(f"{first.host}: {first.task}: {first.what}" + (f" (and {more} more hosts)" if more else ""),
                        fix=first.fix or "fix it and run again (the run resumes)")
        err.failures = result.failures  # type: ignore[attr-defined]
        err.artifacts = result.artifacts  # type: ignore[attr-defined]
        return err

    # -- Provider API

    def create(self) -> ClusterInfo:
        self.converge()
        nodes = [{"name": h.name, "address": h.address, "role": h.role} for h in self.bm.hosts]
        return ClusterInfo(name=self.cluster_name, kubeconfig=self.kubeconfig_path,
                           context=f"kubernetes-admin@{self.cluster_name}", nodes=nodes)

    def _kubectl(self) -> str | None:
        try:
            return str(Toolchain().path("kubectl"))
        except UserError:
            return shutil.which("kubectl")

    def ready(self) -> bool:
        if not self.kubeconfig_path.exists():
            return False
        kubectl = self._kubectl()
        if not kubectl:
            return False
        try:
            r = subprocess.run([kubectl, "--kubeconfig", str(self.kubeconfig_path), "--request-timeout=5s",
                                "get", "--raw=/readyz"], capture_output=True, text=True, timeout=15)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return r.returncode == 0

    def delete(self) -> None:
        result = self.run_playbook("reset.yml")
        if not result.ok:
            raise self._error(result)
        self.kubeconfig_path.unlink(missing_ok=True)

    def status(self) -> dict[str, Any]:
        last: dict[str, Any] = {}
        try:
            last = json.loads((self.state_dir / "last-run.json").read_text())
        except (OSError, ValueError):
            pass
        return {
            "provider": self.name,
            "hosts": [{"name": h.name, "address": h.address, "role": h.role, "user": h.user} for h in self.bm.hosts],
            "inventory": self.bm.inventory or str(self.state_dir / "inventory" / "hosts.yml"),
            "offline": self.bm.offline,
            "kubeconfig": str(self.kubeconfig_path) if self.kubeconfig_path.exists() else "",
            "last_run": {k: last.get(k) for k in ("ident", "status", "rc", "seconds", "changed_count", "artifacts")}
            if last else {},
            "failures": [f"{f['host']}: {f['task']}: {f['what']} — fix: {f['fix']}" for f in last.get("failures", [])],
        }

    def collect_logs(self, dest: Path) -> Path:
        dest = Path(dest) / "baremetal"
        dest.mkdir(parents=True, exist_ok=True)
        if self.runs_dir.exists():
            shutil.copytree(self.runs_dir, dest / "runs", dirs_exist_ok=True)
        if (self.state_dir / "inventory").exists():
            shutil.copytree(self.state_dir / "inventory", dest / "inventory", dirs_exist_ok=True)
        try:
            result = self.run_playbook("logs.yml", extravars={"appliance_logs_dest": str(dest / "hosts")})
            if not result.ok:
                (dest / "logs-errors.txt").write_text("\n".join(f.line() for f in result.failures) + "\n")
        except UserError as e:
            (dest / "logs-errors.txt").write_text(e.line() + "\n")
        return dest
