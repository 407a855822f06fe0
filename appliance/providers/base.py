"""The provider seam: make, describe and destroy a cluster; hand back a kubeconfig."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.runtime import Runtime

#: admission plugins every provider's API server enables beyond the defaults: DenyServiceExternalIPs refuses
#: any Service's `externalIPs` (CVE-2020-8554: kube-proxy would send that address's traffic — another pod's,
#: a node's kubelet — to whoever wrote the Service). playbooks/roles/kubernetes/defaults/main.yml lists the same.
ADMISSION_PLUGINS = ("NodeRestriction", "DenyServiceExternalIPs")


@dataclass
class ClusterInfo:
    """What a provider hands back: where the API is and what the nodes look like."""

    name: str
    kubeconfig: Path
    context: str = ""
    nodes: list[dict[str, Any]] = field(default_factory=list)


class Provider(abc.ABC):
    """One way to get a Kubernetes cluster (kind, bare metal, simulator).

    `spec` is the profile's validated `cluster` section, `state_dir` is the
    cluster's private folder (~/.local/state/appliance/<cluster>/), `report`
    is a callable taking one progress message.
    """

    name: str = ""
    #: can the nodes run pods' containers? Where not (the simulator), controllers run as host processes
    pods_run: bool = True

    @classmethod
    def runtime(cls) -> Runtime:
        """Where components' workloads run on its clusters: as pods, or on the host where pods do not run."""
        return Runtime(pods_run=cls.pods_run)

    def __init__(self, spec: Any, state_dir: Path, report=None):
        self.spec = spec
        self.state_dir = Path(state_dir)
        self.report = report or (lambda msg: None)

    @classmethod
    def available(cls) -> tuple[bool, str]:
        """Whether this host can run the provider, and why (one line)."""
        return True, ""

    @classmethod
    def footprint(cls, spec: Any) -> tuple[int, int]:
        """Host CPU (millicores) and memory (MiB) the bare cluster needs before any component."""
        return spec.control_planes * 1000 + spec.workers * 250, spec.control_planes * 1536 + spec.workers * 512

    @abc.abstractmethod
    def prebuild(self) -> None:
        """Build or fetch, with no cluster, what create() needs on this host (cached: instant when warm)."""

    @abc.abstractmethod
    def create(self) -> ClusterInfo:
        """Create the cluster or finish a half-made one; idempotent; returns when nodes are Ready."""

    @abc.abstractmethod
    def ready(self) -> bool:
        """Cheap check: does the cluster exist and answer?"""

    @abc.abstractmethod
    def delete(self) -> None:
        """Remove the cluster and everything it left on the host."""

    @abc.abstractmethod
    def status(self) -> dict[str, Any]:
        """Provider-specific facts (processes, containers, nodes) as plain data."""

    @abc.abstractmethod
    def collect_logs(self, dest: Path) -> Path:
        """Write logs and cluster state under `dest`; return the folder."""
