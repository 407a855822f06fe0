"""Bare-metal provider: Ansible playbooks (playbooks/) run through ansible-runner.

The inventory (inventory.py) is generated from the profile's `cluster.baremetal.hosts` (or the
user's own inventory file is used, with the appliance's defaults layered under it). Every run
(runner.py) keeps its artifacts under <state_dir>/runs/<ident>/, streams one line per host and
task to `report`, and maps failures to one line per host with a fix. Roles are idempotent, so a
failed run is resumed by running it again.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from appliance.errors import UserError
from appliance.providers.baremetal import runner
from appliance.providers.baremetal.inventory import Inventory
from appliance.providers.baremetal.runner import RunResult
from appliance.providers.base import ClusterInfo, Provider
from appliance.toolchain import Toolchain


class BaremetalProvider(Provider):
    """Bootstraps GPU servers with the appliance's Ansible playbooks."""

    name = "baremetal"
    disposable = False  # the hosts stay: each component is removed from them
    needs_kernel = True
    e2e_profile = "dgx"
    not_bundled = ("the components' images reach its hosts only through a registry, which a bundle does not carry yet "
                   "(an offline converge takes the hosts' packages, binaries and control-plane images from this machine's caches)")
    fixed_nodes = ""

    def __init__(self, spec: Any, state_dir: Path, report=None):
        super().__init__(spec, state_dir, report)
        self.inventory = Inventory(spec, self.state_dir, self.report)
        self.bm = self.inventory.bm
        self.cluster_name = self.inventory.cluster_name
        self.inventory.check_addresses()

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

    # -- running playbooks

    def run_playbook(self, playbook: str = "site.yml", tags: list[str] | None = None, limit: str | None = None,
                     extravars: dict[str, Any] | None = None, ident: str | None = None) -> RunResult:
        """Run one playbook on the inventory; never raises on Ansible failures (see RunResult)."""
        ok, why = self.available()
        if not ok:
            raise UserError(why, where="bare-metal provider", fix="pip install ansible-runner ansible-core")
        inventory = self.inventory.write()
        ident = ident or time.strftime("%Y%m%dT%H%M%S") + f"-{Path(playbook).stem}"
        self.report(f"ansible: {playbook} on {', '.join(h.name for h in self.bm.hosts) or 'inventory hosts'}"
                    f" (artifacts: {self.runs_dir / ident})")
        result = runner.run(
            playbook, private=self.state_dir / "ansible", runs_dir=self.runs_dir, ident=ident, inventory=inventory,
            extravars={"appliance_kubeconfig_dest": str(self.kubeconfig_path), **(extravars or {})},
            tags=tags, limit=limit, hostinfo=self.inventory.hostinfo(), report=self.report,
        )
        (self.state_dir / "last-run.json").write_text(json.dumps(result.to_dict(), indent=2))
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

    def prebuild(self) -> None:
        """What an offline converge takes from this host (the toolchain's binaries, control-plane images)."""
        self.inventory.offline_inputs()

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

    def remove_node(self, node: str) -> None:
        """Reset the server `node` (kubeadm reset and what site.yml left of the cluster; packages stay): it may
        leave, or join again at the next converge while it is still among the hosts."""
        result = self.run_playbook("reset.yml", limit=node)
        if not result.ok:
            raise self._error(result)
        if any(h.name == node for h in self.bm.hosts):
            self.report(f"{node} reset; remove it from cluster.baremetal.hosts, or the next `appliance up` joins it again")

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
