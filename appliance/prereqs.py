"""What a plan needs from the host beyond Python and Go: programs from Debian packages. `up` checks them
in its first seconds (before any build); `appliance host-setup` (`make host-setup`) installs them where it
may (root and apt), and says what to run where it may not."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

from appliance import components
from appliance.errors import UserError
from appliance.images import debian
from appliance.schema import Profile


@dataclass(frozen=True)
class Need:
    program: str
    packages: tuple[str, ...]
    why: str


DEBOOTSTRAP = Need("debootstrap", ("debootstrap",), "Debian root filesystems of the images built here")
GCC = Need("gcc", ("gcc", "libc6-dev"), "the pause program of the kind node image")
#: everything any plan may need (what host-setup installs)
ALL = (DEBOOTSTRAP, GCC)


def _rootfs_missing(profile: Profile, provider: str) -> list[str]:
    """The Debian root filesystems this plan would have to debootstrap (not in the cache yet)."""
    from appliance.components.builds import BASE_PACKAGES

    wanted = {}
    if provider == "kind" and not profile.cluster.kind.image:
        wanted |= {"node": debian.NODE_PACKAGES, "slim": debian.SLIM_PACKAGES}
    if provider != "sim" and any(i for c in components.enabled(profile).values() for i in c.images() if not i.upstream):
        wanted["python"] = BASE_PACKAGES
    return [n for n, pkgs in wanted.items() if not debian.rootfs_path(n, pkgs).exists()]


def needs(profile: Profile, provider: str) -> list[tuple[Need, str]]:
    """(need, what of this plan needs it) for each host program the plan will run."""
    out = []
    if rootfs := _rootfs_missing(profile, provider):
        out.append((DEBOOTSTRAP, f"{', '.join(rootfs)} root filesystem(s) are not cached"))
    if provider == "kind" and not profile.cluster.kind.image and "node" in rootfs:
        out.append((GCC, "the kind node image is built here"))
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
    """Fail at once, with the command that fixes it, when the plan needs a program the host lacks."""
    what, fix = missing(profile, provider)
    if what:
        raise UserError(f"this host lacks {what}", f"provider {provider}, profile '{profile.name}'", fix)


def setup(report=print) -> list[Need]:
    """Install every missing program where this process may (root, apt-get); returns what is still missing."""
    missing = [n for n in ALL if not shutil.which(n.program)]
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
    return [n for n in ALL if not shutil.which(n.program)]
