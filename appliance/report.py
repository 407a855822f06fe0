"""Progress reporting: one interface, three outputs (rich live on a TTY, plain lines, JSON events); and
`status_text`, the one place `status` data becomes text for a person."""

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


# Provider fields a person rarely needs (file paths, port maps): shown with --verbose only. The provider's own
# kubeconfig repeats the cluster's (and its provider and cluster name are in the first line).
VERBOSE_ONLY = {"log", "binary", "ports", "state_dir", "inventory", "artifacts", "kubeconfig"}
HEADERS = {"alive": "state", "rss_bytes": "memory", "rss_bytes_total": "memory", "cpu_seconds": "cpu time", "create_time": "uptime"}


def duration(seconds: float) -> str:
    """3.5s, 2m05s, 2h03m, 1d04h."""
    s = int(seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def status_text(st: dict, verbose: bool = False, now: float | None = None) -> str:
    """`orchestrator.status` for a person: the cluster, a components table, the provider's facts, and a table per
    list of records (processes, host processes: name, pid, state, memory, CPU time, uptime). Paths and ports only
    when `verbose`."""
    now = time.time() if now is None else now
    shown = (lambda k: True) if verbose else (lambda k: k not in VERBOSE_ONLY)

    def cell(key: str, v) -> str:
        if v is None or v == "" or v == [] or v == {} or (v == 0 and key in ("pid", "rss_bytes")):
            return "-"
        if key == "alive":
            return "running" if v else "exited"
        if key == "create_time":
            return duration(now - v) if v else "-"
        if key.startswith("rss_bytes"):
            return f"{v / 2**20:.0f} MiB"
        if key.endswith("seconds"):
            return duration(v)
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, list):
            return ", ".join(cell(key, x) for x in v)
        if isinstance(v, dict):
            return ", ".join(f"{k} {cell(k, x)}" for k, x in v.items() if shown(k))
        return str(v)

    lines = [f"cluster {st['cluster']} ({st['provider']}, profile {st['profile']}): {'ready' if st['ready'] else 'NOT READY'}",
             f"  kubeconfig: {st['kubeconfig'] or '-'}"]
    def state(e: dict) -> str:
        if e.get("step") == "removed":
            return "removed" + (f" (kept, holding data: {', '.join(e['kept'])})" if e.get("kept") else "")
        return "ready" if e.get("ready") else f"not ready ({e.get('missing') or e.get('error') or e.get('step')})"

    comps = [[c, state(e)] for c, e in st["components"].items()]
    if comps:
        lines += ["", *table(["component", "state"], comps)]
        lines += [f"  {c}: {n}" for c, e in st["components"].items() for n in e.get("notes") or []]
    facts, tables = [], []
    for key, value in [*(st.get("provider_status") or {}).items(), ("host processes", st.get("host_processes"))]:
        if key in ("provider", "cluster") or not shown(key) or value in ("", [], {}, None):
            continue
        if isinstance(value, list) and all(isinstance(v, dict) for v in value):
            cols = [k for k in dict.fromkeys(k for r in value for k in r) if shown(k)]
            tables += ["", f"{key}:", *table([HEADERS.get(k, k) for k in cols], [[cell(k, r.get(k)) for k in cols] for r in value])]
        elif isinstance(value, list) and len(value) > 1:
            facts += [f"  {HEADERS.get(key, key)}:", *(f"    {cell(key, v)}" for v in value)]
        else:
            facts.append(f"  {HEADERS.get(key, key)}: {cell(key, value)}")
    if facts:
        lines += ["", f"provider {st['provider']}:", *facts]
    return "\n".join(lines + tables)


def table(header: list[str], rows: list[list[str]], indent: str = "  ") -> list[str]:
    """Rows as left-aligned columns under an upper-case header."""
    rows = [[h.upper() for h in header], *rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return [(indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True))).rstrip() for r in rows]
