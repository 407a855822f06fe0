"""`appliance baremetal ...`: look at and drive the bare-metal provider's Ansible side."""

from __future__ import annotations

import json
from pathlib import Path

import click
import yaml

from appliance.errors import UserError


def _provider(profile: str, sets: tuple[str, ...]):
    from appliance import profiles
    from appliance.paths import state_dir
    from appliance.providers.baremetal import BaremetalProvider

    loaded = profiles.load(profile, list(sets))
    cluster = loaded.profile.cluster
    return BaremetalProvider(cluster, state_dir(cluster.name), report=click.echo)


@click.group("baremetal")
def baremetal() -> None:
    """Bare-metal provider: inventory, converge runs, the test host image."""


@baremetal.command("inventory")
@click.argument("profile")
@click.option("--set", "sets", multiple=True, help="override a profile field (a.b=value)")
def inventory_cmd(profile: str, sets: tuple[str, ...]) -> None:
    """Print the Ansible inventory generated from PROFILE's cluster.baremetal section."""
    p = _provider(profile, sets)
    if p.bm.inventory:
        click.echo(f"# your inventory {p.bm.inventory} is used, with these defaults under it:")
        click.echo(yaml.safe_dump({"all": {"vars": p.inventory.defaults()}}, sort_keys=False), nl=False)
        return
    click.echo(yaml.safe_dump(p.inventory.generate(), sort_keys=False), nl=False)


@baremetal.command("converge")
@click.argument("profile")
@click.option("--set", "sets", multiple=True, help="override a profile field (a.b=value)")
@click.option("--tags", default="", help="comma list of role tags (preflight,containerd,gpu,kubernetes,cni)")
@click.option("--limit", default="", help="only these hosts (Ansible pattern)")
def converge_cmd(profile: str, sets: tuple[str, ...], tags: str, limit: str) -> None:
    """Run the playbooks (again): idempotent, so this also resumes a failed run."""
    p = _provider(profile, sets)
    r = p.converge(tags=[t for t in tags.split(",") if t] or None, limit=limit or None)
    click.echo(f"converged in {r.seconds:.1f}s, changed={r.changed_count}; artifacts: {r.artifacts}")


@baremetal.command("runs")
@click.argument("profile")
@click.option("--set", "sets", multiple=True, help="override a profile field (a.b=value)")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def runs_cmd(profile: str, sets: tuple[str, ...], as_json: bool) -> None:
    """List the kept playbook runs (newest last) with their outcome."""
    p = _provider(profile, sets)
    rows = []
    for summary in sorted(Path(p.runs_dir).glob("*/summary.json")):
        try:
            rows.append(json.loads(summary.read_text()))
        except ValueError:
            continue
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        click.echo(f"{r['ident']}  {r['status']:<10} {r['seconds']:>7.1f}s  changed={r.get('changed_count', 0)}"
                   f"  failures={len(r.get('failures', []))}")


@baremetal.command("image")
@click.option("--mirror", default="", help="Debian mirror (default: the host's apt sources)")
@click.option("--force", is_flag=True, help="rebuild even when cached")
def image_cmd(mirror: str, force: bool) -> None:
    """Build (or reuse) the systemd Debian host image the bare-metal tests converge."""
    from appliance.providers.baremetal.image import build_image

    try:
        click.echo(build_image(mirror=mirror, report=click.echo, force=force))
    except FileNotFoundError as e:  # pragma: no cover - docker/debootstrap vanished mid-run
        raise UserError(str(e), where="baremetal image") from e
