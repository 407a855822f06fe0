"""The bare-metal tests' hosts: systemd containers playing bare servers, reached by Ansible through Docker, and the
provider converging them offline with the toolchain's Kubernetes binaries."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")  # the reaper image can't be pulled here

#: the chain that walls a host off (Host.wall_off)
EGRESS = "TEST-NO-WAY-OUT"
CONNECTION = os.environ.get("APPLIANCE_TEST_ANSIBLE_CONNECTION", "community.docker.docker_api")


def skip_unless_ready() -> None:
    try:
        import ansible_runner  # noqa: F401
        import docker
        from testcontainers.core.container import DockerContainer  # noqa: F401
    except ImportError as e:
        pytest.skip(f"missing test dependency: {e.name} (pip install testcontainers ansible-runner ansible docker)")
    try:
        docker.from_env().ping()
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"no Docker daemon ({e.__class__.__name__}); start one (CI: sandbox-docker-up)")
    from appliance.providers.baremetal.runner import ansible_program

    r = subprocess.run([ansible_program("ansible-doc"), "-t", "connection", "-l"], capture_output=True, text=True)
    if CONNECTION not in r.stdout:
        pytest.skip(f"Ansible connection {CONNECTION} missing (pip install ansible, which bundles community.docker)")


def k8s_binaries(tmp: Path) -> tuple[Path, bool]:
    """(folder with kubelet/kubeadm/kubectl, real?) — the toolchain's (built if missing), else stand-ins
    where it cannot be built (no Go and no download)."""
    try:
        from appliance.toolchain import Toolchain

        tc = Toolchain()
        names = ["kubelet", "kubeadm", "kubectl"]
        paths = tc.ensure(names)  # builds them on a fresh machine (CI), so the kubelet checks really run
        if len(paths) == 3:
            d = tmp / "k8s-bin"
            d.mkdir(exist_ok=True)
            for n, p in paths.items():
                (d / n).unlink(missing_ok=True)
                (d / n).symlink_to(p)
            return d, True
    except Exception as e:  # noqa: BLE001 - any toolchain problem means stand-ins
        print(f"toolchain binaries unavailable: {e}")
    d = tmp / "k8s-stub"
    d.mkdir(exist_ok=True)
    for n in ("kubelet", "kubeadm", "kubectl"):
        (d / n).write_text(f'#!/bin/sh\necho "{n} stand-in (toolchain not built)"\n')
        (d / n).chmod(0o755)
    return d, False


class Host:
    """One systemd container playing a bare server."""

    def __init__(self, image: str, name: str, network: str | None = None):
        from testcontainers.core.container import DockerContainer

        from appliance.providers.baremetal.image import STOP_SIGNAL

        self.name = name
        self.volume = f"{name}-var"
        self.container = (
            DockerContainer(image)
            .with_name(name)
            .with_tmpfs_mount("/run", "rw,exec")
            .with_tmpfs_mount("/tmp", "rw,exec")
            .with_volume_mapping(self.volume, "/var", "rw")
            .with_kwargs(privileged=True, cgroupns="private", hostname=name, stop_signal=STOP_SIGNAL,
                         **({"network": network} if network else {}))
        )

    def start(self) -> "Host":
        self.container.start()
        deadline = time.time() + 60
        state = ""
        while time.time() < deadline:
            state = self.sh("systemctl is-system-running", check=False).strip()
            if state in ("running", "degraded"):
                return self
            time.sleep(0.5)
        raise RuntimeError(f"systemd in {self.name} did not come up (state: {state!r})")

    def wall_off(self, allowed: list[str]) -> None:
        """Let the host's own processes reach only loopback and the `allowed` networks (its Docker network, the
        pod and service ranges): every other connection (a package mirror, a registry) is refused and counted."""
        rules = "".join(f"iptables -A {EGRESS} -d {net} -j RETURN; " for net in ["127.0.0.0/8", *allowed])
        self.sh(f"iptables -N {EGRESS}; {rules}iptables -A {EGRESS} -j REJECT; iptables -I OUTPUT 1 -j {EGRESS}")

    def refused(self) -> int:
        """How many packets the walled-off host tried to send elsewhere."""
        out = self.sh(f"iptables -nvxL {EGRESS}")
        return sum(int(ln.split()[0]) for ln in out.splitlines() if "REJECT" in ln)

    def sh(self, cmd: str, check: bool = True) -> str:
        r = subprocess.run(["docker", "exec", self.name, "bash", "-c", cmd], capture_output=True, text=True)
        if check and r.returncode != 0:
            raise AssertionError(f"`{cmd}` failed in {self.name}: {r.stdout}{r.stderr}")
        return r.stdout

    def stop(self) -> None:
        try:
            self.container.stop()
        finally:
            subprocess.run(["docker", "volume", "rm", "-f", self.volume], capture_output=True)


def make_provider(hosts: str | list[tuple[str, str]], bins: Path, state: Path, lines: list[str], **extra_vars):
    """The provider for `hosts` (one name, or (name, role) pairs: the first a control plane) reached through
    Docker, offline with the binaries in `bins`."""
    from appliance.providers.baremetal import BaremetalProvider
    from appliance.schema import ClusterSpec

    # a busy Docker daemon can take longer than the connection's default 60 s to answer
    hv = {"ansible_connection": CONNECTION, "ansible_docker_timeout": 300, "appliance_k8s_binaries_dir": str(bins),
          "appliance_kubeadm_init": False, **extra_vars}
    pairs = [(hosts, "control-plane")] if isinstance(hosts, str) else hosts
    spec = ClusterSpec.model_validate({"name": "bmtest", "baremetal": {"offline": True, "hosts": [
        {"name": n, "address": n, "user": "root", "role": r, "vars": hv} for n, r in pairs]}})
    return BaremetalProvider(spec, state, report=lines.append)


def host_image() -> str:
    """The systemd host image (built once, cached), or skip saying why it cannot be."""
    skip_unless_ready()
    from appliance.errors import UserError
    from appliance.providers.baremetal.image import build_image

    try:
        return build_image(report=print)
    except UserError as e:
        pytest.skip(f"cannot build the systemd host image: {e.line()}")
