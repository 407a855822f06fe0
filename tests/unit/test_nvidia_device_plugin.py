"""The nvidia-device-plugin component and the GPU pieces it relies on, without a GPU: the device-plugin
manifest, its runtime-class policy, the NVIDIA toolkit's configuration (the playbook role run against a stock
config file, the kind nodes' setup script) and the kind provider's in-node toolkit setup."""

import os
import re
import tomllib
from pathlib import Path
from types import SimpleNamespace

import jinja2
import pytest
import yaml

from appliance.components import CATALOG
from appliance.providers.baremetal.runner import ansible_envvars, playbooks_dir
from appliance.providers.kind import gpu as kg
from appliance.providers.kind.config import node_names


def test_device_plugin_targets_gpu_nodes_only_with_a_pinned_image():
    ds = next(o for o in CATALOG["nvidia-device-plugin"]({"mig_strategy": "single"}).objects() if o["kind"] == "DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])
    c = pod["containers"][0]
    assert c["image"].startswith("nvcr.io/nvidia/k8s-device-plugin:v") and {"name": "MIG_STRATEGY", "value": "single"} in c["env"]
    assert c["volumeMounts"][0]["mountPath"] == "/var/lib/kubelet/device-plugins"


def _all_gpus_by_mount(pod: dict) -> bool:
    """Every GPU selected the device plugin's way (/dev/null at .../all), none by NVIDIA_VISIBLE_DEVICES."""
    vols = {v["name"]: v for v in pod["volumes"]}
    c = pod["containers"][0]
    mounts = [m for m in c["volumeMounts"] if m["mountPath"] == "/var/run/nvidia-container-devices/all"]
    return (not any(e["name"] == "NVIDIA_VISIBLE_DEVICES" for e in c.get("env", []))
            and len(mounts) == 1 and vols[mounts[0]["name"]]["hostPath"]["path"] == "/dev/null")


def test_device_plugin_hands_gpus_out_as_volume_mounts_and_sees_them_so_itself():
    ds = next(o for o in CATALOG["nvidia-device-plugin"]().objects() if o["kind"] == "DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    assert {"name": "DEVICE_LIST_STRATEGY", "value": "volume-mounts"} in pod["containers"][0]["env"]
    assert _all_gpus_by_mount(pod)
    assert not pod["containers"][0]["securityContext"].get("privileged")
    nvml = next(o for o in CATALOG["monitoring"]({}).objects(crds=False) if o["metadata"]["name"] == "gpu-exporter-nvml")
    assert _all_gpus_by_mount(nvml["spec"]["template"]["spec"])  # the NVML exporter too
    template = jinja2.Template((playbooks_dir() / "roles/gpu_operator/templates/nvidia-device-plugin.yaml.j2").read_text())
    _, bare = yaml.safe_load_all(template.render(ansible_managed="", gpu_operator_device_plugin_image="x", gpu_operator_mig_strategy="none"))
    assert {"name": "DEVICE_LIST_STRATEGY", "value": "volume-mounts"} in bare["spec"]["template"]["spec"]["containers"][0]["env"]
    assert _all_gpus_by_mount(bare["spec"]["template"]["spec"])
    assert "devicePlugin.env[0].value=volume-mounts" in (playbooks_dir() / "roles/gpu_operator/tasks/operator.yml").read_text()


def test_runtime_class_policy_keeps_nvidias_runtime_to_the_agents_namespaces():
    objs = {o["kind"]: o for o in CATALOG["nvidia-device-plugin"]({"agent_namespaces": ["kube-system", "gpus"]}).objects()}
    assert objs["RuntimeClass"]["handler"] == "nvidia"
    assert objs["RuntimeClass"]["scheduling"]["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    pol = objs["ValidatingAdmissionPolicy"]["spec"]
    assert pol["failurePolicy"] == "Fail" and pol["matchConstraints"]["resourceRules"][0]["resources"] == ["pods"]
    assert pol["matchConstraints"]["namespaceSelector"]["matchExpressions"] == [
        {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", "gpus"]}]
    assert '["nvidia", "nvidia-cdi", "nvidia-legacy"]' in pol["validations"][0]["expression"]
    assert objs["ValidatingAdmissionPolicyBinding"]["spec"] == {"policyName": "appliance-nvidia-runtime", "validationActions": ["Deny"]}


# The stock /etc/nvidia-container-runtime/config.toml's head, as the toolkit's package writes it.
STOCK = """#accept-nvidia-visible-devices-as-volume-mounts = false
#accept-nvidia-visible-devices-envvar-when-unprivileged = true
disable-require = false
supported-driver-capabilities = "compat32,compute,display,graphics,ngx,utility,video"

[nvidia-container-cli]
environment = []
ldconfig = "@/sbin/ldconfig.real"

[nvidia-container-runtime]
log-level = "info"
mode = "auto"
"""
WANT = {"accept-nvidia-visible-devices-envvar-when-unprivileged": False, "accept-nvidia-visible-devices-as-volume-mounts": True}


@pytest.mark.parametrize("start", [STOCK, None], ids=["stock", "missing"])
def test_toolkit_role_turns_env_selection_off_idempotently(start, tmp_path, monkeypatch):
    """The role's config tasks, run by Ansible on this machine against a config file of ours."""
    ansible_runner = pytest.importorskip("ansible_runner")
    monkeypatch.setenv("PATH", os.defpath)
    conf = tmp_path / "config.toml"
    if start is not None:
        conf.write_text(start)
    pb = playbooks_dir()
    play = tmp_path / "project" / "play.yml"
    play.parent.mkdir()
    play.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"ansible.builtin.include_role": {"name": "nvidia_container_toolkit", "tasks_from": "config.yml"}}]}]))
    runs = []
    for _ in range(2):
        r = ansible_runner.run(private_data_dir=str(tmp_path), project_dir=str(play.parent), playbook="play.yml",
                               inventory="localhost ansible_connection=local", quiet=True,
                               extravars={"nvidia_container_toolkit_config_file": str(conf), "ansible_python_interpreter": os.sys.executable},
                               envvars={**ansible_envvars(pb), "ANSIBLE_ROLES_PATH": str(pb / "roles")})
        assert r.rc == 0, r.stdout.read()
        runs.append(r.stats["changed"].get("localhost", 0))
    assert runs == [1, 0]  # set (the one task), then nothing to do
    doc = tomllib.loads(conf.read_text())
    assert {k: doc[k] for k in WANT} == WANT
    if start is not None:  # the rest of the file as it was
        assert doc["nvidia-container-runtime"]["mode"] == "auto" and doc["disable-require"] is False


def test_kind_nodes_and_the_role_set_the_same_toolkit_config():
    role = yaml.safe_load((playbooks_dir() / "roles/nvidia_container_toolkit/defaults/main.yml").read_text())
    assert role["nvidia_container_toolkit_config"] == WANT
    install = yaml.safe_load((playbooks_dir() / "roles/nvidia_container_toolkit/tasks/install.yml").read_text())
    assert install[-1]["ansible.builtin.include_tasks"] == "config.yml"  # after the packages, online or offline
    script = Path(kg.GPU_SETUP).read_text()
    sets = dict(m.groups() for m in re.finditer(r"--set ([a-z-]+)=(\w+)", script))
    assert {k: v == "true" for k, v in sets.items()} == WANT
    assert script.index("nvidia-ctk config --in-place") < script.index("systemctl restart containerd")


def test_kind_gpu_nodes_get_the_toolkit_set_up_inside(monkeypatch):
    calls = []
    monkeypatch.setattr(kg.subprocess, "run", lambda cmd, **kw: calls.append((cmd, kw.get("input"))) or SimpleNamespace(returncode=0, stdout="", stderr=""))
    nodes = [{"role": "control-plane"},
             {"role": "worker", "extraMounts": kg.gpu_mounts([0, 1])},
             {"role": "worker", "extraMounts": []}]
    names = node_names("g", 1, 2)
    kg.setup_nodes(names, nodes, lambda m: None)
    gpu_node = names[1]
    assert [c for c, _ in calls] == [["docker", "exec", gpu_node, "umount", "-R", "/proc/driver/nvidia"],
                                     ["docker", "exec", "-i", gpu_node, "bash", "-s"]]
    script = calls[1][1]
    assert "nvidia-ctk runtime configure --runtime=containerd --set-as-default" in script and "systemctl restart containerd" in script
