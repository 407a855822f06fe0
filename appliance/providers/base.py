"""The provider seam: make, describe and destroy a cluster; hand back a kubeconfig."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.errors import UserError
from appliance.host import Need
from appliance.runtime import Runtime

#: admission plugins every provider's API server enables beyond the defaults: DenyServiceExternalIPs refuses
#: any Service's `externalIPs` (CVE-2020-8554: kube-proxy would send that address's traffic — another pod's,
#: a node's kubelet — to whoever wrote the Service). playbooks/roles/kubernetes/defaults/main.yml lists the same.
ADMISSION_PLUGINS = ("NodeRestriction", "DenyServiceExternalIPs")


@dataclass
class ColdBuild:
    """What prebuild() does on a host whose caches are cold, for `up` to check and estimate (appliance.prereqs)."""

    #: Debian root filesystems it debootstraps: name -> packages
    rootfs: dict[str, list[str]] = field(default_factory=dict)
    #: host programs it runs that the caches do not spare it, each with why
    programs: list[tuple[Need, str]] = field(default_factory=list)
    #: toolchain programs it fetches or builds (appliance.toolchain names)
    tools: list[str] = field(default_factory=list)
    #: Go programs it builds: (module, version, name)
    go: list[tuple[str, str, str]] = field(default_factory=list)
    #: its other builds the caches lack (names of progress.COST_2CPU)
    builds: list[str] = field(default_factory=list)


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
    #: does the cluster run in Docker? (doctor fails without a daemon, warns on low inotify limits)
    needs_docker: bool = False
    #: do its nodes need this host's kernel functions (overlay, br_netfilter)? (doctor fails without them)
    needs_kernel: bool = False
    #: every host program prebuild() may run (host-setup installs them)
    programs: tuple[Need, ...] = ()
    #: does delete() take along all that components put in the cluster (its nodes are its own)? Then `down` only
    #: stops the components' host processes before it, instead of removing each component (bare metal: no)
    disposable: bool = True
    #: the profile `appliance e2e` uses here when none is given
    e2e_profile: str = "ci"
    #: where `provider: auto` looks (lowest first); None: never chosen automatically
    auto_order: int | None = None
    #: why a bundle (appliance bundle create) cannot carry everything its clusters need; "" where it can
    not_bundled: str = ""
    #: why its nodes cannot be removed one at a time (appliance node remove); "" where they can
    fixed_nodes: str = "its nodes are made with the cluster, from cluster.workers and node_classes"

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
    def auto_reason(cls, docker: dict[str, Any]) -> str:
        """Why `provider: auto` picks this provider on a host whose Docker is `docker` (host.docker()); "" if not."""
        return ""

    @classmethod
    def cold_build(cls, spec: Any) -> ColdBuild:
        """What prebuild() would do for `spec` with cold caches."""
        return ColdBuild()

    @classmethod
    def port_mappings(cls, spec: Any) -> list[dict[str, Any]]:
        """Host addresses and ports mapped to the nodes' ports (container_port, host_port, listen_address), through
        which a user on the host reaches a NodePort; none where a node's own address serves it."""
        return []

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

    def remove_node(self, node: str) -> None:
        """Undo a node on its host once it left the cluster (drained and deleted there)."""
        raise UserError(f"the {self.name} provider cannot remove a node: {self.fixed_nodes}", "appliance node remove",
                        "change the profile and make the cluster again (`appliance down`, then `appliance up`)", code=2)

    @abc.abstractmethod
    def collect_logs(self, dest: Path) -> Path:
        """Write logs and cluster state under `dest`; return the folder."""
