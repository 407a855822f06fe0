"""The `appliance` command line."""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

import click

from appliance import doctor as doctor_mod
from appliance import host, orchestrator, paths, profiles, providers, report
from appliance.errors import UserError

DEFAULT_PROFILE = "laptop"


def _rows(rows: list[dict], as_json: bool, line) -> None:
    """A list as JSON, or a line per row for people."""
    if as_json:
        _emit_json(rows)
    else:
        for r in rows:
            click.echo(line(r))


def _emit_json(data) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


profile_opt = click.option("--profile", "-p", default=DEFAULT_PROFILE, show_default=True, help="profile name or YAML file")
set_opt = click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="override a profile field, e.g. cluster.workers=2 (repeatable)")
provider_opt = click.option("--provider", type=click.Choice(providers.NAMES), default=None, help="override the profile's provider (default: from the profile, else kind with Docker, else sim)")
json_opt = click.option("--json", "as_json", is_flag=True, help="machine-readable output")
cluster_opt = click.option("--cluster", default=None, help="cluster name (default: the profile's cluster.name)")


def profile_command(fn):
    """A command on a profile as `up` loads it: --profile, --provider, --set and --json."""
    for opt in (json_opt, set_opt, provider_opt, profile_opt):
        fn = opt(fn)
    return main.command()(fn)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="appliance", prog_name="appliance")  # read from the metadata when asked
def main() -> None:
    """Local-first ML platform appliance: a cluster (kind, bare metal or simulated DGX nodes) plus an ML stack from a profile."""


@profile_command
@click.option("--parallel", default=2, show_default=True, type=click.IntRange(1, 16), help="steps run at once")
@click.option("--bundle", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="fill the caches from this bundle (appliance bundle create) and run with no network (default: cluster.bundle)")
def up(profile, provider, sets, as_json, parallel, bundle):
    """Create the cluster and install the profile's components (resumes; a no-op when ready)."""
    loaded, name, why = orchestrator.load_for(profile, sets, provider)
    rep = report.make(as_json)
    rep.message(f"profile '{loaded.profile.name}' ({loaded.path}); provider {name}: {why}")
    try:
        result = orchestrator.up(loaded.profile, name, rep, parallel, bundle or (Path(loaded.profile.cluster.bundle) if loaded.profile.cluster.bundle else None))
    finally:
        rep.close()
    if as_json:
        _emit_json(result)
    elif result["noop"]:
        click.echo(f"cluster '{result['cluster']}' is up to date — nothing to do ({result['seconds']}s)")
    else:
        click.echo(f"cluster '{result['cluster']}' ready in {result['seconds']}s; export KUBECONFIG={result['kubeconfig']}")


@profile_command
@click.option("--plan", "plan_only", is_flag=True, help="only show what would change (runs nothing)")
@click.pass_context
def upgrade(ctx, profile, provider, sets, as_json, plan_only):
    """Bring a cluster an earlier appliance made to this version (as `up`: new component versions applied in
    dependency order, CRDs before their controllers, data kept); --plan shows what would change. Downgrades
    are refused."""
    if not plan_only:
        ctx.invoke(up, profile=profile, provider=provider, sets=sets, as_json=as_json)
        return
    loaded, name, _ = orchestrator.load_for(profile, sets, provider)
    ch = orchestrator.changes(loaded.profile, name)
    if as_json:
        _emit_json(ch)
        return
    click.echo(f"cluster '{ch['cluster']}': appliance {ch['from'] or '(not recorded)'} -> {ch['to']}")
    for step, what in ch["steps"].items():
        click.echo(f"  {step:<22} {what}")
    for n in ch["removed"]:
        click.echo(f"  {n:<22} removed (switched off in the profile; its data kept)")


@profile_command
def prebuild(profile, provider, sets, as_json):
    """Build everything `up` would build for the profile on its provider, without a cluster (cached: a second run only checks)."""
    loaded, name, why = orchestrator.load_for(profile, sets, provider)
    rep = report.make(as_json)
    rep.message(f"profile '{loaded.profile.name}' ({loaded.path}); provider {name}: {why}")
    try:
        result = orchestrator.prebuild(loaded.profile, name, rep)
    finally:
        rep.close()
    if as_json:
        _emit_json(result)
    else:
        click.echo(f"everything '{loaded.profile.name}' needs on {name} is built ({result['seconds']}s)")


@main.command("version")
@json_opt
def version_cmd(as_json):
    """This appliance's version and the pins it carries (Kubernetes, its toolchain, each component's sources)."""
    from importlib.metadata import version

    out = {"appliance": version("appliance"), **orchestrator.versions()}
    if as_json:
        _emit_json(out)
        return
    click.echo(f"appliance {out['appliance']}\nkubernetes {out['kubernetes']}; " + ", ".join(f"{n} {v}" for n, v in out["tools"].items()))
    for name, p in out["components"].items():
        parts = [", ".join(p[k]) for k in ("go", "locks") if p.get(k)]
        click.echo(f"  {name:<22} {'; '.join(parts) or '(manifests only)'}")


def _interactive() -> bool:
    """Whether a person can answer a question (stdin is a terminal)."""
    return sys.stdin.isatty()


@main.command()
@profile_opt
@cluster_opt
@click.option("--yes", "-y", is_flag=True, help="delete without asking, the cluster's data included")
def down(profile, cluster, yes):
    """Delete the cluster and everything the appliance left for it on this host: on a cluster holding data
    (users' volumes, the artifact store, databases), only after a yes on the terminal or with --yes."""
    name = cluster or profiles.load(profile).profile.cluster.name
    if not yes and (held := orchestrator.held_data(name)):
        last = orchestrator.last_backup(name)
        what = (f"cluster '{name}' holds data that `down` deletes with it: " + "; ".join(held)
                + (f" (last backup: {last['path']}, {last['created']})" if last else " (no backup made: `appliance backup`)"))
        if not _interactive():
            raise UserError(what, "appliance down", f"run `appliance down --cluster {name} --yes` to delete it anyway", code=2)
        if not click.confirm(what + "\nDelete it all?", err=True):
            click.echo("nothing deleted", err=True)
            sys.exit(1)
    rep = report.make()
    try:
        orchestrator.down(name, rep)
    finally:
        rep.close()
    click.echo(f"cluster '{name}' deleted")


@main.command()
@profile_opt
@cluster_opt
@json_opt
@click.option("--verbose", "-v", is_flag=True, help="also show file paths (logs, binaries, state) and ports")
def status(profile, cluster, as_json, verbose):
    """Show the cluster, its provider's view, and each component's readiness."""
    name = cluster or profiles.load(profile).profile.cluster.name
    st = orchestrator.status(name)
    if as_json:
        _emit_json(st)
    else:
        click.echo(report.status_text(st, verbose))


@profile_command
def plan(profile, provider, sets, as_json):
    """Show what `up` would do: ordered steps and the waves that run in parallel. Executes nothing."""
    loaded, name, why = orchestrator.load_for(profile, sets, provider)
    p = orchestrator.Cluster(loaded.profile, name).plan()
    if as_json:
        _emit_json({"profile": loaded.profile.name, "cluster": loaded.profile.cluster.name, "provider": name, "provider_reason": why, **p.to_json()})
        return
    click.echo(f"profile {loaded.profile.name} → cluster {loaded.profile.cluster.name} on {name} ({why})")
    for i, wave in enumerate(p.waves(), 1):
        click.echo(f"  wave {i}: {', '.join(wave)}")


@profile_command
def doctor(profile, provider, sets, as_json):
    """Check this host for the profile: each check pass / warn / fail with a one-line fix."""
    loaded, name, _ = orchestrator.load_for(profile, sets, provider)
    facts = host.facts(paths.cache_dir())
    checks = doctor_mod.host_checks(facts, name) + [doctor_mod.budget(loaded.profile, name, facts), doctor_mod.images(loaded.profile, name, facts),
                                                  doctor_mod.host_programs(loaded.profile, name)]
    if (running := orchestrator.running_kube(loaded.profile.cluster.name)) is not None:  # what the live cluster enforces
        checks += doctor_mod.isolation(running, "network-policy" in loaded.profile.components and loaded.profile.components["network-policy"].enabled)
    failed = any(c.status == "fail" for c in checks)
    if as_json:
        _emit_json({"provider": name, "profile": loaded.profile.name, "ok": not failed, "checks": doctor_mod.as_json(checks), "facts": facts})
    else:
        marks = {"pass": "ok  ", "warn": "WARN", "fail": "FAIL"}
        for c in checks:
            click.echo(f"{marks[c.status]} {c.name:<15} {c.detail}" + (f"\n     fix: {c.fix}" if c.fix and c.status != "pass" else ""))
    sys.exit(1 if failed else 0)


@main.group("users", invoke_without_command=True)
@profile_opt
@cluster_opt
@json_opt
@click.pass_context
def users_group(ctx, profile, cluster, as_json):
    """The cluster's users: their namespaces and per-user kubeconfigs (`users show NAME` writes one)."""
    from appliance import users

    ctx.obj = cluster or profiles.load(profile).profile.cluster.name
    if ctx.invoked_subcommand:
        return
    _rows(users.listed(ctx.obj), as_json,
          lambda r: f"{r['user']:<12} namespace {r['namespace']:<16} `appliance users show {r['user']}` writes {r['kubeconfig']}")


@users_group.command("show")
@click.argument("name")
@click.option("--hours", default=24, show_default=True, type=click.IntRange(1, 24 * 30), help="how long the token is valid")
@json_opt
@click.pass_obj
def users_show(cluster, name, hours, as_json):
    """Write NAME's kubeconfig (their token only, no admin credential) and say how to use it."""
    from appliance import users

    r = users.kubeconfig(cluster, name, hours)
    if as_json:
        _emit_json(r)
        return
    click.echo(f"user {r['user']}: namespace {r['namespace']}; token valid {hours} h\nexport KUBECONFIG={r['kubeconfig']}")
    if nb := r["notebooks"]:
        click.echo(f"notebooks: open {nb['url']} and log in as {nb['username']} with password {nb['password']}")
    if url := r["tracking"]:
        click.echo(f"tracking (MLflow, with this kubeconfig's token and namespace): export MLFLOW_TRACKING_URI={url} "
                   "MLFLOW_TRACKING_AUTH=kubernetes-namespaced MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD=false "
                   "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD=false")


@main.command("host-setup")
def host_setup():
    """Install the host programs any plan or the tests may need (debootstrap, gcc, npm, chromium) where allowed (root, apt-get)."""
    from appliance import prereqs

    prereqs.setup(click.echo)


@main.group("profiles")
def profiles_group():
    """List, show and validate profiles."""


@profiles_group.command("list")
@json_opt
def profiles_list(as_json):
    """Profiles shipped in profiles/."""
    rows = []
    for n in profiles.names():
        p = profiles.load(n).profile
        rows.append({"name": n, "provider": p.provider, "components": [c for c, s in p.components.items() if s.enabled], "description": p.description})
    _rows(rows, as_json, lambda r: f"{r['name']:<14} {r['provider']:<10} {r['description']}")


@profiles_group.command("show")
@click.argument("profile", default=DEFAULT_PROFILE)
@set_opt
def profiles_show(profile, sets):
    """The fully merged profile (after extends and --set), as YAML."""
    import yaml

    click.echo(yaml.safe_dump(profiles.load(profile, list(sets)).profile.model_dump(mode="json"), sort_keys=False))


@profiles_group.command("validate")
@click.argument("files", nargs=-1)
def profiles_validate(files):
    """Validate profile files (all shipped profiles when none given); exit 2 on the first problem."""
    for f in files or profiles.names():
        loaded = profiles.load(f)
        click.echo(f"ok {loaded.path}")


@main.group(invoke_without_command=True, epilog="Exit codes: 0 every scenario passed; 1 a scenario failed; 2 bad input (flags, profile, "
             "scenario files: nothing was started); 3 the cluster could not be brought up (a build, a host program, a failed "
             "`up` step, another run holding it); 130 interrupted.")
@click.option("--scenarios", "folders", multiple=True, metavar="DIR", help="a folder of your scenarios (repeatable); "
              "their paths are relative to each scenario file")
@click.option("--scenario", "names", multiple=True, metavar="NAME", help="run this scenario: yours by its name, else the appliance's own "
              "(repeatable; default: all of --scenarios, else all the appliance's that fit)")
@provider_opt
@click.option("--profile", "-p", default=None, help="profile to bring up first (default: the provider's e2e profile; ci without --provider)")
@click.option("--out", "out_dir", default="e2e/reports", show_default=True, help="folder for junit.xml and report.html")
@click.option("--junit", default=None, metavar="FILE", help="write the JUnit XML here instead (default: OUT/junit.xml)")
@click.pass_context
def e2e(ctx, folders, names, provider, profile, out_dir, junit):
    """Bring up (or reuse) a cluster and run the e2e scenarios that fit it; JUnit XML + HTML report.
    `e2e validate` checks scenario files without a cluster, `e2e schema` prints their JSON Schema."""
    from pathlib import Path

    from appliance import e2e as e2e_mod

    if ctx.invoked_subcommand:
        return
    loaded, name, why = orchestrator.load_for(profile or e2e_mod.default_profile(provider), (), provider)
    e2e_mod.select(names, folders)  # bad scenario files stop here, before any cluster work
    junit_path = Path(junit) if junit else Path(out_dir) / "junit.xml"
    rep = report.make()
    try:
        rep.message(f"e2e on {name} ({why}), profile '{loaded.profile.name}'")
        try:
            result = orchestrator.up(loaded.profile, name, rep)
        except UserError as e:
            raise UserError(e.what, e.where, e.fix, code=2 if e.code == 2 else 3) from None
        enabled = {c for c, s in loaded.profile.components.items() if s.enabled}
        results = e2e_mod.run(result["kubeconfig"], name, enabled, names, Path(out_dir), rep, folders, junit_path,
                              registry=loaded.profile.cluster.images.registry)
    finally:
        rep.close()
    for r in results:
        click.echo(f"{'PASS' if r.passed else 'FAIL'} {r.name} ({r.seconds}s)")
    click.echo(f"reports: {junit_path}, {Path(out_dir) / 'report.html'}")
    sys.exit(0 if all(r.passed for r in results) else 1)


@e2e.command("validate")
@click.argument("targets", nargs=-1, metavar="[DIR|FILE]...")
def e2e_validate(targets):
    """Check scenario files (a folder's *.yaml; none: the appliance's own) against the schema, no cluster:
    one line per problem, exit 2 when there is any."""
    from appliance import e2e as e2e_mod

    files = e2e_mod.files_in(list(targets))
    problems = e2e_mod.validate(files)
    for p in problems:
        click.echo(p.line())
    if problems:
        click.echo(f"{len(problems)} problem(s) in {len(files)} scenario file(s)", err=True)
        sys.exit(2)
    click.echo(f"ok: {len(files)} scenario file(s)")


@e2e.command("init")
@click.argument("folder", metavar="DIR")
def e2e_init(folder):
    """Write a scenario of your own to edit into DIR: a training job, a pipeline and a served model, as alice
    (with the scenario JSON Schema for editors)."""
    from pathlib import Path

    from appliance import e2e as e2e_mod

    for path in e2e_mod.init(Path(folder)):
        click.echo(f"wrote {path}")
    click.echo(f"next: appliance e2e validate {folder} && appliance e2e --provider sim --scenarios {folder}")


@e2e.command("schema")
def e2e_schema():
    """Print the JSON Schema of a scenario file (for editors: yaml-language-server's `$schema`)."""
    from appliance.e2e import scenario

    _emit_json(scenario.json_schema())


def _register_groups() -> None:
    """Command groups owned by the toolchain, images, bare-metal, bundle, backup and node modules."""
    from appliance.commands.backup import backup, restore
    from appliance.commands.baremetal import baremetal
    from appliance.commands.bundle import bundle
    from appliance.commands.images import images
    from appliance.commands.node import node
    from appliance.commands.toolchain import toolchain

    for group in (toolchain, images, baremetal, bundle, backup, restore, node):
        main.add_command(group)


def run() -> None:
    """Console entry: one line and an exit code for user errors, never a traceback."""
    _register_groups()
    try:
        main(standalone_mode=False)
    except UserError as e:
        click.echo(f"error: {e.line()}", err=True)
        sys.exit(e.code)
    except click.exceptions.Abort:
        click.echo("interrupted: run the same command again to resume", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("interrupted: run the same command again to resume", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except SystemExit:
        raise
    except Exception as e:  # noqa: BLE001 — a bug: one line, the traceback only on request
        if os.environ.get("APPLIANCE_DEBUG"):
            traceback.print_exc()
        click.echo(f"internal error: {type(e).__name__}: {e} (set APPLIANCE_DEBUG=1 for the traceback)", err=True)
        sys.exit(70)
