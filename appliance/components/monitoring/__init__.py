"""The monitoring component. `__all__` is what code outside appliance.components may use; the rest is the kit's."""

from __future__ import annotations

from appliance.components.monitoring.hooks import _rules_text

__all__ = ["rules_text"]


def rules_text(options) -> str:
    """The alert rules Prometheus loads for these options (the shipped rules filled in, plus `extra_rules`)."""
    return _rules_text(options)
