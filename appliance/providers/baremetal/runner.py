"""ansible-runner driving: where the playbooks and Ansible programs are, one run with its
artifacts kept under runs/<ident>/, one report line per host and task, failures mapped to a fix."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import sysconfig
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from appliance import paths
from appliance.errors import UserError

KEEP_RUNS = 10


def playbooks_dir() -> Path:
    """The playbooks folder: $APPLIANCE_PLAYBOOKS, else the appliance's `playbooks/` (checkout or wheel)."""
    env = os.environ.get("APPLIANCE_PLAYBOOKS")
    for cand in ([Path(env)] if env else []) + [paths.shipped("playbooks")]:
        if (cand / "site.yml").exists():
            return cand
    raise UserError("the bare-metal playbooks are missing", where=str(paths.shipped("playbooks")),
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
        # a no_log result is censored, its `changed` too: the callback's own line still says it
        changed = res.get("changed") if "censored" not in res else (event.get("stdout") or "").lstrip().startswith("changed:")
        if status == "ok" and changed:
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


def run(playbook: str, *, private: Path, runs_dir: Path, ident: str, inventory: list[str], extravars: dict[str, Any],
        tags: list[str] | None, limit: str | None, hostinfo: dict[str, dict],
        report: Callable[[str], None]) -> RunResult:
    """Run one playbook through ansible-runner; never raises on Ansible failures (see RunResult)."""
    import ansible_runner

    pb_dir = playbooks_dir()
    runs_dir.mkdir(parents=True, exist_ok=True)
    private.mkdir(exist_ok=True)
    handler = _Events(report, hostinfo)
    envvars = {**ansible_envvars(pb_dir), "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCAL_TEMP": str(private / "tmp")}
    if os.environ.get("APPLIANCE_SSH_HOST_KEY_CHECKING", "").lower() in ("0", "false", "no"):
        envvars["ANSIBLE_HOST_KEY_CHECKING"] = "False"
    t0 = time.monotonic()
    r = ansible_runner.run(
        private_data_dir=str(private),
        project_dir=str(pb_dir),
        artifact_dir=str(runs_dir),
        ident=ident,
        playbook=playbook,
        inventory=inventory,
        extravars=extravars,
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
        seconds=round(time.monotonic() - t0, 2), artifacts=str(runs_dir / ident),
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
    Path(result.artifacts).mkdir(parents=True, exist_ok=True)
    Path(result.artifacts, "summary.json").write_text(json.dumps(result.to_dict(), indent=2))
    return result
