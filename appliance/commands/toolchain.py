"""`appliance toolchain ...`: see and fetch the pinned Kubernetes binaries."""

from __future__ import annotations

import json
import time

import click

from appliance.errors import UserError
from appliance.toolchain.core import SOURCES, Toolchain, status_json
from appliance.toolchain.pins import ORDER


def _fail(e: UserError):
    click.echo(f"error: {e.line()}", err=True)
    raise SystemExit(e.code)


@click.group("toolchain")
def toolchain() -> None:
    """Pinned Kubernetes binaries (kube-*, etcd, kwok, kind, coredns), cached and checksummed."""


@toolchain.command("status")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.option("--source", type=click.Choice(SOURCES), default="auto", show_default=True)
def status_cmd(as_json: bool, source: str) -> None:
    """Which tools are cached, from where, and whether their checksums still match."""
    try:
        st = Toolchain(source=source).status()
    except UserError as e:
        _fail(e)
    if as_json:
        click.echo(json.dumps(status_json(st), indent=2))
        return
    w = max(len(s.tool) for s in st)
    click.echo(f"{'TOOL':<{w}}  {'VERSION':<9} {'SOURCE':<8} {'STATE':<9} PATH")
    for s in st:
        click.echo(f"{s.tool:<{w}}  {s.version:<9} {s.source or '-':<8} {s.state:<9} {s.path}")
    if not all(s.ok for s in st):
        raise SystemExit(1)


@toolchain.command("fetch")
@click.argument("tools", nargs=-1)
@click.option("--source", type=click.Choice(SOURCES), default="auto", show_default=True,
              help="download official releases, build from Go modules, or auto (download, else build)")
@click.option("--force", is_flag=True, help="fetch again even when the cache is valid")
def fetch_cmd(tools: tuple[str, ...], source: str, force: bool) -> None:
    """Fetch or build TOOLS (default: all) into the cache."""
    t0 = time.monotonic()
    try:
        tc = Toolchain(source=source, report=lambda m: click.echo(m, err=True))
        paths = tc.ensure(list(tools) or ORDER, force=force)
    except UserError as e:
        _fail(e)
    for name, p in paths.items():
        click.echo(f"{name}\t{p}")
    click.echo(f"ready in {time.monotonic() - t0:.1f}s", err=True)


__all__ = ["toolchain"]
