"""Provider registry: name -> implementation, imported lazily."""

from __future__ import annotations

import importlib
from typing import Any

from appliance.errors import UserError
from appliance.providers.base import ClusterInfo, ColdBuild, Provider

#: name -> "module:class", in the order of appliance.util.provider_names.PROVIDERS (a unit test checks)
_REGISTRY = {
    "sim": "appliance.providers.sim:SimProvider",
    "kind": "appliance.providers.kind:KindProvider",
    "baremetal": "appliance.providers.baremetal:BaremetalProvider",
}

NAMES = tuple(_REGISTRY)


def get(name: str) -> type[Provider]:
    """The provider class called `name`."""
    if name not in _REGISTRY:
        raise UserError(f"unknown provider '{name}'", "--provider", f"use one of: {', '.join(NAMES)}", code=2)
    module, _, cls = _REGISTRY[name].partition(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except ImportError as e:
        raise UserError(f"provider '{name}' cannot load: {e}", module, "reinstall with `make clean && make up` (pip install -e .)") from None


def auto(docker: dict[str, Any]) -> tuple[str, str]:
    """The provider `provider: auto` picks on a host whose Docker is `docker` (host.docker()), and why: the first,
    by auto_order, that gives a reason."""
    ranked = sorted((c for c in map(get, NAMES) if c.auto_order is not None), key=lambda c: c.auto_order)
    return next((c.name, why) for c in ranked if (why := c.auto_reason(docker)))


__all__ = ["ClusterInfo", "ColdBuild", "Provider", "NAMES", "auto", "get"]
