"""Progress reporting: one interface, three outputs (rich live on a TTY, plain lines, JSON events)."""

from __future__ import annotations

import json
import sys
import threading
import time
from datetime import datetime, timezone


class Reporter:
    """Plain timestamped lines (CI, pipes)."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()

    def _emit(self, text: str) -> None:
        with self._lock:
            ts = datetime.now().strftime("%H:%M:%S")
            print(f"{ts} {text}", file=self.stream, flush=True)

    def message(self, text: str) -> None:
        self._emit(text)

    def step(self, step: str, status: str, detail: str = "", seconds: float | None = None) -> None:
        """status: running | done | skipped | failed | blocked."""
        took = f" ({seconds:.1f}s)" if seconds is not None else ""
        self._emit(f"[{status:>7}] {step}{took}{' — ' + detail if detail else ''}")

    def close(self) -> None:
        pass


class JsonReporter(Reporter):
    """One JSON object per event on stderr, for machines."""

    def _event(self, **fields) -> None:
        fields["ts"] = datetime.now(timezone.utc).isoformat()
        with self._lock:
            print(json.dumps(fields), file=self.stream, flush=True)

    def message(self, text: str) -> None:
        self._event(event="message", text=text)

    def step(self, step: str, status: str, detail: str = "", seconds: float | None = None) -> None:
        self._event(event="step", step=step, status=status, detail=detail, seconds=seconds)


class RichReporter(Reporter):
    """A live table of steps with spinners, on a terminal."""

    def __init__(self, stream=None):
        super().__init__(stream)
        from rich.console import Console
        from rich.live import Live

        self.console = Console(file=self.stream)
        self.rows: dict[str, tuple[str, str, float]] = {}
        self.live = Live(self._render(), console=self.console, refresh_per_second=8, transient=False)
        self.live.start()

    def _render(self):
        from rich.spinner import Spinner
        from rich.table import Table

        icons = {"done": "[green]✔", "skipped": "[dim]✔", "failed": "[red]✘", "blocked": "[yellow]…"}
        table = Table.grid(padding=(0, 1))
        now = time.monotonic()
        for step, (status, detail, started) in self.rows.items():
            icon = Spinner("dots") if status == "running" else icons.get(status, status)
            took = f"{now - started:.0f}s" if status == "running" else ""
            table.add_row(icon, step, f"[dim]{status} {took} {detail}")
        return table

    def message(self, text: str) -> None:
        with self._lock:
            self.console.print(text)

    def step(self, step: str, status: str, detail: str = "", seconds: float | None = None) -> None:
        with self._lock:
            started = self.rows.get(step, (None, None, time.monotonic()))[2]
            took = f"({seconds:.1f}s) " if seconds is not None else ""
            self.rows[step] = (status, took + detail, started)
            self.live.update(self._render())

    def close(self) -> None:
        self.live.stop()


def make(json_mode: bool = False, stream=None) -> Reporter:
    """The right reporter for this output."""
    stream = stream or sys.stderr
    if json_mode:
        return JsonReporter(stream)
    if stream.isatty():
        return RichReporter(stream)
    return Reporter(stream)
