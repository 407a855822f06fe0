"""How a component's images reach the cluster's nodes (profile `cluster.images`). One seam, two sources:

- upstream: the component's pinned upstream reference; the nodes pull it (through `mirrors` if set).
- local: built here from source; imported into each node container (kind) or, when `registry` is
  set, pushed there for the nodes to pull (any provider, air-gapped sites).

`auto` takes upstream when every registry the profile's images come from answers (directly or
through its mirror), else local. Images without an upstream (our stub model images) are always local.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

from appliance.images import registry as reg


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


@dataclass(frozen=True)
class Delivery:
    """The decided source (`upstream` | `local`) with the registry settings; `why` says how it was chosen."""

    source: Literal["upstream", "local"]
    why: str = ""
    registry: str = ""
    mirrors: tuple[tuple[str, str], ...] = ()

    def provide(self, kube, images: list[ComponentImage], load: str = "auto") -> dict[str, str]:
        """Make `images` available to the nodes; returns name → the reference pod specs should use.
        `load` (local, no registry): node-containers | none | auto (node-containers when the nodes are
        local containers)."""
        refs: dict[str, str] = {}
        built: list[tuple[ComponentImage, str, Path]] = []
        for img in images:
            if self.source == "upstream" and img.upstream:
                refs[img.name] = img.upstream
            else:
                ref, archive = img.build()
                built.append((img, ref, archive))
                refs[img.name] = ref
        if not built:
            return refs
        if self.registry:
            for img, ref, archive in built:
                push(archive, ref, self.registry, img.aliases)
            return refs
        if load == "none":
            return refs
        from appliance.components import builds

        if load == "node-containers" or builds.node_containers(kube):
            for img, ref, archive in built:
                builds.load_image_into_nodes(kube, archive, ref, list(img.aliases))
        return refs


def push(archive: Path, ref: str, registry: str, aliases: tuple[str, ...] = ()) -> None:
    """Push a locally built image `appliance.local/<repo>:<tag>` (and its aliases' tags) to `registry`
    (a URL, or host[:port] = https) as <repo>:<tag>. The nodes keep the same references: their
    containerd maps the host `appliance.local` to that registry (a mirror the provider writes)."""
    endpoint = reg.Endpoint(registry if "://" in registry else f"https://{registry}")
    for r in (ref, *aliases):
        host, _, rest = r.partition("/")
        if host != LOCAL_HOST:
            raise DeliveryError(f"{r}: only {LOCAL_HOST}/ images are pushed")
        repo, tag = rest.rsplit(":", 1)
        reg.push_archive(archive, endpoint, repo, tag)


def node_mirrors(spec) -> dict[str, str]:
    """Registry host → endpoint the nodes' containerd uses: the profile's mirrors, plus
    `appliance.local` → the push registry when one is set."""
    out = dict(spec.mirrors)
    if spec.registry:
        out[LOCAL_HOST] = spec.registry if "://" in spec.registry else f"https://{spec.registry}"
    return out


def registries(upstreams: list[str]) -> list[str]:
    return sorted({reg.registry_of(u) for u in upstreams if u})


def decide(spec, upstreams: list[str]) -> Delivery:
    """Resolve `spec.source` (auto | upstream | local) for images pinned to `upstreams`."""
    mirrors = dict(spec.mirrors)
    common = {"registry": spec.registry, "mirrors": tuple(sorted(mirrors.items()))}
    if spec.source != "auto":
        return Delivery(spec.source, f"set by cluster.images.source={spec.source}", **common)
    if not upstreams:
        return Delivery("local", "no component image has an upstream reference", **common)
    for host in registries(upstreams):
        ok, why = reg.Endpoint(reg.endpoint_for(host, mirrors)).answers()
        if not ok:
            return Delivery("local", f"{host} unreachable ({why}): building images here", **common)
    return Delivery("upstream", f"{', '.join(registries(upstreams))} reachable: pulling pinned upstream images", **common)


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

    def provide(self, kube, images: list[ComponentImage], load: str = "auto") -> dict[str, str]:
        return self.decision().provide(kube, images, load)
