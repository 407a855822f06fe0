"""The notebooks component. `__all__` is what code outside appliance.components may use; the rest is the kit's."""

from __future__ import annotations

from appliance.components.notebooks.hooks import _hub_url, _password

__all__ = ["login"]


def login(options, kube, user: str, port_mappings: list[dict]) -> dict[str, str]:
    """The hub's address and `user`'s generated login (`port_mappings`: the provider's, Provider.port_mappings)."""
    return {"url": _hub_url(options, kube, port_mappings), "username": user, "password": _password(kube, user)}
