"""Where the appliance keeps things on the host (all overridable by environment)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """Built artifacts, keyed by version: $APPLIANCE_CACHE or ~/.cache/appliance."""
    base = os.environ.get("APPLIANCE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "appliance"
    )
    return Path(base, *parts)


def state_dir(cluster: str = "") -> Path:
    """Per-cluster state: $APPLIANCE_STATE or ~/.local/state/appliance/<cluster>."""
    base = os.environ.get("APPLIANCE_STATE") or os.path.join(
        os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "appliance"
    )
    return Path(base, cluster) if cluster else Path(base)
