"""`appliance images build node` and `appliance images list`."""

from __future__ import annotations

import json

import click

from appliance.errors import UserError


@click.group("images")
def images() -> None:
    """Locally built container images (the kind node image and what it pre-loads)."""


@images.command("build")
@click.argument("what", type=click.Choice(["node", "control-plane"]), default="node")
@click.option("--kubernetes-version", default="", help="Kubernetes version (default: the pinned one)")
@click.option("--mirror", default="", help="Debian archive URL (default: from the host's apt sources or $APPLIANCE_DEBIAN_MIRROR)")
@click.option("--rebuild", is_flag=True, help="build even when an image with the same inputs exists")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def build(what: str, kubernetes_version: str, mirror: str, rebuild: bool, as_json: bool) -> None:
    """Build the kind node image, or the control-plane image archives an offline `kubeadm init` imports
    (bare metal: set appliance_k8s_images_dir to the printed folder). Cached by a hash of their inputs."""
    from dataclasses import asdict

    from appliance.images.node import build_node_image, control_plane_archives

    if what == "control-plane":
        folder = control_plane_archives(mirror=mirror, report=lambda m: click.echo(m, err=True))
        archives = sorted(p.name for p in folder.glob("*.tar"))
        click.echo(json.dumps({"folder": str(folder), "archives": archives}, indent=2) if as_json else f"{folder}  ({len(archives)} archives)")
        return
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


def _profile_images(profile: str, sets: tuple[str, ...], provider: str | None):
    """(profile, [(component, ComponentImage)]) for the profile's enabled components."""
    from appliance import components, providers
    from appliance.orchestrator import load_for

    loaded, name, _ = load_for(profile, sets, provider)
    comps = components.enabled(loaded.profile, providers.get(name).runtime())
    return loaded.profile, [(n, img) for n, c in comps.items() for img in c.images()]


@images.command("verify")
@click.option("--profile", "-p", default=None, help="only this profile's components (default: every component)")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="override a profile field (repeatable)")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def verify(profile, sets, as_json):
    """What each input (toolchain, Go modules, upstream images, wheels, Debian) is pinned by and how its download
    is checked; `!!` marks what is not pinned to exact content or not verified."""
    from appliance import orchestrator
    from appliance.images import provenance

    names = None
    if profile:
        loaded = orchestrator.load_for(profile, sets)[0]
        names = [n for n, s in loaded.profile.components.items() if s.enabled]
    rows = provenance.rows(orchestrator.versions(names))
    click.echo(json.dumps(rows, indent=2) if as_json else provenance.table(rows))


@images.command("components")
@click.option("--profile", "-p", default="laptop", show_default=True, help="profile name or YAML file")
@click.option("--provider", default=None, help="provider whose overrides apply (default: as `up` chooses)")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="override a profile field (repeatable)")
@click.option("--decide", is_flag=True, help="also resolve cluster.images.source (auto probes the registries)")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def components_cmd(profile: str, sets: tuple[str, ...], provider: str | None, decide: bool, as_json: bool) -> None:
    """The images the profile's components run: pinned upstream reference and local build."""
    from appliance.images.delivery import decide as decide_source

    prof, imgs = _profile_images(profile, sets, provider)
    rows = [{"component": n, "image": i.name, "upstream": i.upstream or "(ours: always built here)"} for n, i in imgs]
    out: dict = {"profile": prof.name, "images": rows}
    if decide:
        d = decide_source(prof.cluster.images, [i.upstream for _, i in imgs if i.upstream])
        out["source"], out["why"] = d.source, d.why
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    for r in rows:
        click.echo(f"{r['component']:<20} {r['image']:<26} {r['upstream']}")
    if decide:
        click.echo(f"source: {out['source']} — {out['why']}")


@images.command("push")
@click.option("--profile", "-p", default="laptop", show_default=True, help="profile name or YAML file")
@click.option("--provider", default=None, help="provider whose overrides apply (default: as `up` chooses)")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="override a profile field (repeatable)")
@click.option("--registry", required=True, help="registry to fill: host:port (HTTPS) or http://host:port")
def push_cmd(profile: str, sets: tuple[str, ...], provider: str | None, registry: str) -> None:
    """Build the profile's images here and push them to a registry (for air-gapped sites: clusters there
    then run with cluster.images.source=local and cluster.images.registry=<the same registry>)."""
    from pydantic import ValidationError

    from appliance.images import registry as reg
    from appliance.images.builds import BuildError
    from appliance.images.delivery import Delivery, DeliveryError
    from appliance.schema import ImagesSpec

    try:
        spec = ImagesSpec(source="local", registry=registry)  # validates the address like the profile does
    except ValidationError as e:
        raise UserError(e.errors()[0]["msg"].removeprefix("Value error, "), "--registry", "e.g. --registry http://10.0.0.5:5000", code=2) from None
    ok, why = reg.Endpoint(spec.registry).answers()
    if not ok:
        raise UserError(f"registry does not answer: {why}", "--registry", "start it, or check the address and scheme (http:// for plain HTTP)")
    _, imgs = _profile_images(profile, sets, provider)
    try:  # one call: an image two components share goes up once, with all its tags
        refs = Delivery("local", registry=spec.registry).provide(None, [img for _, img in imgs])
    except (DeliveryError, BuildError) as e:
        raise UserError(str(e), "images push", "fix the cause and run it again: pushed blobs are kept") from None
    done = set()
    for comp, img in imgs:
        if refs[img.name] not in done:
            click.echo(f"{comp:<20} {refs[img.name]} -> {spec.registry}")
            done.add(refs[img.name])
    click.echo(f"pushed {len(done)} images; use: --set cluster.images.source=local --set cluster.images.registry={spec.registry}")
