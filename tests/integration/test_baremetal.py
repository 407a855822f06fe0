"""The bare-metal playbooks on a DGX pod of two servers: a control plane and a worker, real systemd hosts on
one Docker network and walled off from everything else, converged offline through ansible-runner (molecule-style:
create -> converge -> idempotence -> verify -> failures -> destroy). The Debian packages the roles install, the
Kubernetes binaries and the images all come from the controller; the pod network between the nodes is the
appliance's own CNI, its image among the archives every host imports. Day two: a drain under a disruption budget,
a worker removed; the first converge's join killed midway and finished by the next.

Needs: a Docker daemon that can run privileged containers, debootstrap and root (to build the host image and
download the packages once; cached), ansible-runner + ansible-core + the community.docker collection (pip
`ansible`), the toolchain's kubelet, kubeadm and kubectl. Skips with the reason otherwise."""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import yaml

from appliance.providers.baremetal.inventory import POD_CIDR
from tests.integration.baremetal_hosts import CONNECTION, Host, host_image, k8s_binaries, make_provider

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.docker]

NODES = (("cp", "control-plane"), ("w1", "worker"))  # a third costs CI a third more of everything
SERVICE_CIDR = "10.96.0.0/12"  # the playbooks' default (appliance_service_cidr)
#: a bootstrap token (id.secret) and the key that decrypts the control plane's certificates (the CA's hash is public)
SECRETS = re.compile(r"\b[a-z0-9]{6}\.[a-z0-9]{16}\b|--certificate-key\s+[0-9a-f]{64}")


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("baremetal-nodes")


@pytest.fixture(scope="module")
def hosts(work):
    image = host_image()
    tag = uuid.uuid4().hex[:6]
    network = f"bmn-{tag}"
    subprocess.run(["docker", "network", "create", network], check=True, capture_output=True)
    made: dict[str, Host] = {}
    try:
        subnet = subprocess.run(["docker", "network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", network],
                                check=True, capture_output=True, text=True).stdout.strip()
        for n, _ in NODES:
            made[n] = Host(image, f"bmn-{tag}-{n}", network=network).start()
            made[n].wall_off([subnet, POD_CIDR, SERVICE_CIDR])
        yield made
    finally:
        for h in made.values():
            h.stop()
        subprocess.run(["docker", "network", "rm", network], capture_output=True)


@pytest.fixture(scope="module")
def binaries(work) -> tuple[Path, bool]:
    return k8s_binaries(work)


@pytest.fixture(scope="module")
def host(hosts) -> Host:
    """The control plane."""
    return hosts["cp"]


@pytest.fixture(scope="module")
def provider(hosts, binaries, work):
    bins, real = binaries
    if not real:
        pytest.skip("kubeadm is a stand-in: the toolchain has not built it")
    lines: list[str] = []
    # a container is not a server: no kernel preflight checks
    p = make_provider([(hosts[n].name, role) for n, role in NODES], bins, work / "state", lines,
                      appliance_kubeadm_init=True, appliance_kubeadm_ignore_preflight_errors=["all"])
    p.lines = lines
    return p


def kubectl(hosts, *args: str, check: bool = True) -> str:
    return hosts["cp"].sh("kubectl --kubeconfig /etc/kubernetes/admin.conf " + " ".join(args), check=check)


def wait_for(what: str, probe, seconds: float):
    """probe()'s first true answer within `seconds` (the appliance's one wait, every 2 s), else fail saying what."""
    from appliance.util.wait import within

    got = []

    def check():
        got.append(probe())
        return bool(got[-1]), ""

    ok, _ = within(check, seconds)
    assert ok, f"{what} not within {seconds:.0f} s (last: {got[-1]!r})"
    return got[-1]


# -- bad input, before the cluster exists (its idle cost is not paid meanwhile): one line per host with the fix --


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


# -- the pod: converge, verify, day two ------------------------------------------------------


def converge_killed_once(provider, host: Host, process: str, midway: str) -> None:
    """A converge in a process of its own, killed (it and its Ansible) once `process` runs on `host` and has
    written `midway`; `process` is killed there at that moment too: a controller and a server losing power."""
    import multiprocessing
    import os
    import signal

    def run():
        os.setsid()
        provider.converge()

    child = multiprocessing.get_context("fork").Process(target=run)
    child.start()
    try:
        # one exec waiting on the host itself: the kill lands within a tenth of a second, before the task ends
        # (a first converge on a loaded CI machine reaches the join in ~7 minutes: 15 allowed)
        host.sh(f"for i in $(seq 9000); do pgrep -f '{process}' >/dev/null && [ -e {midway} ] && pkill -9 -f '{process}' && exit 0; "
                f"sleep 0.1; done; exit 1")
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.join()


def nodes_ready(hosts) -> set[str]:
    nodes = json.loads(kubectl(hosts, "get nodes -o json"))["items"]
    return {n["metadata"]["name"] for n in nodes if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])}


def test_two_hosts_converge_the_workers_join_killed_midway_finishing_at_the_next_converge(provider, hosts):
    """The first converge dies in the worker's join (its controller and the join itself killed: a laptop
    closed, a server losing power); the next converge resets what the join left and joins it, leaving the
    control plane's cluster untouched: no init, reset or restart there, only what the killed run had not reached
    (the CNI, the bootstrap tokens' deletion, the admin kubeconfig's fetch)."""
    w1 = hosts["w1"].name
    provider.prebuild()  # what the converge copies, built (or found cached) outside the kill's wait
    t0 = time.monotonic()
    # (a pattern its own shell's command line does not match; the CA is written early in a join, the done mark last)
    converge_killed_once(provider, hosts["w1"], "[k]ubeadm join", "/etc/kubernetes/pki/ca.crt")
    assert hosts["w1"].sh("test -e /etc/kubernetes/.appliance-node-done && echo done || true").strip() == ""
    t1 = time.monotonic()
    result = provider.converge()
    print(f"first converge of {len(NODES)} hosts killed in the join: {t1 - t0:.1f}s; the next {result.seconds:.1f}s, "
          f"changed={result.changed_count}")
    assert result.ok, [f.line() for f in result.failures]
    # one report line per host and task: "host / task / status"
    assert any(ln.startswith(f"{w1} / kubernetes : ") and ln.endswith(" / changed") for ln in provider.lines), provider.lines
    assert Path(result.artifacts, "summary.json").exists() and Path(result.artifacts, "job_events").is_dir()
    unreached = ("kubernetes : Delete the bootstrap tokens (every host has joined or failed to)",
                 "kubernetes : Fetch the admin kubeconfig to the controller")
    cluster_touched = [(h, t) for h, t in result.changed if h != w1 and t not in unreached and not t.startswith("cni : ")]
    assert not cluster_touched and any(h == w1 for h, _ in result.changed), result.changed

    wait_for("every node Ready", lambda: nodes_ready(hosts) == {h.name for h in hosts.values()}, 180)
    agents = json.loads(kubectl(hosts, "-n kube-system get daemonset appliance-cni -o json"))["status"]
    assert agents["numberReady"] == len(NODES), agents
    assert hosts["w1"].sh("cat /etc/cni/net.d/10-appliance.conflist") and \
        hosts["w1"].sh("test -e /etc/cni/net.d/10-appliance-bridge.conflist && echo bridge || true").strip() == ""


def test_nothing_was_fetched_from_outside(hosts):
    """Packages, binaries and images all came from the controller: no host process tried a connection out."""
    assert {n: h.refused() for n, h in hosts.items()} == {n: 0 for n in hosts}
    assert "file:/var/cache/appliance/debs" in hosts["w1"].sh("cat /var/cache/appliance/debs/sources.list")
    assert hosts["w1"].sh("dpkg-query -W -f '${Status}' containerd containernetworking-plugins conntrack").count("install ok installed") == 3
    hosts["w1"].sh("curl -sS -m 5 -o /dev/null http://deb.debian.org/ || true")  # the control: a try out is counted
    assert hosts["w1"].refused() > 0


def test_no_join_secret_is_left_in_the_runs_artifacts_or_the_cluster(provider, hosts):
    leaks = [f"{p.relative_to(provider.runs_dir)}: {m.group(0)[:12]}..." for p in provider.runs_dir.rglob("*") if p.is_file()
             for m in [SECRETS.search(p.read_text(errors="replace"))] if m]
    assert not leaks, leaks
    assert kubectl(hosts, "get secrets -n kube-system --field-selector type=bootstrap.kubernetes.io/token -o name") == ""


def test_a_second_converge_changes_nothing(provider):
    result = provider.run_playbook("site.yml")
    print(f"second converge: {result.seconds:.1f}s")
    assert result.ok, [f.line() for f in result.failures]
    assert result.changed_count == 0, "\n".join(f"  {h}: {t}" for h, t in result.changed)


def test_verify_containerd(host):
    out = host.sh("ctr version")
    assert "Server:" in out and "Version:" in out, out
    assert host.sh("systemctl is-active containerd").strip() == "active"
    assert host.sh("systemctl is-enabled containerd").strip() == "enabled"
    config = host.sh("cat /etc/containerd/config.toml")
    assert "SystemdCgroup = true" in config and 'base_runtime_spec = "/etc/containerd/cri-base.json"' in config
    caps = json.loads(host.sh("cat /etc/containerd/cri-base.json"))["process"]["capabilities"]
    assert all("CAP_NET_RAW" not in v and "CAP_CHOWN" in v for v in caps.values()), caps  # containers start without raw sockets


def test_verify_kubelet_configured(host):
    assert host.sh("systemctl is-enabled kubelet").strip() == "enabled"
    unit = host.sh("systemctl cat kubelet")
    assert "/usr/local/bin/kubelet" in unit and "10-kubeadm.conf" in unit and "KUBELET_KUBEADM_ARGS" in unit
    cfg = host.sh("cat /etc/kubernetes/kubeadm-config.yaml")
    assert "cgroupDriver: systemd" in cfg and "criSocket: unix:///run/containerd/containerd.sock" in cfg
    assert host.sh("cat /etc/sysctl.d/99-appliance.conf").count("=") >= 3
    assert host.sh("cat /etc/modules-load.d/appliance.conf").split() == ["overlay", "br_netfilter"]
    assert host.sh("test -x /usr/lib/cni/ptp && cat /etc/cni/net.d/10-appliance.conflist")  # the appliance CNI's, more than one host
    assert "v1.31" in host.sh("kubeadm version -o short")
    assert "v1.31" in host.sh("kubelet --version")
    host.sh("kubeadm config validate --config /etc/kubernetes/kubeadm-config.yaml")


def test_kubeadm_init(provider, host):
    assert provider.kubeconfig_path.exists(), "admin kubeconfig was not fetched back"
    assert "server: https://" in provider.kubeconfig_path.read_text()
    deadline = time.time() + 120
    while not provider.ready() and time.time() < deadline:
        time.sleep(2)
    assert provider.ready(), "the API server does not answer /readyz"
    assert host.sh("test -e /etc/kubernetes/.appliance-node-done && echo done").strip() == "done"


def apply(hosts, obj: dict) -> None:
    r = subprocess.run(["docker", "exec", "-i", hosts["cp"].name, "kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf",
                        "apply", "-f", "-"], input=json.dumps(obj), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def images(provider) -> dict[str, str]:
    """The images every host imported (the control-plane archives' tags)."""
    inventory = yaml.safe_load((provider.state_dir / "inventory" / "hosts.yml").read_text())
    return json.loads((Path(inventory["all"]["vars"]["appliance_k8s_images_dir"]) / ".complete").read_text())


def test_a_pod_on_one_node_reaches_a_pod_on_the_other(provider, hosts):
    """CoreDNS's health port in a pod on the worker, asked from a pod on the control plane (images every node has)."""
    refs = images(provider)
    apply(hosts, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "across"},
                  "data": {"Corefile": ".:1053 {\n  whoami\n  health :8080\n}\n"}})
    apply(hosts, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "across-srv"}, "spec": {
        "nodeName": hosts["w1"].name, "volumes": [{"name": "conf", "configMap": {"name": "across"}}],
        "containers": [{"name": "dns", "image": refs["coredns"], "imagePullPolicy": "Never", "command": ["/coredns", "-conf", "/etc/across/Corefile"],
                        "volumeMounts": [{"name": "conf", "mountPath": "/etc/across"}]}]}})
    ip = wait_for("the server pod's address", lambda: kubectl(hosts, "get pod across-srv -o jsonpath='{.status.podIP}'").strip(), 120)
    ask = (f"for i in $(seq 30); do (exec 3<>/dev/tcp/{ip}/8080 && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3) "
           "&& exit 0; sleep 2; done; exit 1")
    apply(hosts, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "across-cli"}, "spec": {
        "nodeName": hosts["cp"].name, "restartPolicy": "Never", "containers": [
            {"name": "ask", "image": refs["kube-proxy"], "imagePullPolicy": "Never", "command": ["bash", "-c", ask]}]}})

    def finished():
        phase = kubectl(hosts, "get pod across-cli -o jsonpath='{.status.phase}'").strip()
        return phase if phase in ("Succeeded", "Failed") else None

    phase = wait_for("the client pod to finish", finished, 120)
    logs = kubectl(hosts, "logs across-cli", check=False)
    assert phase == "Succeeded" and "200 OK" in logs, (phase, logs)
    kubectl(hosts, "delete pod across-srv across-cli --wait=false")


#: the GPU path's own tasks, run on the converged hosts as site.yml runs them: a host whose driver answers
#: (preflight: a loaded driver; no GPU here, so a stand-in nvidia-smi on w1) gets the driver's check, and the
#: first control plane applies the device plugin and labels the GPU nodes
GPU_TASKS = """
- hosts: control_plane:workers
  become: true
  gather_facts: true
  tasks:
    - {ansible.builtin.stat: {path: /usr/local/bin/nvidia-smi}, register: smi}
    - {ansible.builtin.set_fact: {preflight_has_gpu: "{{ smi.stat.exists }}", preflight_nvidia_driver_loaded: "{{ smi.stat.exists }}"}}
    - {ansible.builtin.include_role: {name: nvidia_driver, tasks_from: driver.yml}, when: preflight_has_gpu | bool}
    - {ansible.builtin.include_role: {name: gpu_operator}}
"""
#: a stand-in for a DGX H100's nvidia-smi: what its driver answers to the check's query (index, name, driver, MIG mode)
DGX_SMI = "#!/bin/sh\n" + "".join(f"echo '{i}, NVIDIA H100 80GB HBM3, 550.90.07, Disabled'\n" for i in range(8))


def test_the_gpu_worker_alone_is_labelled_with_the_product_and_count_its_driver_reports(provider, hosts, work):
    """The real tasks label the GPU node as GPU feature discovery would (what the queues' flavors and the GPU
    quotas read), the others not; a second run changes nothing."""
    gpu = hosts["w1"]
    gpu.sh(f"cat > /usr/local/bin/nvidia-smi <<'EOF'\n{DGX_SMI}EOF\nchmod +x /usr/local/bin/nvidia-smi")
    playbook = work / "gpu-tasks.yml"
    playbook.write_text(GPU_TASKS)
    try:
        first = provider.run_playbook(str(playbook))
        assert first.ok, [f.line() for f in first.failures]
        labels = {n: json.loads(kubectl(hosts, f"get node {h.name} -o json"))["metadata"]["labels"] for n, h in hosts.items()}
        assert (labels["w1"].get("nvidia.com/gpu.product"), labels["w1"].get("nvidia.com/gpu.count"),
                labels["w1"].get("nvidia.com/gpu.present")) == ("NVIDIA-H100-80GB-HBM3", "8", "true"), labels["w1"]
        assert "nvidia.com/gpu.present" not in labels["cp"], labels["cp"]
        again = provider.run_playbook(str(playbook))
        assert again.ok and again.changed_count == 0, again.changed
    finally:
        gpu.sh("rm -f /usr/local/bin/nvidia-smi")


SPREAD = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "spread"}, "spec": {
    "replicas": 2, "selector": {"matchLabels": {"app": "spread"}}, "template": {"metadata": {"labels": {"app": "spread"}}, "spec": {
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway",
                                       "labelSelector": {"matchLabels": {"app": "spread"}}}],
        "terminationGracePeriodSeconds": 1,
        "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}],
        "containers": [{"name": "wait", "image": "", "imagePullPolicy": "Never", "command": ["sleep", "infinity"]}]}}}}
BUDGET = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "spread"},
          "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "spread"}}}}


def spread_pods(hosts) -> dict[str, str]:
    """The Deployment's running pods: name -> node."""
    pods = json.loads(kubectl(hosts, "get pods -l app=spread -o json"))["items"]
    return {p["metadata"]["name"]: p["spec"].get("nodeName", "") for p in pods
            if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")}


def test_a_drain_moves_a_deployments_pods_under_its_disruption_budget(provider, hosts):
    from appliance import nodes

    w1 = hosts["w1"].name
    spread = json.loads(json.dumps(SPREAD))
    spread["spec"]["template"]["spec"]["containers"][0]["image"] = images(provider)["kube-proxy"]
    apply(hosts, spread)
    apply(hosts, BUDGET)
    wait_for("the Deployment's pods on both nodes", lambda: set(spread_pods(hosts).values()) == {hosts["cp"].name, w1}, 120)
    lines: list[str] = []
    nodes.drain(provider.kubeconfig_path, w1, lines.append, timeout=120)
    assert lines[-1] == f"{w1} drained", lines
    on = wait_for("two pods running off w1", lambda: (p := spread_pods(hosts)) and len(p) == 2 and w1 not in p.values() and p, 60)
    assert set(on.values()) == {hosts["cp"].name}, on
    assert kubectl(hosts, f"get node {w1} -o jsonpath='{{.spec.unschedulable}}'").strip() == "true"


def test_removing_a_worker_leaves_the_cluster_healthy(provider, hosts):
    from appliance import nodes
    from appliance.errors import UserError

    with pytest.raises(UserError) as refused:  # the control plane holds the cluster
        nodes.remove(provider, provider.kubeconfig_path, hosts["cp"].name, print)
    assert "is a control plane" in refused.value.line() and "fix:" in refused.value.line()
    w1 = hosts["w1"].name
    nodes.remove(provider, provider.kubeconfig_path, w1, print)
    left = nodes.nodes(provider.kubeconfig_path)
    assert set(left) == {hosts["cp"].name}, set(left)
    assert all(any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"]) for n in left.values())
    assert hosts["w1"].sh("ls /etc/kubernetes/kubelet.conf /etc/kubernetes/.appliance-node-done 2>/dev/null || true").strip() == ""
    assert len(spread_pods(hosts)) == 2


def test_destroy_resets_every_host(provider, hosts):
    provider.delete()
    for h in hosts.values():
        assert h.sh("ls /etc/kubernetes/admin.conf /etc/kubernetes/kubelet.conf /etc/cni/net.d/10-appliance.conflist 2>/dev/null || true").strip() == "", h.name
