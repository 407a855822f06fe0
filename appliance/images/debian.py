"""Debian root filesystems built with debootstrap, cached as tarballs keyed by their inputs.

The mirror is never hard-coded: it is read from the host's apt sources
(/etc/apt/sources.list and /etc/apt/sources.list.d/*, one-line and deb822
formats), or taken from $APPLIANCE_DEBIAN_MIRROR / the `mirror` argument.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from appliance.errors import UserError
from appliance.paths import cache_dir
from appliance.util import offline

SUITE = "bookworm"
#: the Debian releases images are built on (a host's archive serving one serves the others)
RELEASES = ("bookworm", "trixie")
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
#: Bump when the way a rootfs is made changes (part of every cache key).
BUILDER_VERSION = "1"

#: Packages of the kind node's root filesystem.
NODE_PACKAGES = [
    "systemd", "systemd-sysv", "containerd", "runc", "containernetworking-plugins",
    "iptables", "nftables", "conntrack", "iproute2", "ethtool", "socat", "mount", "util-linux",
    "kmod", "ca-certificates", "procps", "libseccomp2", "bash",
]  # fmt: skip
#: Packages of the small base for kube-proxy and the CNI agent.
SLIM_PACKAGES = ["iptables", "nftables", "iproute2", "conntrack", "kmod"]


def apt_sources(root: str = "/") -> list[tuple[str, list[str]]]:
    """(URI, suites) pairs from the host's apt configuration, in file order."""
    out: list[tuple[str, list[str]]] = []
    base = Path(root, "etc/apt")
    files = [base / "sources.list"] + sorted((base / "sources.list.d").glob("*"))
    for f in files:
        try:
            text = f.read_text()
        except OSError:
            continue
        if f.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields: dict[str, str] = {}
                for line in stanza.splitlines():
                    if line.startswith("#") or ":" not in line:
                        continue
                    k, _, v = line.partition(":")
                    fields[k.strip().lower()] = v.strip()
                if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes") == "no":
                    continue
                for uri in fields.get("uris", "").split():
                    out.append((uri, fields.get("suites", "").split()))
        elif f.suffix == ".list" or f.name == "sources.list":
            for line in text.splitlines():
                line = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
                if len(line) >= 3 and line[0] == "deb":
                    out.append((line[1], [line[2]]))
    return out


def debian_mirror(suite: str = SUITE, override: str = "", root: str = "/") -> str:
    """The Debian archive URL for `suite`: override, $APPLIANCE_DEBIAN_MIRROR, or the host's apt sources."""
    m = override or os.environ.get("APPLIANCE_DEBIAN_MIRROR", "")
    if m:
        return m
    archives = [(uri, suites) for uri, suites in apt_sources(root) if "security" not in uri]
    for uri, suites in archives:
        if suite in suites:
            return uri
    for uri, suites in archives:  # the archive serving the host's Debian serves the other releases too
        if suite in RELEASES and any(s.split("-")[0] in RELEASES for s in suites):
            return uri
    raise UserError(
        f"no Debian '{suite}' archive found in the host's apt sources",
        "/etc/apt/sources.list.d",
        "pass --mirror URL or set APPLIANCE_DEBIAN_MIRROR",
    )


def keyring() -> Path:
    """Debian's archive keyring, which every root filesystem's Release file must be signed by."""
    k = Path(os.environ.get("APPLIANCE_DEBIAN_KEYRING", KEYRING))
    if not k.is_file():
        raise UserError(f"no Debian archive keyring at {k}", "images build",
                        "apt-get install debian-archive-keyring (or set APPLIANCE_DEBIAN_KEYRING): signatures are always checked")
    return k


def rootfs_key(packages: list[str], suite: str = SUITE, variant: str = "minbase") -> str:
    blob = json.dumps({"v": BUILDER_VERSION, "suite": suite, "variant": variant, "pkgs": sorted(packages)})
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def rootfs_path(name: str, packages: list[str], suite: str = SUITE) -> Path:
    """Where the tarball of this rootfs is cached (it may not exist yet)."""
    return cache_dir("images", "rootfs", f"{name}-{suite}-{rootfs_key(packages, suite)}.tar")


def rootfs_tarball(name: str, packages: list[str], *, suite: str = SUITE, mirror: str = "", report=print, rebuild: bool = False) -> Path:
    """A cached tarball of a debootstrapped `suite` with `packages`; built when missing."""
    dest = rootfs_path(name, packages, suite)
    if dest.exists() and not rebuild:
        return dest
    offline.refuse(f"the Debian root filesystem {dest.name}")
    if not shutil.which("debootstrap"):
        raise UserError("debootstrap is not installed", "images build", "apt-get install debootstrap")
    if os.geteuid() != 0:
        raise UserError("building a root filesystem needs root (debootstrap)", "images build", "run as root")
    url = debian_mirror(suite, mirror)
    dest.parent.mkdir(parents=True, exist_ok=True)
    report(f"debootstrap {suite} ({name}: {len(packages)} packages) from {url}")
    with tempfile.TemporaryDirectory(prefix=f"rootfs-{name}-", dir=dest.parent) as tmp:
        root = Path(tmp, "root")
        debootstrap(root, packages, suite, url, dest.parent / f"{name}-debootstrap.log")
        _slim(root)
        part = dest.with_suffix(".part")
        subprocess.run(
            ["tar", "--numeric-owner", "--xattrs", "--sort=name", "--mtime=@0", "-C", str(root), "-cf", str(part), "."],
            check=True,
        )
        part.rename(dest)
    return dest


def debootstrap(root: Path, packages: list[str], suite: str, url: str, log: Path, *options: str) -> None:
    """A minimal `suite` with `packages` into `root` from `url`, every signature checked against Debian's keyring
    (`options`: more of debootstrap's, e.g. --download-only); on failure its output goes to `log`."""
    cmd = ["debootstrap", *options, "--variant=minbase", "--merged-usr", "--force-check-gpg", f"--keyring={keyring()}",
           f"--include={','.join(packages)}", suite, str(root), url]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        log.write_text(r.stdout + r.stderr)
        raise UserError(f"debootstrap failed (exit {r.returncode})", str(log), "read the log; check the mirror")


def _slim(root: Path) -> None:
    """Drop caches, docs and logs that only make the image bigger."""
    for rel in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/info"):
        p = root / rel
        if p.is_dir():
            for child in p.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
    for p in (root / "var/log").rglob("*"):
        if p.is_file():
            p.unlink(missing_ok=True)
