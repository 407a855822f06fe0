"""`appliance backup` and `appliance restore`: users' and components' data out of a cluster into a folder, and back."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from appliance import profiles, report

key_opt = click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
                       help="a file holding the passphrase that seals the credentials (without one they are left out)")
user_opt = click.option("--user", default=None, help="only this user's namespace, objects and part of the components' volumes")


def _cluster(profile: str, cluster: str | None) -> str:
    return cluster or profiles.load(profile).profile.cluster.name


@click.command("backup")
@click.option("--profile", "-p", default="laptop", show_default=True, help="profile name or YAML file")
@click.option("--cluster", default=None, help="cluster name (default: the profile's cluster.name)")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="a new folder, or a new file NAME.tar.zst (one compressed file) (default: the folder backup-CLUSTER-TIME)")
@key_opt
@user_opt
@click.option("--json", "as_json", is_flag=True, help="print the manifest as JSON")
def backup(profile, cluster, output, key_file, user, as_json):
    """Copy every user's homes, objects and buckets, the components' databases and the generated credentials
    (sealed) out of a running cluster into a folder, with a manifest of hashes."""
    from appliance import backup as backups

    name = _cluster(profile, cluster)
    out = output or Path(f"backup-{name}-{time.strftime('%Y%m%d-%H%M%S')}")
    rep = report.make(as_json)
    try:
        m = backups.backup(name, out, key_file, rep.message, user)
    finally:
        rep.close()
    if as_json:
        click.echo(json.dumps({"folder": str(out), **m}, indent=2))
    else:
        size = sum(f["size"] for f in m["files"])
        packed = f" ({out.stat().st_size / 2**20:.1f} MiB compressed)" if out.is_file() else ""
        click.echo(f"backup of cluster '{name}' in {out}: {len(m['files'])} files, {size / 2**20:.1f} MiB{packed}, {m['seconds']} s"
                   + ("" if m["credentials"] else " (credentials left out)"))


@click.command("restore")
@click.argument("folder", metavar="BACKUP", type=click.Path(path_type=Path))
@click.option("--profile", "-p", default="laptop", show_default=True, help="profile name or YAML file")
@click.option("--cluster", default=None, help="cluster name (default: the profile's cluster.name)")
@key_opt
@user_opt
@click.option("--json", "as_json", is_flag=True, help="print what was restored as JSON")
def restore(folder, profile, cluster, key_file, user, as_json):
    """Bring a backup (its folder or its .tar.zst file) back into a running cluster of the same profile (every
    file checked first), then `up`."""
    from appliance import backup as backups

    name = _cluster(profile, cluster)
    rep = report.make(as_json)
    try:
        out = backups.restore(name, folder, key_file, rep.message, rep, user)
    finally:
        rep.close()
    if as_json:
        click.echo(json.dumps(out, indent=2))
    else:
        click.echo(f"restored {folder} into cluster '{name}'" + (f" (user {user})" if user else "") + ": "
                   + ", ".join(f"{out[k]} {k}" for k in ("secrets", "volumes", "dumps", "objects")) + f", {out['seconds']} s")
