"""The tracking component. `__all__` is what code outside appliance.components may use; the rest is the kit's."""

from __future__ import annotations

from appliance.components.kit import node_port_url

__all__ = ["address"]


def address(options, kube, port_mappings: list[dict]) -> str:
    """Where a person on the host reaches the tracking server (MLFLOW_TRACKING_URI; `port_mappings`: the provider's)."""
    return node_port_url(kube, options.node_port, port_mappings).rstrip("/")
