"""`appliance bundle create|inspect|verify`: one file with everything `up` of a profile needs, for offline sites."""

from __future__ import annotations

import json
from pathlib import Path

import click

from appliance import orchestrator, providers, report
from appliance.images import bundle as bundles
from appliance.images import provenance, signing
from appliance.toolchain.pins import goarch


@click.group("bundle")
def bundle() -> None:
    """Offline bundles: made on a connected machine, used by `appliance up --bundle FILE` with no network."""


def _size(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def _show(m: dict, path: Path) -> None:
    click.echo(f"{path}: profile {m['profile']}, provider {m['provider']}, {m['arch']}, appliance {m['appliance']}, made {m['created']}, "
               + (f"signed by key {m['signature']['key']} (`bundle verify` checks it)" if m.get("signature") else "not signed"))
    comps = m["pins"].get("components", {}).values()
    go, images = {g for c in comps for g in c.get("go", [])}, {i for c in comps for i in c.get("images", [])}
    click.echo(f"  kubernetes {m['pins']['kubernetes']}; {len(list(comps))} components from {len(go)} Go modules"
               f" ({len(images)} upstream images they stand for)")
    for kind, s in m["summary"].items():
        click.echo(f"  {kind:<22} {s['files']:>5} files  {_size(s['bytes']):>10}")
    click.echo(f"  {'total':<22} {len(m['files']):>5} files  {_size(sum(f['size'] for f in m['files'])):>10} (uncompressed)")


@bundle.command("create")
@click.option("--profile", "-p", default="laptop", show_default=True, help="profile name or YAML file")
@click.option("--provider", type=click.Choice(providers.NAMES), default=None, help="the provider `up` will use there (default: as `up` chooses here)")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="override a profile field (repeatable)")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help="the file (default: appliance-PROFILE-PROVIDER-ARCH.bundle)")
@click.option("--sign", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="sign the manifest with this private key (`appliance bundle keygen`)")
@click.option("--json", "as_json", is_flag=True, help="print the manifest's summary as JSON")
def create(profile, provider, sets, output, sign, as_json):
    """Build what is missing (as `prebuild`), then pack what `up` uses into one zstd-compressed file."""
    loaded, name, _ = orchestrator.load_for(profile, sets, provider)
    out = output or Path(f"appliance-{loaded.profile.name}-{name}-{goarch()}.bundle")
    rep = report.make(as_json)
    try:
        m = orchestrator.bundle(loaded.profile, name, out, rep, sign)
    finally:
        rep.close()
    if as_json:
        click.echo(json.dumps({"file": str(out), "bytes": out.stat().st_size, "summary": m["summary"]}, indent=2))
    else:
        _show(m, out)
        click.echo(f"  compressed to {_size(out.stat().st_size)}; use it with: appliance up --profile {loaded.profile.name} --provider {name} --bundle {out}")


@bundle.command("inspect")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="print the whole manifest as JSON")
def inspect(file, as_json):
    """What a bundle holds (reads only its manifest)."""
    m = bundles.read_manifest(file)
    if as_json:
        click.echo(json.dumps(m, indent=2))
    else:
        _show(m, file)


@bundle.command("keygen")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="the private key's file (the public key: FILE.pub)")
def keygen(output):
    """Make a key pair to sign bundles with: keep the private key on the machine that makes bundles, copy the
    public one into ~/.config/appliance/trusted-keys/ on the machines that use them."""
    key, pub, name = signing.keygen(output)
    click.echo(f"private key {key} (keep it); public key {pub}, fingerprint {name}")


@bundle.command("verify")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--trust", type=click.Path(dir_okay=False, path_type=Path), multiple=True,
              help="a public key to trust besides ~/.config/appliance/trusted-keys/*.pub (repeatable)")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def verify(file, trust, as_json):
    """Check the bundle's signature (where a key is trusted) and every file against its manifest's size and
    sha256 (names a truncated or altered one)."""
    signer = signing.check(bundles.read_manifest(file), signing.trusted(trust), str(file))
    m = bundles.verify(file, (lambda _: None) if as_json else (lambda line: click.echo(line, err=True)))
    n, size = len(m["files"]), sum(f["size"] for f in m["files"])
    rows = provenance.rows(m["pins"])
    if as_json:
        click.echo(json.dumps({"file": str(file), "ok": True, "signed_by": signer, "files": n, "bytes": size, "inputs": rows}))
    else:
        click.echo(f"{file}: " + (f"signed by trusted key {signer}; " if signer else "signature not checked (no key is trusted here); ")
                   + f"all {n} files match their sha256 ({_size(size)}); what they were built from:")
        click.echo(provenance.table(rows))
