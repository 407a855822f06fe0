"""The one wait: poll a readiness check until it passes, the time runs out or what it waits on died,
then say what is missing."""

from __future__ import annotations

import time
from typing import Callable

from appliance.errors import UserError

Check = Callable[[], tuple[bool, str]]


class Died(Exception):
    """`alive()` gave a reason to stop waiting at once (the process waited on exited)."""


def within(check: Check, timeout: float, *, interval: float = 2.0, factor: float = 1.0, cap: float | None = None,
           alive: Callable[[], str | None] | None = None, lenient: bool = False,
           sleep: Callable[[float], object] | None = None) -> tuple[bool, str]:
    """Poll `check() -> (ok, missing)` until it passes or `timeout` s are up; return its last (ok, missing).

    Between checks: `alive()` (a reason raises `Died`; an exception from it propagates), then a pause of
    `interval` s, each one `factor` times the last up to `cap`, never past the deadline, spent by `sleep(s)`
    (default time.sleep; a watch that returns on the next change wakes the wait early). `lenient`: an
    exception from the check counts as not ready, its first line being what is missing."""
    deadline = time.monotonic() + timeout
    pause = interval
    while True:
        try:
            ok, missing = check()
        except Exception as e:  # noqa: BLE001 — reported if it lasts
            if not lenient:
                raise
            ok, missing = False, f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
        if ok:
            return True, missing
        if alive and (reason := alive()):
            raise Died(reason)
        left = deadline - time.monotonic()
        if left <= 0:
            return False, missing
        (sleep or time.sleep)(min(pause, left))
        pause = min(pause * factor, cap) if cap is not None else pause * factor


def until(check: Check, timeout: float, what: str, poll: float = 2.0,
          fix: str = "see `appliance status` and the pods' events; `appliance up` resumes here") -> None:
    """Wait `within` (leniently) or raise a UserError "not ready after Ns: <missing>" about `what`."""
    ok, missing = within(check, timeout, interval=poll, lenient=True)
    if not ok:
        raise UserError(f"not ready after {timeout:.0f}s: {missing or 'readiness check failed'}", what, fix)
