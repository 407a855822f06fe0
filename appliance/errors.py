"""The one error type users see: a single line saying what, where and how to fix."""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix; printed as one line, exit code `code` (never a traceback)."""

    def __init__(self, what: str, where: str = "", fix: str = "", code: int = 1):
        self.what, self.where, self.fix, self.code = what, where, fix, code
        super().__init__(self.line())

    def line(self) -> str:
        parts = [f"{self.where}: {self.what}" if self.where else self.what]
        if self.fix:
            parts.append(f"fix: {self.fix}")
        return " — ".join(parts)


class ProfileError(UserError):
    """A bad profile or override (exit code 2)."""

    def __init__(self, what: str, where: str = "", fix: str = ""):
        super().__init__(what, where, fix, code=2)
