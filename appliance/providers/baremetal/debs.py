"""The Debian packages the roles install, as one archive of a flat apt repository that offline hosts install
from (copied over by the preflight role; no mirror, no network). Made once on a connected machine with
`debootstrap --download-only` over a minimal base (signatures checked with Debian's keyring), cached by suite
and package list, carried by bundles.

The package list is the roles' own (data in their defaults), so a role that installs one more package gets it
offline too.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

import yaml

from appliance.errors import UserError
from appliance.images import debian
from appliance.paths import cache_dir
from appliance.providers.baremetal.runner import playbooks_dir
from appliance.util import offline

#: the role variables that list the Debian packages a role installs from the distribution
ROLE_PACKAGES = {"preflight": "preflight_time_sync_packages", "containerd": "containerd_packages",
                 "kubernetes": "kubernetes_host_packages", "cni": "cni_packages"}
#: bump when the way the repository is made changes (part of the cache key)
RECIPE = "1"
ARCHIVE = "repo.tar"


def role_packages() -> list[str]:
    """Every package the roles install from the distribution, from their defaults."""
    out: set[str] = set()
    for role, var in ROLE_PACKAGES.items():
        defaults = yaml.safe_load((playbooks_dir() / "roles" / role / "defaults" / "main.yml").read_text()) or {}
        out.update(defaults[var])
    return sorted(out)


def repo_dir(suite: str = debian.SUITE, packages: list[str] | None = None) -> Path:
    """Where the repository of `packages` (default: the roles') for `suite` is cached (it may not exist yet)."""
    pkgs = sorted(packages if packages is not None else role_packages())
    key = hashlib.sha256(json.dumps({"v": RECIPE, "suite": suite, "pkgs": pkgs}).encode()).hexdigest()[:16]
    return cache_dir("images", "host-debs", f"{suite}-{key}")


def host_debs(suite: str = debian.SUITE, mirror: str = "", report=print) -> Path:
    """The cached folder holding `repo.tar` (the .debs and their `Packages` index) and `suite`; made when missing."""
    packages = role_packages()
    dest = repo_dir(suite, packages)
    if (dest / ARCHIVE).is_file():
        return dest
    offline.refuse(f"the hosts' Debian packages ({dest.name})")
    if not shutil.which("debootstrap"):
        raise UserError("debootstrap is not installed", "bare-metal packages", "apt-get install debootstrap")
    url = debian.debian_mirror(suite, mirror)
    report(f"packages: downloading {len(packages)} Debian {suite} packages the roles install, and what they need, from {url}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="host-debs-", dir=dest.parent) as tmp:
        root = Path(tmp, "root")
        debian.debootstrap(root, packages, suite, url, dest.parent / f"{dest.name}-debootstrap.log", "--download-only")
        part = Path(tmp, "out")
        part.mkdir()
        write_repo(sorted((root / "var/cache/apt/archives").glob("*.deb")), part / ARCHIVE)
        (part / "suite").write_text(suite + "\n")
        part.rename(dest)
    return dest


def write_repo(debs: list[Path], out: Path) -> None:
    """A tar of `debs` and the `Packages` index that makes them a flat apt repository (`deb file:DIR ./`)."""
    stanzas = []
    for deb in debs:
        data = deb.read_bytes()
        fields = control(data, deb.name).rstrip("\n")
        stanzas.append(f"{fields}\nFilename: ./{deb.name}\nSize: {len(data)}\nSHA256: {hashlib.sha256(data).hexdigest()}\n")
    index = "\n".join(stanzas).encode()
    with tarfile.open(out, "w") as tar:
        info = tarfile.TarInfo("Packages")
        info.size, info.mode = len(index), 0o644
        tar.addfile(info, io.BytesIO(index))
        for deb in debs:
            tar.add(deb, arcname=deb.name)


def control(data: bytes, name: str) -> str:
    """The control file of the .deb `data` (an ar archive holding control.tar, compressed or not)."""
    if not data.startswith(b"!<arch>\n"):
        raise UserError(f"{name} is not a Debian package", name, "remove it from the cache and run again")
    pos = 8
    while pos + 60 <= len(data):
        member, size = data[pos:pos + 16].decode().strip().rstrip("/"), int(data[pos + 48:pos + 58])
        body = data[pos + 60:pos + 60 + size]
        if member.startswith("control.tar"):
            with tarfile.open(fileobj=io.BytesIO(body)) as tar:
                f = tar.extractfile(next(m for m in tar.getmembers() if os.path.basename(m.name) == "control"))
                return f.read().decode()
        pos += 60 + size + (size % 2)
    raise UserError(f"{name} has no control member", name, "remove it from the cache and run again")
