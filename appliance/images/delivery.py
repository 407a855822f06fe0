"""How a component's images reach the cluster's nodes (profile `cluster.images`). One seam, two sources:

- upstream: the component's pinned upstream reference; the nodes pull it (through `mirrors` if set).
- local: built here from source; imported into each node container (kind) or, when `registry` is
  set, pushed there for the nodes to pull (any provider, air-gapped sites).

`auto` takes upstream when every registry the profile's images come from answers (directly or
through its mirror), else local. Images without an upstream (our stub model images) are always local.
"""

from __future__ import annotations

import http.client
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

from appliance.images import registry as reg
from appliance.util import offline


@dataclass(frozen=True)
class ComponentImage:
    """One image a component runs: its pinned upstream reference ("" = ours only) and its local build."""

    name: str
    upstream: str
    build: Callable[[], tuple[str, Path]]
    aliases: tuple[str, ...] = ()


class DeliveryError(RuntimeError):
    pass


#: the registry host of images built here; never resolved, only loaded or mirrored
LOCAL_HOST = "appliance.local"
#: the taint that keeps ordinary pods off a control plane that has workers beside it (kind's, kubeadm's)
CONTROL_PLANE_TAINT = "node-role.kubernetes.io/control-plane"


@dataclass(frozen=True)
class Delivery:
    """The decided source (`upstream` | `local`) and the push registry; `why` says how it was chosen."""

    source: Literal["upstream", "local"]
    why: str = ""
    registry: str = ""

    def provide(self, kube, images: list[ComponentImage]) -> dict[str, str]:
        """Make `images` available to the nodes; returns name → the reference pod specs should use."""
        ready = self.prepare(images)
        ready.deliver(kube)
        return ready.refs

    def prepare(self, images: list[ComponentImage]) -> Prepared:
        """Each image's reference: its upstream one, or built here (cached); nothing reaches the nodes yet."""
        refs: dict[str, str] = {}
        built: dict[str, tuple[Path, tuple[str, ...]]] = {}  # ref -> (archive, aliases); one transfer per image
        for img in images:
            if self.source == "upstream" and img.upstream:
                refs[img.name] = img.upstream
                continue
            ref, archive = img.build()
            refs[img.name] = ref
            aliases = built[ref][1] if ref in built else ()
            built[ref] = (archive, tuple(dict.fromkeys(aliases + img.aliases)))
        return Prepared(self.registry, refs, built)


@dataclass(frozen=True)
class Prepared:
    """Images with their references decided (`refs`: name → reference for pod specs), the built ones not yet
    on the nodes."""

    registry: str
    refs: dict[str, str]
    built: dict[str, tuple[Path, tuple[str, ...]]]

    def deliver(self, kube, workers_only: set[str] = frozenset()) -> None:
        """Built images go to the registry when there is one, else into the nodes when they are local containers
        (kind); other nodes (`kube` None: no cluster yet) must pull or hold them. `workers_only`: references no
        pod on a control plane tainted NoSchedule can run (kind's, beside workers), which skip it."""
        if self.registry:
            for ref, (archive, aliases) in self.built.items():
                push(archive, ref, self.registry, aliases)
            return
        if not self.built or kube is None or not (nodes := node_containers(kube, listed := node_list(kube))):
            return
        workers = schedulable(listed, nodes)
        for ref, (archive, aliases) in self.built.items():
            only_workers = ref in workers_only and not aliases  # an alias is a name users' pods give it
            load_image_into_nodes(kube, archive, ref, list(aliases), workers if only_workers else nodes)


def push(archive: Path, ref: str, registry: str, aliases: tuple[str, ...] = ()) -> None:
    """Push a locally built image `appliance.local/<repo>:<tag>` (and its aliases' tags) to `registry`
    (a URL, or host[:port] = https) as <repo>:<tag>. The nodes keep the same references: their
    containerd maps the host `appliance.local` to that registry (a mirror the provider writes)."""
    endpoint = reg.Endpoint(registry)
    for r in (ref, *aliases):
        host, _, rest = r.partition("/")
        if host != LOCAL_HOST:
            raise DeliveryError(f"{r}: only {LOCAL_HOST}/ images are pushed")
        repo, tag = rest.rsplit(":", 1)
        try:
            reg.push_archive(archive, endpoint, repo, tag)
        except (OSError, http.client.HTTPException, reg.RegistryError) as e:
            raise DeliveryError(f"pushing {r} to {endpoint.url} failed ({type(e).__name__}: {e}); check that the registry "
                                "runs and this host reaches it (cluster.images.registry; http:// for plain HTTP)") from None


def node_mirrors(spec) -> dict[str, str]:
    """Registry host → endpoint the nodes' containerd uses: the profile's mirrors, plus
    `appliance.local` → the push registry when one is set."""
    out = dict(spec.mirrors)
    if spec.registry:
        out[LOCAL_HOST] = reg.Endpoint(spec.registry).url
    return out


def node_list(kube) -> list:
    """The cluster's Node objects."""
    from kubernetes import client

    return client.CoreV1Api(kube.api).list_node().items


def node_containers(kube, listed: list | None = None) -> list[str]:
    """Names of the cluster's nodes (`listed`, else read now) that are local Docker containers (kind makes
    node = container)."""
    names = [n.metadata.name for n in (node_list(kube) if listed is None else listed)]
    if not shutil.which("docker"):
        return []
    r = subprocess.run(["docker", "ps", "--format", "{{.Names}}"], capture_output=True, text=True, timeout=30)
    running = set(r.stdout.split())
    return [n for n in names if n in running]


def schedulable(listed: list, nodes: list[str]) -> list[str]:
    """Those of `nodes` that no control-plane taint (NoSchedule, on its Node in `listed`) keeps ordinary pods
    off; all, when every one has it."""
    tainted = {n.metadata.name for n in listed
               if any(t.key == CONTROL_PLANE_TAINT and t.effect == "NoSchedule" for t in n.spec.taints or [])}
    return [n for n in nodes if n not in tainted] or nodes


def load_image_into_nodes(kube, archive: Path, ref: str, aliases: list[str] | None = None, nodes: list[str] | None = None) -> list[str]:
    """Import a docker-archive into containerd (namespace k8s.io) of every node container (or of `nodes`) that
    lacks `ref` (what `kind load image-archive` does), all nodes at once, and point `aliases` at it. Returns the
    nodes loaded."""
    from concurrent.futures import ThreadPoolExecutor

    nodes = node_containers(kube) if nodes is None else nodes
    if not nodes:
        raise DeliveryError(f"no node of this cluster is a local Docker container; cannot load {ref} "
                            "(set cluster.images.registry for the nodes to pull from)")
    with ThreadPoolExecutor(len(nodes)) as pool:
        loaded = list(pool.map(lambda node: _load_into_node(node, archive, ref, aliases or []), nodes))
    return [node for node, did in zip(nodes, loaded, strict=True) if did]


def _load_into_node(node: str, archive: Path, ref: str, aliases: list[str]) -> bool:
    """Import `archive` into NODE unless it holds `ref`, then tag `aliases`; whether it imported."""
    have = subprocess.run(["docker", "exec", node, "ctr", "-n", "k8s.io", "images", "ls", "-q", f"name=={ref}"],
                          capture_output=True, text=True, timeout=60)
    imported = not (have.returncode == 0 and ref in have.stdout.split())
    if imported:
        with open(archive, "rb") as f:
            r = subprocess.run(["docker", "exec", "-i", node, "ctr", "-n", "k8s.io", "images", "import",
                                "--all-platforms", "--digests", "--snapshotter=overlayfs", "-"],
                               stdin=f, capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise DeliveryError(f"loading {ref} into node {node} failed: {(r.stderr or r.stdout).strip()[-500:]}")
    for alias in aliases:
        r = subprocess.run(["docker", "exec", node, "ctr", "-n", "k8s.io", "images", "tag", "--force", ref, alias],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise DeliveryError(f"tagging {ref} as {alias} on node {node} failed: {(r.stderr or r.stdout).strip()[-300:]}")
    return imported


def registries(upstreams: list[str]) -> list[str]:
    return sorted({reg.registry_of(u) for u in upstreams if u})


def decide(spec, upstreams: list[str]) -> Delivery:
    """Resolve `spec.source` (auto | upstream | local) for images pinned to `upstreams`."""
    if spec.source == "upstream":
        offline.refuse("pulling images upstream (cluster.images.source=upstream)")
    if spec.source != "auto":
        return Delivery(spec.source, f"set by cluster.images.source={spec.source}", spec.registry)
    if offline.active():
        return Delivery("local", "offline: images built here, from the bundle", spec.registry)
    if not upstreams:
        return Delivery("local", "no component image has an upstream reference", spec.registry)
    for host in registries(upstreams):
        ok, why = reg.Endpoint(reg.endpoint_for(host, spec.mirrors)).answers()
        if not ok:
            return Delivery("local", f"{host} unreachable ({why}): building images here", spec.registry)
    return Delivery("upstream", f"{', '.join(registries(upstreams))} reachable: pulling pinned upstream images", spec.registry)


class Images:
    """A profile's image settings for its components, decided once, on first use (auto probes)."""

    def __init__(self, spec, upstreams: list[str]):
        self.spec, self.upstreams = spec, upstreams
        self._decided: Delivery | None = None
        self._lock = threading.Lock()

    def decision(self) -> Delivery:
        with self._lock:
            if self._decided is None:
                self._decided = decide(self.spec, self.upstreams)
            return self._decided

    def prepare(self, images: list[ComponentImage]) -> Prepared:
        return self.decision().prepare(images)
