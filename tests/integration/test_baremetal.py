"""Bare-metal playbooks against a real systemd "server" container (molecule-style).

create -> converge -> idempotence -> verify -> (kubeadm init if images) -> failures -> destroy.

Needs: a Docker daemon that can run privileged containers, debootstrap and root
(to build the host image once; cached), ansible-runner + ansible-core + the
community.docker collection (pip `ansible`). Skips with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")  # the reaper image can't be pulled here

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.docker]

CONNECTION = os.environ.get("APPLIANCE_TEST_ANSIBLE_CONNECTION", "community.docker.docker_api")


def _skip_unless_ready() -> None:
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

    def __init__(self, image: str, name: str):
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
            .with_kwargs(privileged=True, cgroupns="private", hostname=name, stop_signal=STOP_SIGNAL)
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


def make_provider(host_name: str, bins: Path, state: Path, lines: list[str], **extra_vars):
    from appliance.providers.baremetal import BaremetalProvider
    from appliance.schema import ClusterSpec

    # a busy Docker daemon can take longer than the connection's default 60 s to answer
    hv = {"ansible_connection": CONNECTION, "ansible_docker_timeout": 300, "appliance_k8s_binaries_dir": str(bins),
          "appliance_kubeadm_init": False, **extra_vars}
    spec = ClusterSpec.model_validate(
        {"name": "bmtest", "baremetal": {"offline": True, "hosts": [
            {"name": host_name, "address": host_name, "user": "root", "vars": hv}]}}
    )
    return BaremetalProvider(spec, state, report=lines.append)


# -- create ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def image() -> str:
    _skip_unless_ready()
    from appliance.errors import UserError
    from appliance.providers.baremetal.image import build_image

    try:
        return build_image(report=print)
    except UserError as e:
        pytest.skip(f"cannot build the systemd host image: {e.line()}")


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("baremetal")


@pytest.fixture(scope="module")
def binaries(work) -> tuple[Path, bool]:
    return k8s_binaries(work)


@pytest.fixture(scope="module")
def host(image):
    h = Host(image, f"bm-{uuid.uuid4().hex[:8]}").start()
    yield h
    h.stop()


@pytest.fixture(scope="module")
def provider(host, binaries, work):
    bins, real = binaries
    lines: list[str] = []
    # with the real binaries: a single-node `kubeadm init`, its images from the archives the provider
    # makes offline (control_plane_archives); a container is not a server: no kernel preflight checks
    extra = {"appliance_kubeadm_init": real, "appliance_kubeadm_ignore_preflight_errors": ["all"]}
    p = make_provider(host.name, bins, work / "state", lines, **extra)
    p.lines = lines
    return p


# -- converge / idempotence / verify ---------------------------------------------------------


def test_converge(provider):
    t0 = time.monotonic()
    result = provider.converge()
    print(f"first converge: {time.monotonic() - t0:.1f}s, changed={result.changed_count}")
    assert result.ok, [f.line() for f in result.failures]
    assert result.changed_count > 0
    # one report line per host and task: "host / task / status"
    assert any(ln.endswith(" / changed") and " / containerd : " in ln for ln in provider.lines)
    assert Path(result.artifacts, "summary.json").exists()
    assert Path(result.artifacts, "job_events").is_dir()


def test_idempotence(provider):
    result = provider.run_playbook("site.yml")
    print(f"second converge: {result.seconds:.1f}s")
    assert result.ok, [f.line() for f in result.failures]
    offending = "\n".join(f"  {h}: {t}" for h, t in result.changed)
    assert result.changed_count == 0, f"second converge changed {result.changed_count} task(s):\n{offending}"


def test_verify_containerd(host):
    out = host.sh("ctr version")
    assert "Server:" in out and "Version:" in out, out
    assert host.sh("systemctl is-active containerd").strip() == "active"
    assert host.sh("systemctl is-enabled containerd").strip() == "enabled"
    config = host.sh("cat /etc/containerd/config.toml")
    assert "SystemdCgroup = true" in config and 'base_runtime_spec = "/etc/containerd/cri-base.json"' in config
    caps = json.loads(host.sh("cat /etc/containerd/cri-base.json"))["process"]["capabilities"]
    assert all("CAP_NET_RAW" not in v and "CAP_CHOWN" in v for v in caps.values()), caps  # containers start without raw sockets


def test_verify_kubelet_configured(host, binaries):
    _, real = binaries
    assert host.sh("systemctl is-enabled kubelet").strip() == "enabled"
    unit = host.sh("systemctl cat kubelet")
    assert "/usr/local/bin/kubelet" in unit and "10-kubeadm.conf" in unit and "KUBELET_KUBEADM_ARGS" in unit
    cfg = host.sh("cat /etc/kubernetes/kubeadm-config.yaml")
    assert "cgroupDriver: systemd" in cfg and "criSocket: unix:///run/containerd/containerd.sock" in cfg
    assert host.sh("cat /etc/sysctl.d/99-appliance.conf").count("=") >= 3
    assert host.sh("cat /etc/modules-load.d/appliance.conf").split() == ["overlay", "br_netfilter"]
    assert host.sh("test -x /usr/lib/cni/bridge && cat /etc/cni/net.d/10-appliance-bridge.conflist")
    if not real:
        pytest.skip("kubelet/kubeadm are stand-ins: the toolchain has not built them (appliance toolchain fetch)")
    assert "v1.31" in host.sh("kubeadm version -o short")
    assert "v1.31" in host.sh("kubelet --version")
    host.sh("kubeadm config validate --config /etc/kubernetes/kubeadm-config.yaml")


def test_kubeadm_init(provider, host, binaries):
    _, real = binaries
    if not real:
        pytest.skip("kubeadm is a stand-in: the toolchain has not built it")
    assert provider.kubeconfig_path.exists(), "admin kubeconfig was not fetched back"
    assert "server: https://" in provider.kubeconfig_path.read_text()
    deadline = time.time() + 120
    while not provider.ready() and time.time() < deadline:
        time.sleep(2)
    assert provider.ready(), "the API server does not answer /readyz"
    assert host.sh("test -e /etc/kubernetes/.appliance-node-done && echo done").strip() == "done"


#: the GPU path's own tasks, run on the converged host: the driver's check (nvidia-smi) and the device plugin's
#: (its DaemonSet, the nodes' labels), as site.yml runs them on a GPU server whose driver is loaded
GPU_TASKS = """
- hosts: control_plane
  become: true
  gather_facts: true
  tasks:
    - {ansible.builtin.set_fact: {preflight_has_gpu: true, preflight_nvidia_driver_loaded: true}}  # as preflight finds a loaded driver
    - {ansible.builtin.include_role: {name: nvidia_driver, tasks_from: driver.yml}}
    - {ansible.builtin.include_role: {name: gpu_operator, tasks_from: device-plugin.yml}}
"""
#: a stand-in for a DGX H100's nvidia-smi: what its driver answers to the check's query (index, name, driver, MIG mode)
DGX_SMI = "#!/bin/sh\n" + "".join(f"echo '{i}, NVIDIA H100 80GB HBM3, 550.90.07, Disabled'\n" for i in range(8))


def test_a_gpu_node_is_labelled_with_the_product_and_count_its_driver_reports(provider, host, binaries, work):
    """No GPU here: a stand-in nvidia-smi answers as a DGX H100's driver does; the real tasks label the node as
    GPU feature discovery would (what the queues' flavors and the GPU quotas read), a second run changes nothing."""
    _, real = binaries
    if not real:
        pytest.skip("kubeadm is a stand-in: no API server to label a node in")
    host.sh(f"cat > /usr/local/bin/nvidia-smi <<'EOF'\n{DGX_SMI}EOF\nchmod +x /usr/local/bin/nvidia-smi")
    playbook = work / "gpu-tasks.yml"
    playbook.write_text(GPU_TASKS)
    try:
        first = provider.run_playbook(str(playbook))
        assert first.ok, [f.line() for f in first.failures]
        node = json.loads(host.sh(f"kubectl --kubeconfig /etc/kubernetes/admin.conf get node {host.name} -o json"))
        labels = node["metadata"]["labels"]
        assert (labels.get("nvidia.com/gpu.product"), labels.get("nvidia.com/gpu.count"), labels.get("nvidia.com/gpu.present")) == \
            ("NVIDIA-H100-80GB-HBM3", "8", "true"), labels
        again = provider.run_playbook(str(playbook))
        assert again.ok and again.changed_count == 0, again.changed
    finally:
        host.sh("rm -f /usr/local/bin/nvidia-smi")


# -- bad input: one line per host with the fix -------------------------------------------------


def test_unreachable_host(binaries, work):
    bins, _ = binaries
    lines: list[str] = []
    p = make_provider("bm-does-not-exist", bins, work / "state-unreachable", lines)
    from appliance.errors import UserError

    with pytest.raises(UserError) as e:
        p.converge()
    assert "bm-does-not-exist" in e.value.line() and "unreachable" in e.value.line() and "fix:" in e.value.line()
    assert any(ln.startswith("bm-does-not-exist: ") and "fix:" in ln for ln in lines)


def test_unsupported_os(provider):
    from appliance.errors import UserError

    with pytest.raises(UserError) as e:
        provider.converge(tags=["preflight"], extravars={"preflight_supported_os": {"Ubuntu": ["24"]}})
    line = e.value.line()
    assert "unsupported OS Debian 12" in line and "fix: install one of Ubuntu" in line, line


def test_no_sudo(provider, host, binaries, work):
    from appliance.errors import UserError

    host.sh("id nosudo >/dev/null 2>&1 || useradd -m nosudo")
    bins, _ = binaries
    lines: list[str] = []
    p = make_provider(host.name, bins, work / "state-nosudo", lines)
    p.bm.hosts[0].user = "nosudo"
    p.bm.hosts[0].vars["ansible_user"] = "nosudo"
    with pytest.raises(UserError) as e:
        p.converge(tags=["preflight"])
    assert "no sudo" in e.value.line() and "NOPASSWD" in e.value.line(), e.value.line()


def test_missing_inventory_var(provider, work):
    from appliance.errors import UserError

    inv = work / "user-inventory.yml"
    host = provider.bm.hosts[0]
    inv.write_text(
        "all:\n  children:\n    control_plane:\n      hosts:\n"
        f"        {host.name}:\n          ansible_connection: {CONNECTION}\n"
        "          appliance_offline: false\n"
    )
    lines: list[str] = []
    p = make_provider(host.name, Path("/nonexistent"), work / "state-userinv", lines)
    p.bm.inventory = str(inv)
    p.bm.offline = False  # nothing to copy: the run must stop at the missing variable first
    p.bm.hosts = []
    p.inventory.defaults = lambda: {"appliance_offline": False}  # a hand-written inventory that lacks the version
    with pytest.raises(UserError) as e:
        p.converge(tags=["preflight"])
    assert "missing inventory var appliance_k8s_version" in e.value.line(), e.value.line()


# -- destroy ---------------------------------------------------------------------------------


def test_destroy(provider, host):
    provider.delete()
    assert not provider.kubeconfig_path.exists()
    assert host.sh("test -e /etc/kubernetes/admin.conf && echo yes || echo no").strip() == "no"
    logs = provider.collect_logs(provider.state_dir / "logs")
    assert (logs / "runs").is_dir()
    assert any((logs / "hosts").rglob("appliance-journal.txt"))
