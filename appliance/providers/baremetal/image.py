"""A local "bare server" image for testing the bare-metal playbooks: Debian + systemd.

Built with `debootstrap` (no registry needed) and loaded with `docker import`;
cached by a hash of its inputs so a second call is instant. The Debian mirror
comes from the host's own apt sources (override: `mirror=` or
$APPLIANCE_DEBIAN_MIRROR); nothing here names a mirror.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from appliance.errors import UserError
from appliance.images.debian import keyring
from appliance.paths import cache_dir

SUITE = "bookworm"
#: What a freshly installed server has: systemd as PID 1, python for Ansible, sudo.
PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "python3", "python3-apt", "sudo", "iproute2",
    "ca-certificates", "gnupg", "curl", "kmod", "procps", "pciutils", "iptables",
)
#: Bump when the build steps below change (part of the cache key).
RECIPE = "3"
IMPORT_CHANGES = (
    'CMD ["/sbin/init"]',
    "ENV container=docker",
)
#: docker import cannot set STOPSIGNAL: pass it when running (systemd halts on SIGRTMIN+3).
STOP_SIGNAL = "SIGRTMIN+3"
# Units that make no sense (or hang) in a container.
_MASK = (
    "getty.target", "console-getty.service", "systemd-firstboot.service",
    "systemd-udevd.service", "systemd-udev-trigger.service", "systemd-remount-fs.service",
    "sys-kernel-config.mount", "sys-kernel-debug.mount", "sys-kernel-tracing.mount",
    "systemd-modules-load.service", "apt-daily.timer", "apt-daily-upgrade.timer",
)


def _apt_entries() -> list[dict]:
    """The host's apt sources as [{uris, suites, components}] (one-line and deb822 formats)."""
    root = os.environ.get("APPLIANCE_APT_ROOT", "/etc/apt")
    entries: list[dict] = []
    for path in [f"{root}/sources.list", *sorted(glob.glob(f"{root}/sources.list.d/*.list"))]:
        try:
            lines = Path(path).read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            line = line.split("#", 1)[0].strip()
            m = re.match(r"^deb\s+(\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s*(.*)$", line)
            if m:
                entries.append({"uris": [m.group(2)], "suites": [m.group(3)], "components": m.group(4).split()})
    for path in sorted(glob.glob(f"{root}/sources.list.d/*.sources")):
        try:
            text = Path(path).read_text()
        except OSError:
            continue
        for block in re.split(r"\n\s*\n", text):
            fields: dict[str, str] = {}
            for line in block.splitlines():
                if line.startswith("#") or ":" not in line:
                    continue
                k, v = line.split(":", 1)
                fields[k.strip().lower()] = v.strip()
            if "deb" in fields.get("types", "").split() and fields.get("uris"):
                entries.append({
                    "uris": fields["uris"].split(),
                    "suites": fields.get("suites", "").split(),
                    "components": fields.get("components", "").split(),
                })
    return entries


def debian_mirrors(suite: str = SUITE, mirror: str = "") -> tuple[str, str]:
    """(main mirror, security mirror or "") for `suite`, from the override or the host's apt sources."""
    mirror = mirror or os.environ.get("APPLIANCE_DEBIAN_MIRROR", "")
    entries = _apt_entries()
    security = next((e["uris"][0] for e in entries if f"{suite}-security" in e["suites"]), "")
    if mirror:
        return mirror.rstrip("/"), security
    for e in entries:
        if suite in e["suites"] and "main" in e["components"]:
            return e["uris"][0].rstrip("/"), security
    raise UserError(
        f"no Debian '{suite}' apt source on this host",
        where="/etc/apt/sources.list*",
        fix="pass mirror=URL or set APPLIANCE_DEBIAN_MIRROR to a Debian mirror",
    )


def image_key(suite: str = SUITE, mirror: str = "") -> str:
    main, security = debian_mirrors(suite, mirror)
    blob = json.dumps([RECIPE, suite, main, security, PACKAGES, _MASK, IMPORT_CHANGES], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def image_tag(suite: str = SUITE, mirror: str = "") -> str:
    return f"appliance/systemd-host:{suite}-{image_key(suite, mirror)}"


def _docker(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], check=False, capture_output=True, text=True, **kw)


def _have_image(tag: str) -> bool:
    return _docker("image", "inspect", tag).returncode == 0


def build_image(suite: str = SUITE, mirror: str = "", report=print, force: bool = False) -> str:
    """Build (or reuse) the systemd host image; returns its tag."""
    if shutil.which("docker") is None:
        raise UserError("docker client not found", fix="install docker and start the daemon")
    tag = image_tag(suite, mirror)
    if not force and _have_image(tag):
        return tag
    main, security = debian_mirrors(suite, mirror)
    # The rootfs tarball is cached too, so a pruned docker store re-imports in seconds.
    tarball = cache_dir("images", "systemd-host", f"{tag.rsplit(':', 1)[1]}.tar")
    if force or not tarball.exists():
        if shutil.which("debootstrap") is None:
            raise UserError("debootstrap not found", fix="apt-get install debootstrap")
        if os.geteuid() != 0:
            raise UserError("building the host image needs root (debootstrap)", fix="run as root")
        tarball.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="systemd-host-", dir=tarball.parent) as tmp:
            root = Path(tmp, "rootfs")
            report(f"image: debootstrap {suite} from {main} (a few minutes, once)")
            r = subprocess.run(
                ["debootstrap", "--variant=minbase", "--force-check-gpg", f"--keyring={keyring()}",
                 f"--include={','.join(PACKAGES)}", suite, str(root), main],
                capture_output=True, text=True,
            )
            if r.returncode != 0:
                tail = (r.stdout + r.stderr).strip().splitlines()[-3:]
                raise UserError(f"debootstrap failed: {' | '.join(tail)}", where=main,
                                fix="check the mirror (mirror=/APPLIANCE_DEBIAN_MIRROR) and network")
            _configure_rootfs(root, suite, main, security)
            part = tarball.with_suffix(".part")
            subprocess.run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(part), "."], check=True)
            part.rename(tarball)
    report(f"image: docker import {tag}")
    cmd = ["docker", "import"]
    for c in IMPORT_CHANGES:
        cmd += ["-c", c]
    r = subprocess.run([*cmd, str(tarball), tag], capture_output=True, text=True)
    if r.returncode != 0:
        raise UserError(f"docker import failed: {r.stderr.strip()}", where=str(tarball))
    return tag


def _configure_rootfs(root: Path, suite: str, main: str, security: str) -> None:
    lines = [f"deb {main} {suite} main", f"deb {main} {suite}-updates main"]
    if security:
        lines.append(f"deb {security} {suite}-security main")
    Path(root, "etc/apt/sources.list").write_text("\n".join(lines) + "\n")
    Path(root, "etc/hostname").write_text("baremetal\n")
    Path(root, "etc/machine-id").write_text("")  # systemd makes a fresh one per container
    for unit in _MASK:
        link = Path(root, "etc/systemd/system", unit)
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    # a plain admin user with passwordless sudo, like a freshly provisioned server
    subprocess.run(["chroot", str(root), "useradd", "-m", "-s", "/bin/bash", "-G", "sudo", "admin"], check=True)
    Path(root, "etc/sudoers.d/admin").write_text("admin ALL=(ALL) NOPASSWD:ALL\n")
    os.chmod(Path(root, "etc/sudoers.d/admin"), 0o440)
    # keep the image small: apt lists and caches are refetched by the playbooks
    for d in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for p in Path(root, d).glob("*"):
            if p.is_file():
                p.unlink()
