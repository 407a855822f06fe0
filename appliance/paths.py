"""Where the appliance keeps things on the host (all overridable by environment)."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Iterator

_recorders: list[dict[str, set]] = []
_recording = threading.Lock()
_probing = threading.local()


def cache_dir(*parts: str) -> Path:
    """Built artifacts, keyed by version: $APPLIANCE_CACHE or ~/.cache/appliance."""
    base = os.environ.get("APPLIANCE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "appliance"
    )
    return note("paths", Path(base, *parts))


def note(kind: str, item):
    """Mark `item` used (kind "paths": a cache path; "docker": an image tag the daemon holds) for whoever records."""
    if getattr(_probing, "on", False):
        return item
    with _recording:
        for r in _recorders:
            r.setdefault(kind, set()).add(item)
    return item


@contextlib.contextmanager
def probing() -> Iterator[None]:
    """Look at the caches without using them (what would have to be built?): nothing inside is recorded."""
    _probing.on = True
    try:
        yield
    finally:
        _probing.on = False


@contextlib.contextmanager
def recording() -> Iterator[dict[str, set]]:
    """Collect what is used of this host's caches inside the block ({kind: {item}}): what a bundle packs."""
    seen: dict[str, set] = {}
    with _recording:
        _recorders.append(seen)
    try:
        yield seen
    finally:
        with _recording:
            _recorders.remove(seen)


def state_dir(cluster: str = "") -> Path:
    """Per-cluster state: $APPLIANCE_STATE or ~/.local/state/appliance/<cluster>."""
    base = os.environ.get("APPLIANCE_STATE") or os.path.join(
        os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "appliance"
    )
    return Path(base, cluster) if cluster else Path(base)


def config_dir(*parts: str) -> Path:
    """The operator's configuration (trusted bundle keys): $APPLIANCE_CONFIG or ~/.config/appliance."""
    base = os.environ.get("APPLIANCE_CONFIG") or os.path.join(os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config"), "appliance")
    return Path(base, *parts)


PACKAGE = Path(__file__).resolve().parent
#: the checkout's folders the package reads at run time; a wheel carries a copy of each in appliance/_data (setup.py)
SHIPPED = ("images", "profiles", "playbooks", "e2e")


def shipped(*parts: str) -> Path:
    """A file of the appliance's own, named by its path in the checkout (`images/node/gpu-setup.sh`): from the
    checkout when run from one, else from the installed wheel's copy (`appliance/...` paths: the package itself)."""
    rel = Path(*parts)
    root = PACKAGE.parent
    if rel.parts[0] != PACKAGE.name and not (root / "pyproject.toml").is_file():
        root = PACKAGE / "_data"
    return root / rel
