"""`up`, `down`, `status`: a profile + a provider + the component catalog, run through the planner."""

from __future__ import annotations

import shutil
import threading
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from appliance import components, host, paths, prereqs, profiles, progress, providers, runtime
from appliance.errors import UserError
from appliance.images import bundle as bundles
from appliance.images import signing
from appliance.plan import CLUSTER, Lock, Plan, State, Step, execute, fingerprint
from appliance.schema import ClusterSpec, ComponentSpec, Profile
from appliance.toolchain import pins
from appliance.util import offline


def choose_provider(profile: Profile, override: str | None = None) -> tuple[str, str]:
    """The provider to use and why (flag > profile > host: kind with a Docker daemon, else the simulator)."""
    if override:
        return override, "chosen with --provider"
    if profile.provider != "auto":
        return profile.provider, f"set by profile '{profile.name}'"
    return providers.auto(host.docker())


def load_for(profile: str, sets, flag: str | None = None):
    """Load a profile with its `--set`s, pick the provider (flag > profile > host) and apply that
    provider's overrides. Returns (loaded profile, provider, why)."""
    loaded = profiles.load(profile, list(sets))
    name, why = choose_provider(loaded.profile, flag)
    if loaded.profile.provider_overrides.get(name):
        loaded = profiles.load(profile, list(sets), name)
    return loaded, name, why


class Cluster:
    """One named cluster: its provider, its state folder and its components."""

    def __init__(self, profile: Profile, provider: str, report=None):
        self.profile = profile
        self.provider_name = provider
        self.dir = paths.state_dir(profile.cluster.name)
        self.provider = providers.get(provider)(profile.cluster, self.dir, (report.message if report else None))
        self._kube = None
        self._kube_lock = threading.Lock()

    def kube(self):
        """A client for the cluster, once it exists (shared by component steps)."""
        from appliance.kube import Kube

        with self._kube_lock:
            if self._kube is None:
                info = State(self.dir).data.get("cluster") or {}
                if not info.get("kubeconfig"):
                    raise UserError("the cluster has no kubeconfig yet", str(self.dir), "run `appliance up`")
                self._kube = Kube(info["kubeconfig"], info.get("context"))
            return self._kube

    def plan(self, state: State | None = None) -> Plan:
        """Cluster first, then components in dependency order."""
        def create() -> str:
            info = self.provider.create()
            (state or State(self.dir)).set("cluster", {"kubeconfig": str(info.kubeconfig), "context": info.context, "nodes": len(info.nodes)})
            return f"{len(info.nodes)} nodes ready; kubeconfig {info.kubeconfig}"

        steps = [Step(
            CLUSTER, [], fingerprint([self.provider_name, self.profile.cluster.model_dump()]),
            run=create, ready=lambda: (self.provider.ready(), ""), description=f"{self.provider_name} cluster '{self.profile.cluster.name}'",
        )]
        deps = components.dependencies(self.profile)
        comps = components.enabled(self.profile, self.provider.runtime())
        prints: dict[str, str] = {}

        def inputs(name: str) -> str:
            """A component's fingerprint covers its dependencies' (a user removed from user-profiles re-runs
            the components that render per-user objects, which then prune that user's)."""
            if name not in prints:
                comp = comps[name]
                prints[name] = fingerprint([name, comp.options.model_dump(), comp.revision(), [inputs(d) for d in deps[name]]]
                                           + ([self.profile.cluster.images.model_dump()] if comp.images() else []))
            return prints[name]

        for name, comp in comps.items():
            steps.append(Step(
                name, [CLUSTER] + deps[name], inputs(name),
                run=lambda c=comp: c.install(self.kube()), ready=lambda c=comp: c.ready(self.kube()),
                description=comp.description, revision=comp.revision(),
            ))
        return Plan(steps)


def prebuild(profile: Profile, provider: str, reporter) -> dict[str, Any]:
    """Build everything `up` of this profile would build on this provider, with no cluster: the provider's own
    needs (kind's node image, the simulator's binaries, bare metal's offline inputs), then each component's
    images, host programs and generated CRDs. Everything is cached, so a second run only checks."""
    from appliance.images.builds import BuildError
    from appliance.images.delivery import DeliveryError

    with paths.probing():
        prereqs.check(profile, provider)
        announced = prereqs.announce(profile, provider, reporter)
    c = Cluster(profile, provider, reporter)
    t0, made = time.monotonic(), {}
    with progress.reporting(reporter, announced):
        for name, build in [(CLUSTER, c.provider.prebuild),
                            *((n, comp.prebuild) for n, comp in components.enabled(profile, c.provider.runtime()).items())]:
            reporter.step(name, "running", "building")
            t1 = time.monotonic()
            try:
                made[name] = build() or 0
            except (BuildError, DeliveryError) as e:
                reporter.step(name, "failed", str(e))
                raise UserError(f"build failed: {e}", name, "fix the cause and run it again: what was built is kept") from None
            reporter.step(name, "done", f"{made[name]} built or cached" if name != CLUSTER else provider, round(time.monotonic() - t1, 1))
    return {"profile": profile.name, "provider": provider, "components": made, "seconds": round(time.monotonic() - t0, 2)}


def _check_owner(state: State, provider: str, cluster: str) -> None:
    made_by = state.data.get("provider")
    if made_by and made_by != provider:
        raise UserError(
            f"cluster '{cluster}' was made by provider '{made_by}', not '{provider}'", str(state.path),
            f"run `appliance down --cluster {cluster}` first, or pick another name with --set cluster.name=...",
        )


def bundle(profile: Profile, provider: str, out: Path, reporter, sign: Path | None = None) -> dict[str, Any]:
    """Pack into one file what `up` of this profile on this provider uses from the caches (built first where
    missing, as `prebuild` does), with the pins it was built from, signed with the private key `sign` if
    given; returns the bundle's manifest."""
    if why := providers.get(provider).not_bundled:
        raise UserError(f"no bundles for the {provider} provider: {why}", "--provider",
                        "bundle for kind or sim; for bare metal, set cluster.baremetal.offline and push the images to a registry the hosts reach "
                        "(`appliance images push`)", code=2)
    with paths.recording() as used:
        prebuild(profile, provider, reporter)
    meta = {"appliance": version("appliance"), "profile": profile.name, "provider": provider, "arch": pins.goarch(),
            "pins": versions([n for n, s in profile.components.items() if s.enabled])}
    return bundles.create(out, used, meta, reporter.message, sign=sign)


def versions(names: list[str] | None = None) -> dict[str, Any]:
    """The pins this appliance carries: Kubernetes and its toolchain, and each component's (default: all)."""
    return {"kubernetes": pins.KUBERNETES, "tools": {n: t.version for n, t in pins.TOOLS.items()},
            "components": {n: components.CATALOG[n].pins() for n in (names if names is not None else sorted(components.CATALOG))}}


def _from_bundle(path: Path, profile: Profile, provider: str, reporter) -> dict[str, Any]:
    """Fill the caches from a bundle made for this profile, provider and architecture (the disk's room checked
    first), so that what follows runs offline."""
    m = bundles.read_manifest(path)
    if signing.check(m, signing.trusted(), str(path)) is None:
        reporter.message(f"{path}: no key is trusted here, so its signature is not checked: only its hashes are")
    for key, want in (("profile", profile.name), ("provider", provider), ("arch", pins.goarch())):
        if m.get(key) != want:
            raise UserError(f"the bundle was made for {key} '{m.get(key)}', this run's is '{want}'", str(path),
                            f"make one with `appliance bundle create --profile {profile.name} --provider {provider}` on a connected {pins.goarch()} machine",
                            code=2)
    todo = bundles.needed(m, paths.cache_dir())
    bundles.check_room(m, todo, paths.cache_dir())
    reporter.step("bundle", "running", f"unpacking {len(todo)} of {len({f['entry'] for f in m['files']})} entries")
    t0 = time.monotonic()
    got = bundles.unpack(path, todo, reporter.message)
    seconds = round(time.monotonic() - t0, 1)
    reporter.step("bundle", "done", f"{got['files']} files, {got['bytes'] / 2**30:.2f} GiB into the caches", seconds)
    return {"file": str(path), **got, "seconds": seconds}


def up(profile: Profile, provider: str, reporter, parallel: int = 2, bundle: Path | None = None) -> dict[str, Any]:
    """Bring the cluster and its components to the profile; resumes; refuses a second concurrent run.
    Fails at once when the host lacks a program the plan needs (before any build). With a `bundle`: fills the
    caches from it, then runs offline, naming anything missing before the cluster is created."""
    if bundle:
        unpacked = _from_bundle(bundle, profile, provider, reporter)
        with offline.enabled():
            prebuild(profile, provider, reporter)
            return {**_up(profile, provider, reporter, parallel), "bundle": unpacked}
    return _up(profile, provider, reporter, parallel)


def _up(profile: Profile, provider: str, reporter, parallel: int) -> dict[str, Any]:
    prereqs.check(profile, provider)
    c = Cluster(profile, provider, reporter)
    t0 = time.monotonic()
    with Lock(c.dir, profile.cluster.name):
        state = State(c.dir)
        _check_owner(state, provider, profile.cluster.name)
        _check_version(state, profile.cluster.name)
        _check_fixed(state, profile)
        now = {n: s.options for n, s in profile.components.items() if s.enabled}
        leaving = _leaving(state, profile)
        state.data.update(provider=provider, profile=profile.name, cluster_spec=profile.cluster.model_dump(),
                          port_mappings=c.provider.port_mappings(profile.cluster), components=now, removing=leaving,
                          appliance=version("appliance"))
        state.save()
        with progress.reporting(reporter, prereqs.announce(profile, provider, reporter)):
            out = execute(c.plan(state), state, reporter, parallel)
        removed = _remove_switched_off(c, state, reporter) if leaving and not out.failed else {}
        result = {"cluster": profile.cluster.name, "provider": provider, "ran": out.ran, "skipped": out.skipped,
                  "failed": out.failed, "blocked": out.blocked, "noop": out.noop and not removed,
                  "removed": removed, "seconds": round(time.monotonic() - t0, 2), "kubeconfig": state.kubeconfig}
        if out.failed:
            logs = c.dir / "logs" / time.strftime("%Y%m%d-%H%M%S")
            try:
                c.provider.collect_logs(logs)
            except Exception as e:  # noqa: BLE001 — log export must not hide the real failure
                reporter.message(f"could not export logs: {e}")
            first = next(iter(out.failed))
            raise UserError(f"step '{first}' failed: {out.failed[first]}", f"logs in {logs}",
                            "fix the cause and run `appliance up` again: it resumes from the failed step")
        return result


def _check_version(state: State, cluster: str) -> None:
    """Refuse a downgrade: a cluster a newer appliance brought up (its objects, CRDs and stored data may be
    of versions this one does not know)."""
    from packaging.version import Version

    made, this = state.data.get("appliance"), version("appliance")
    if made and Version(made) > Version(this):
        raise UserError(f"cluster '{cluster}' was brought up by appliance {made}, newer than this {this}: downgrades are not supported",
                        str(state.path), f"use appliance {made} or newer for this cluster (`appliance version` says which this is)", code=2)


def changes(profile: Profile, provider: str) -> dict[str, Any]:
    """What `up` of this profile would change on the cluster as it stands (nothing is run): the appliance
    version it was brought up by and this one's, and each step: new, a new version of its component, applied
    again (its options or a dependency's changed), unchanged; and the components it would remove."""
    c = Cluster(profile, provider)
    state = State(c.dir)
    _check_owner(state, provider, profile.cluster.name)
    _check_version(state, profile.cluster.name)
    steps: dict[str, str] = {}
    for s in c.plan(state).steps:
        rec = state.step(s.id)
        if rec.get("status") in (None, "removed"):
            steps[s.id] = "new"
        elif rec.get("fingerprint") == s.fingerprint and rec.get("status") == "done":
            steps[s.id] = "unchanged"
        elif s.revision and rec.get("revision") != s.revision:
            steps[s.id] = "new version" + ("" if rec.get("revision") else " (the cluster's records no version: applied again)")
        else:
            steps[s.id] = "applied again (options or a dependency changed, or its last run did not finish)"
    return {"cluster": profile.cluster.name, "from": state.data.get("appliance"), "to": version("appliance"), "steps": steps,
            "removed": sorted(_leaving(state, profile))}


def _leaving(state: State, profile: Profile) -> dict[str, dict]:
    """The components installed (or being removed) that `profile` no longer enables, with their recorded options."""
    return {n: o for n, o in {**(state.data.get("components") or {}), **(state.data.get("removing") or {})}.items()
            if not (n in profile.components and profile.components[n].enabled) and n in components.CATALOG
            and state.step(n).get("status") not in (None, "removed")}


def _check_fixed(state: State, profile: Profile) -> None:
    """Refuse a change of an option that places the data of an installed component (its `data.fixed`): the
    data would stay behind where it is, and the component would start empty elsewhere."""
    was = state.data.get("components") or {}
    for name, spec in profile.components.items():
        cls = components.CATALOG[name]
        data = cls.decl.data
        if not (spec.enabled and data and name in was) or state.step(name).get("status") in (None, "removed"):
            continue
        old, new = cls.Opts.model_validate(was[name]), cls.Opts.model_validate(spec.options)
        for o in data.fixed:
            if getattr(old, o) != getattr(new, o):
                raise UserError(
                    f"component '{name}' keeps {data.holds} where option {o} is {getattr(old, o)!r}: changing it to "
                    f"{getattr(new, o)!r} would leave that data behind", f"profile '{profile.name}' (components.{name}.options.{o})",
                    f"keep {o}: {getattr(old, o)!r} (the appliance does not move data between places; "
                    f"`appliance down --yes` and `up` start the cluster over, empty)", code=2)


def _remove_switched_off(c: Cluster, state: State, reporter) -> dict[str, list[str]]:
    """Remove the components the profile no longer enables (dependents first), keeping what holds data; each
    is recorded `removed` with what was kept, and returned so."""
    leaving = dict(state.data.get("removing") or {})
    profile = c.profile.model_copy(update={"components": {**c.profile.components, **{n: ComponentSpec(options=o) for n, o in leaving.items()}}})
    comps = components.enabled(profile, c.provider.runtime())  # each given what its dependencies offer (the users)
    out: dict[str, list[str]] = {}
    while leaving:
        name = next(n for n in sorted(leaving) if not any(n in comps[m].depends for m in leaving if m != n))
        kept = comps[name].remove(c.kube())
        leaving.pop(name)
        state.data["removing"] = leaving
        state.set_step(name, status="removed", kept=kept, finished=time.time())
        reporter.step(name, "done", "removed (switched off in the profile)" + (f"; kept, holding data: {', '.join(kept)}" if kept else ""))
        out[name] = kept
    return out


def recorded(cluster: str) -> tuple[Profile, str]:
    """The cluster section, components and provider a cluster was made with (those switched off but not yet
    removed too), from its state."""
    state = State(paths.state_dir(cluster))
    if not state.path.exists():
        raise UserError(f"no cluster named '{cluster}'", str(state.path), "run `appliance up` first (or check --cluster)")
    spec = ClusterSpec.model_validate(state.data["cluster_spec"])
    comps = {n: ComponentSpec(options=o) for n, o in {**(state.data.get("removing") or {}), **(state.data.get("components") or {})}.items()
             if n in components.CATALOG}
    return Profile(name=state.data.get("profile", cluster), cluster=spec, components=comps), state.data["provider"]


def last_backup(cluster: str) -> dict | None:
    """Where and when `appliance backup` last wrote this cluster's data (None: never)."""
    return State(paths.state_dir(cluster)).data.get("backup")


def held_data(cluster: str) -> list[str]:
    """What the cluster keeps that `down` would delete: the data its installed components declare, and its
    volume claims where the cluster answers."""
    profile, provider = recorded(cluster)
    state = State(paths.state_dir(cluster))
    held = [f"{components.CATALOG[n].decl.data.holds} ({n})" for n in profile.components
            if components.CATALOG[n].decl.data and state.step(n).get("status") not in (None, "removed")]
    c = Cluster(profile, provider)
    if c.provider.ready() and (claims := c.kube().claims()):
        held.append(f"{len(claims)} volume claims: " + ", ".join(sorted(f"{x['namespace']}/{x['name']}" for x in claims)))
    return held


def cluster_kube(cluster: str):
    """A client for a cluster `up` made, as its admin."""
    profile, provider = recorded(cluster)
    return Cluster(profile, provider).kube()


def node_access(cluster: str, reporter=None) -> tuple[Any, Path]:
    """(provider, admin kubeconfig) of a cluster `up` made: what drains and removes its nodes."""
    profile, provider = recorded(cluster)
    c = Cluster(profile, provider, reporter)
    if not (kubeconfig := State(c.dir).kubeconfig):
        raise UserError(f"cluster '{cluster}' has no kubeconfig yet", str(c.dir), "run `appliance up` first")
    return c.provider, Path(kubeconfig)


def running_kube(cluster: str):
    """An admin client for the cluster when `up` made it and it answers; else None."""
    if not State(paths.state_dir(cluster)).path.exists():
        return None
    profile, provider = recorded(cluster)
    c = Cluster(profile, provider)
    return c.kube() if c.provider.ready() else None


def down(cluster: str, reporter) -> None:
    """Remove the components with their data (reverse dependency order, so host-side pieces stop too) — where
    the cluster takes them along (a disposable provider), only stop their host processes —, then delete the
    cluster and its state folder, the lock held throughout. The CLI asks first where there is data (held_data)."""
    profile, provider = recorded(cluster)
    c = Cluster(profile, provider, reporter)
    with Lock(c.dir, cluster):
        if c.provider.disposable:
            if kubeconfig := State(c.dir).kubeconfig:
                runtime.stop_all(runtime.recorded(kubeconfig))
        elif c.provider.ready():
            comps = components.enabled(profile, c.provider.runtime())
            for wave in reversed(c.plan().waves()):
                for name in (n for n in wave if n in comps):
                    try:
                        comps[name].remove(c.kube(), delete_data=True)
                        reporter.step(name, "done", "removed with its data")
                    except Exception as e:  # noqa: BLE001 — the cluster goes anyway; say what was left
                        reporter.step(name, "failed", f"remove: {e}")
        c.provider.delete()
        shutil.rmtree(c.dir, ignore_errors=True)  # the lock file with it, still held: no `up` starts in between


def status(cluster: str) -> dict[str, Any]:
    """What the state says, what the provider sees, and whether each component is ready."""
    profile, provider = recorded(cluster)
    c = Cluster(profile, provider)
    state = State(c.dir)
    ready = c.provider.ready()
    comps: dict[str, Any] = {}
    enabled = components.enabled(profile, c.provider.runtime())  # each given what its dependencies offer (the users)
    for sid, rec in state.data["steps"].items():
        if sid == CLUSTER:
            continue
        entry = {"step": rec.get("status"), "error": rec.get("error")}
        if rec.get("status") == "removed":
            entry["kept"] = rec.get("kept") or []
        elif ready and sid in components.CATALOG:
            comp = enabled.get(sid) or components.CATALOG[sid](None, c.provider.runtime())  # a step the profile since left
            ok, missing = comp.ready(c.kube())
            entry.update(ready=ok, missing=missing, notes=comp.notes(c.kube()) if ok else [])
        comps[sid] = entry
    return {
        "cluster": cluster, "provider": provider, "profile": state.data.get("profile"), "ready": ready,
        "kubeconfig": state.kubeconfig,
        "steps": {k: v.get("status") for k, v in state.data["steps"].items()},
        "components": comps, "provider_status": c.provider.status(),
        "host_processes": runtime.infos(state.kubeconfig) if state.kubeconfig else [],
    }
