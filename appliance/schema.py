"""Profile schema: pure data, validated with pydantic (unknown keys are errors)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from appliance.util.provider_names import PROVIDERS

#: a provider's name (one of appliance.util.provider_names.PROVIDERS)
ProviderName = Literal[PROVIDERS]

_QTY = re.compile(r"^\d+(\.\d+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _quantity(v: Any) -> str:
    s = str(v)
    if not _QTY.match(s):
        raise ValueError(f"'{s}' is not a Kubernetes quantity (e.g. 500m, 2, 512Mi, 2Ti)")
    return s


class NodeClass(Strict):
    """A kind of simulated node (simulator) or expected node shape."""

    name: str
    count: int = Field(1, ge=0)
    cpu: str = "8"
    memory: str = "32Gi"
    pods: int = Field(110, ge=1)
    gpus: int = Field(0, ge=0)
    gpu_product: str = ""
    gpu_memory_mib: int = Field(0, ge=0)
    gpu_family: str = ""
    mig_strategy: Literal["none", "single", "mixed"] = "none"
    mig_config: str = Field("", description="simulator: every GPU's MIG layout, as nvidia-mig-parted names it: all-<profile> "
                            "(all-1g.10gb), all-balanced, or <profile>=<n>,… per GPU; needs mig_strategy single (one profile) or mixed")
    cuda_driver_version: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    taints: list[str] = Field(default_factory=list)

    _q = field_validator("cpu", "memory", mode="before")(classmethod(lambda cls, v: _quantity(v)))


class SimSpec(Strict):
    """Simulator knobs."""

    pod_startup_seconds: float = Field(0.0, ge=0)
    pod_run_seconds: float = Field(5.0, ge=0, description="how long a pod of a Job runs before it Succeeds")
    apiserver_port: int = Field(0, ge=0, le=65535, description="0 = pick a free port")
    scheduler_scoring: Literal["MostAllocated", "LeastAllocated"] = Field(
        "MostAllocated", description="MostAllocated bin-packs GPUs onto the fullest nodes (what GPU clusters want)")
    sizing: Literal["auto", "small", "large"] = Field(
        "auto", validation_alias=AliasChoices("sizing", "tuning"),  # `tuning`: its former name, still read
        description="control-plane settings by cluster size: auto follows the node count (large from 100 nodes); large forces the 1,000-node settings")


class KindSpec(Strict):
    """kind knobs."""

    image: str = ""
    port_mappings: list[dict[str, Any]] = Field(default_factory=list)
    extra_mounts: list[dict[str, Any]] = Field(default_factory=list)
    feature_gates: dict[str, bool] = Field(default_factory=dict)
    gpus: Literal["auto", "all", "none"] = Field(
        "auto", description="auto: split host GPUs across workers (nvkind-style); all: every GPU node sees all; none"
    )


class BaremetalHost(Strict):
    """One machine of a bare-metal cluster (`cluster.baremetal.hosts`)."""

    name: str
    address: str
    user: str = "root"
    port: int = 22
    role: Literal["control-plane", "worker"] = "control-plane"
    vars: dict[str, Any] = Field(default_factory=dict)


class BaremetalSpec(Strict):
    """Bare-metal knobs."""

    inventory: str = Field("", description="path to your own Ansible inventory; empty = generated from hosts")
    hosts: list[BaremetalHost] = Field(default_factory=list)
    offline: bool = False
    mig_profile: str = ""
    gpu_stack: Literal["operator", "device-plugin", "none"] = "device-plugin"


_URL = re.compile(r"^(https?://)?[A-Za-z0-9.-]+(:[0-9]{1,5})?/?$")


class ImagesSpec(Strict):
    """Where component images come from (appliance/images/delivery.py)."""

    source: Literal["auto", "upstream", "local"] = Field(
        "auto", description="upstream: pull the pinned upstream images; local: build them here; auto: upstream when its registries answer")
    registry: str = Field("", description="local: push built images to this registry (URL or host:port) and let nodes pull them")
    mirrors: dict[str, str] = Field(default_factory=dict, description="registry host -> mirror URL the nodes pull through (e.g. docker.io: http://10.0.0.5:5000)")

    @field_validator("registry")
    @classmethod
    def _registry(cls, v: str) -> str:
        if v and not _URL.match(v):
            raise ValueError(f"'{v}' is not a registry address (host[:port] or http(s)://host[:port])")
        return v.rstrip("/")

    @field_validator("mirrors")
    @classmethod
    def _mirrors(cls, v: dict[str, str]) -> dict[str, str]:
        for host, url in v.items():
            if not url.startswith(("http://", "https://")) or not _URL.match(url):
                raise ValueError(f"mirror of '{host}': '{url}' must be an http(s)://host[:port] URL")
        return {h: u.rstrip("/") for h, u in v.items()}


class ClusterSpec(Strict):
    """Where and what shape: provider-neutral plus one section per provider."""

    name: str = "appliance"
    control_planes: int = Field(1, ge=1)
    workers: int = Field(0, ge=0)
    node_classes: list[NodeClass] = Field(default_factory=list)
    sim: SimSpec = Field(default_factory=SimSpec)
    kind: KindSpec = Field(default_factory=KindSpec)
    baremetal: BaremetalSpec = Field(default_factory=BaremetalSpec)
    images: ImagesSpec = Field(default_factory=ImagesSpec)
    bundle: str = Field("", description="a bundle file (appliance bundle create) `up` fills the caches from, then runs offline")

    @field_validator("name")
    @classmethod
    def _dns(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?", v):
            raise ValueError(f"'{v}' must be a lowercase DNS label (a-z, 0-9, '-'), at most 42 characters")
        return v


class ComponentSpec(Strict):
    """One component's switch and options (options are checked by the component)."""

    enabled: bool = True
    depends_on: list[str] = Field(default_factory=list, description="extra components to install first")
    options: dict[str, Any] = Field(default_factory=dict)


class Profile(Strict):
    """A whole profile after `extends:` and `--set` are applied."""

    name: str
    description: str = ""
    extends: str | None = None
    provider: Literal[("auto", *PROVIDERS)] = "auto"
    cluster: ClusterSpec = Field(default_factory=ClusterSpec)
    components: dict[str, ComponentSpec] = Field(default_factory=dict)
    provider_overrides: dict[ProviderName, dict[str, Any]] = Field(
        default_factory=dict, description="partial profile merged in when that provider is chosen (e.g. sim: controllers as host processes)")
