"""What a plan needs before it runs: programs from Debian packages, which `up` checks in its first seconds
(before any build) and `appliance host-setup` (`make host-setup`) installs where it may (root and apt); and
the builds the caches lack, which `up` announces with a rough time for this machine."""

from __future__ import annotations

import os
import shutil
import subprocess

from appliance import components, paths, progress, providers
from appliance.components.decl import Python
from appliance.errors import UserError
from appliance.host import Need
from appliance.images import builds, debian
from appliance.schema import Profile
from appliance.util import offline

DEBOOTSTRAP = Need("debootstrap", ("debootstrap", "debian-archive-keyring"), "Debian root filesystems of the images built here")
NPM = Need("npm", ("npm",), "configurable-http-proxy of the notebook hub (npm ci)")
BROWSER = Need("chromedriver", ("chromium", "chromium-driver"), "the browser tests (headless Debian Chromium)")


def every() -> tuple[Need, ...]:
    """Everything any plan (or the test suite) may need, the providers' programs included: what host-setup installs."""
    return (DEBOOTSTRAP, *dict.fromkeys(n for name in providers.NAMES for n in providers.get(name).programs), NPM, BROWSER)


def _python_images(profile: Profile, provider: str) -> list[Python]:
    """The `python:` declarations of the images this plan builds here."""
    comps = components.enabled(profile, providers.get(provider).runtime())  # no images where pods do not run
    built = {i.name for c in comps.values() for i in c.images() if not i.upstream}
    return [d.python for c in comps.values() for n, d in c.decl.images.items() if n in built and d.python]


def _rootfs_missing(profile: Profile, provider: str, wanted: dict[str, list[str]]) -> list[str]:
    """The Debian root filesystems this plan would have to debootstrap (not in the cache yet): the provider's
    `wanted` and the images' python ones."""
    missing = [n for n, pkgs in wanted.items() if not debian.rootfs_path(n, pkgs).exists()]
    pythons = {tuple(sorted({*builds.BASE_PACKAGES, *p.packages})) for p in _python_images(profile, provider)}
    return missing + [f"python ({', '.join(pkgs)})" for pkgs in sorted(pythons) if not debian.rootfs_path("python", list(pkgs)).exists()]


def needs(profile: Profile, provider: str) -> list[tuple[Need, str]]:
    """(need, what of this plan needs it) for each host program the plan will run."""
    out = []
    cold = providers.get(provider).cold_build(profile.cluster)
    if rootfs := _rootfs_missing(profile, provider, cold.rootfs):
        out.append((DEBOOTSTRAP, f"{', '.join(rootfs)} root filesystem(s) are not cached"))
    out += cold.programs
    if any(p.npm and not builds.npm_cached(paths.shipped(p.npm.package)) for p in _python_images(profile, provider)):
        out.append((NPM, "an image's npm packages are not cached"))
    return out


def install_command(missing: list[Need]) -> str:
    pkgs = " ".join(dict.fromkeys(p for n in missing for p in n.packages))
    return f"apt-get install -y {pkgs}"


def missing(profile: Profile, provider: str) -> tuple[str, str]:
    """(what the host lacks for this plan, the fix); ("", "") when nothing."""
    lacking = [(n, why) for n, why in needs(profile, provider) if not shutil.which(n.program)]
    if not lacking:
        return "", ""
    what = "; ".join(f"{n.program} ({n.why}: {why})" for n, why in lacking)
    return what, f"make host-setup (as root), or {install_command([n for n, _ in lacking])}"


def check(profile: Profile, provider: str) -> None:
    """Fail at once, with what fixes it, when the profile enables a component that needs pods on a provider
    that runs none (component.yaml `needs_pods: why`), or the plan needs a program the host lacks."""
    runtime = providers.get(provider).runtime()
    for name, comp in components.enabled(profile, runtime).items():
        if not runtime.pods_run and (why := comp.decl.needs_pods):
            raise UserError(f"component '{name}' needs pods, which the {provider} provider does not run ({why})",
                            f"profile '{profile.name}' (components.{name})",
                            f"leave it out there: provider_overrides.{provider}.components.{name}.enabled: false, or --set components.{name}.enabled=false")
    what, fix = missing(profile, provider)
    if what:
        offline.refuse(f"what this host would build with {what}")
        raise UserError(f"this host lacks {what}", f"provider {provider}, profile '{profile.name}'", fix)


def setup(report=print) -> list[Need]:
    """Install every missing program where this process may (root, apt-get); returns what is still missing."""
    missing = [n for n in every() if not shutil.which(n.program)]
    if not missing:
        report("host-setup: nothing to install")
        return []
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        report(f"host-setup: missing {', '.join(n.program for n in missing)}; not root or no apt-get — run: {install_command(missing)}")
        return missing
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    report(f"host-setup: {install_command(missing)}")
    for cmd in (["apt-get", "update", "-qq"], install_command(missing).split() + ["-qq"]):
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            raise UserError(f"`{' '.join(cmd)}` failed (exit {r.returncode}): {r.stderr.strip()[-300:]}", "host-setup",
                            "check the host's apt sources, then run `make host-setup` again")
    return [n for n in every() if not shutil.which(n.program)]


def pending(profile, provider: str) -> tuple[list[str], int]:
    """What a cold `up` of `profile` on `provider` would build that the caches lack (names of COST_2CPU),
    and how many toolchain groups it would download instead of build (release hosts reachable)."""
    from appliance.toolchain import TOOLS, Toolchain
    from appliance.toolchain.sources import ReleaseSource

    cold = providers.get(provider).cold_build(profile.cluster)
    todo, go = list(cold.builds), list(cold.go)
    tc, groups = Toolchain(), []
    for t in cold.tools:
        try:
            tc.path(t)
        except UserError:
            groups += [TOOLS[t].group] if TOOLS[t].group not in groups else []
    downloads = len(groups) if groups and ReleaseSource().available()[0] else 0
    todo[:0] = [] if downloads else [f"toolchain {g}" for g in groups]
    for comp in components.enabled(profile, providers.get(provider).runtime()).values():
        go += [p for p in comp.go_programs() if p not in go]
    todo += [name for module, version, name in go if not builds.go_binary_path(module, version, name).is_file()]
    return todo, downloads


def announce(profile, provider: str, reporter) -> int:
    """At the start of `up`: say what is not cached and roughly how long building it takes here.
    Returns the number of builds (the step count's total)."""
    todo, downloads = pending(profile, provider)
    if todo or downloads:
        n = progress.cpus()
        what = ", ".join(todo) + (f"; {downloads} toolchain downloads" if downloads else "")
        minutes = max(1, round(progress.estimate_seconds(todo, n, downloads) / 60))
        reporter.message(f"first run: {len(todo)} builds not cached yet ({what}); roughly {minutes} min "
                         f"on this machine ({n} CPUs), once")
    return len(todo)
