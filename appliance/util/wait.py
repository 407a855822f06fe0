"""The one wait: poll a readiness check until it passes or the time runs out, then say what is missing."""

from __future__ import annotations

import time
from typing import Callable

from appliance.errors import UserError


def until(check: Callable[[], tuple[bool, str]], timeout: float, what: str, poll: float = 2.0,
          fix: str = "see `appliance status` and the pods' events; `appliance up` resumes here") -> None:
    """Poll `check() -> (ok, missing)`. An exception from the check (the API briefly away while things
    start) counts as not ready, with its first line as what is missing."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            ok, missing = check()
        except Exception as e:  # noqa: BLE001 — reported if it lasts
            ok, missing = False, f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
        if ok:
            return
        if time.monotonic() >= deadline:
            raise UserError(f"not ready after {timeout:.0f}s: {missing or 'readiness check failed'}", what, fix)
        time.sleep(poll)
