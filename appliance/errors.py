"""The one error type users see: a single line saying what, where and how to fix."""

from __future__ import annotations

FIX = " — fix: "


class UserError(Exception):
    """A problem the user can fix; printed as one line, exit code `code` (never a traceback).

    A `what` that quotes another error's line (a step's failure wrapped by the planner) keeps that
    error's fix, the more specific one, in place of `fix`: a line carries exactly one fix."""

    def __init__(self, what: str, where: str = "", fix: str = "", code: int = 1):
        what, _, inner = what.partition(FIX)
        if inner:
            fix = inner.split(FIX)[0]
        self.what, self.where, self.fix, self.code = what, where, fix, code
        super().__init__(self.line())

    def line(self) -> str:
        head = f"{self.where}: {self.what}" if self.where else self.what
        return head + FIX + self.fix if self.fix else head


def validation_what(err: dict) -> str:
    """A pydantic error as the `what` of an error line: its message and, for a scalar, the value given."""
    got = err.get("input")
    return err["msg"].removeprefix("Value error, ") + (f" (got {got!r})" if not isinstance(got, (dict, list)) else "")


class ProfileError(UserError):
    """A bad profile or override (exit code 2)."""

    def __init__(self, what: str, where: str = "", fix: str = ""):
        super().__init__(what, where, fix, code=2)
