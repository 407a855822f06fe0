"""Day two for nodes: drain one (cordoned, its pods evicted with PodDisruptionBudgets respected) and remove one
(drained, deleted from the cluster, its host undone by the provider: a bare-metal server is reset, ready to
leave or to join again)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Callable

from appliance.errors import UserError
from appliance.toolchain import Toolchain


def _kubectl(kubeconfig: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    cmd = [str(Toolchain().path("kubectl")), "--kubeconfig", str(kubeconfig), *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise UserError(f"kubectl {args[0]} did not finish in {timeout:.0f} s", "appliance node",
                        "check that the cluster answers (`appliance status`) and run again") from None


def nodes(kubeconfig: Path) -> dict[str, dict]:
    """The cluster's nodes by name."""
    r = _kubectl(kubeconfig, "get", "nodes", "-o", "json")
    if r.returncode != 0:
        raise UserError(f"the cluster does not answer: {r.stderr.strip()[-200:]}", str(kubeconfig), "check `appliance status`")
    return {n["metadata"]["name"]: n for n in json.loads(r.stdout)["items"]}


def _known(kubeconfig: Path, node: str) -> dict:
    found = nodes(kubeconfig)
    if node not in found:
        raise UserError(f"no node named '{node}'", "NODE", f"give one of: {', '.join(sorted(found))}", code=2)
    return found[node]


def drain(kubeconfig: Path, node: str, report: Callable[[str], None], timeout: int = 300) -> None:
    """Cordon `node` and evict its pods (DaemonSets' stay; emptyDir data goes with its pod); an eviction a
    PodDisruptionBudget refuses is tried again until `timeout`."""
    _known(kubeconfig, node)
    _evict(kubeconfig, node, report, timeout)


def _evict(kubeconfig: Path, node: str, report: Callable[[str], None], timeout: int) -> None:
    report(f"draining {node}: cordoned, its pods evicted (PodDisruptionBudgets respected, up to {timeout} s)")
    r = _kubectl(kubeconfig, "drain", node, "--ignore-daemonsets", "--delete-emptydir-data", f"--timeout={timeout}s",
                 timeout=timeout + 60)
    if r.returncode != 0:
        raise _stopped(node, r.stderr)
    report(f"{node} drained")


def remove(provider, kubeconfig: Path, node: str, report: Callable[[str], None], timeout: int = 300) -> None:
    """Drain `node`, delete it from the cluster, then undo it on its host (the provider's part)."""
    known = _known(kubeconfig, node)
    if "node-role.kubernetes.io/control-plane" in known["metadata"].get("labels", {}):
        raise UserError(f"{node} is a control plane", "appliance node remove",
                        "remove workers only: the appliance runs one control plane, which holds the cluster", code=2)
    if provider.fixed_nodes:
        provider.remove_node(node)  # says why not, before anything is drained
    _evict(kubeconfig, node, report, timeout)
    r = _kubectl(kubeconfig, "delete", "node", node, "--wait=true")
    if r.returncode != 0 and "NotFound" not in r.stderr:
        raise UserError(f"deleting node {node} failed: {r.stderr.strip()[-200:]}", "appliance node remove", "run it again")
    report(f"{node} deleted from the cluster; resetting its host")
    provider.remove_node(node)


def _stopped(node: str, stderr: str) -> UserError:
    """Why kubectl's drain stopped, and what to do, in one line."""
    lines = [ln for ln in stderr.strip().splitlines() if ln.startswith("error")] or stderr.strip().splitlines() or ["no output"]
    if bare := re.search(r"declare no controller[^:]*: (.+?)(, continuing|$)", stderr):
        fix = f"delete them yourself (nothing makes them again), then run again: {bare.group(1)}"
    elif "disruption budget" in stderr or "timed out" in stderr:
        fix = "a PodDisruptionBudget holds a pod (`kubectl get pdb -A`): scale that workload up and run again"
    else:
        fix = "run again once the cluster answers (`appliance status`)"
    return UserError(f"draining {node} stopped: {lines[-1][:300]}", "appliance node drain",
                     f"{fix}; {node} stays cordoned meanwhile (`kubectl uncordon {node}` takes it back)")
