"""`appliance images build node` and `appliance images list`."""

from __future__ import annotations

import json

import click

from appliance.errors import UserError


@click.group("images")
def images() -> None:
    """Locally built container images (the kind node image and what it pre-loads)."""


@images.command("build")
@click.argument("what", type=click.Choice(["node"]), default="node")
@click.option("--kubernetes-version", default="", help="Kubernetes version (default: the pinned one)")
@click.option("--mirror", default="", help="Debian archive URL (default: from the host's apt sources or $APPLIANCE_DEBIAN_MIRROR)")
@click.option("--rebuild", is_flag=True, help="build even when an image with the same inputs exists")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def build(what: str, kubernetes_version: str, mirror: str, rebuild: bool, as_json: bool) -> None:
    """Build the kind node image (cached by a hash of its inputs)."""
    from dataclasses import asdict

    from appliance.images.node import build_node_image

    try:
        img = build_node_image(kubernetes_version, mirror=mirror, rebuild=rebuild, report=lambda m: click.echo(m, err=True))
    except UserError as e:
        raise click.ClickException(e.line()) from e
    if as_json:
        click.echo(json.dumps(asdict(img), indent=2))
    else:
        state = "built" if img.built else "cached"
        click.echo(f"{img.tag}  ({state}, {img.seconds:.1f}s)")


@images.command("list")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def list_cmd(as_json: bool) -> None:
    """Node images on this host and the images each pre-loads."""
    from appliance.images.node import list_images

    rows = list_images()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no node images; run: appliance images build node")
        return
    for r in rows:
        click.echo(f"{r['tag']}  {r['size']}  {r['created']}")
        for role, ref in sorted(r["images"].items()):
            click.echo(f"    {role:<24} {ref}")
