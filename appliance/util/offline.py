"""Offline mode ($APPLIANCE_OFFLINE=1, set by `up --bundle`): everything must come from the caches; a step that
would fetch or build from the network says what is missing instead of trying."""

from __future__ import annotations

import os

from appliance.errors import UserError
from appliance.util.env import environment

ENV = "APPLIANCE_OFFLINE"


def active() -> bool:
    return os.environ.get(ENV, "") not in ("", "0")


def refuse(what: str) -> None:
    """Raise, in offline mode, that `what` (needing the network) is not in the caches; no-op otherwise."""
    if active():
        raise UserError(f"{what} is not in the bundle or the caches, and this run is offline ({ENV}=1)", "bundle",
                        "make the bundle again on a connected machine, for this profile and provider, with this appliance version",
                        code=2)


def enabled():
    """Offline mode inside the block (and in the processes started there)."""
    return environment({ENV: "1"})
