"""GPU pieces without a GPU: the device-plugin manifest and the kind provider's in-node toolkit setup."""

from types import SimpleNamespace

from appliance.components import CATALOG
from appliance.providers.kind import gpu as kg
from appliance.providers.kind.config import node_names


def test_device_plugin_targets_gpu_nodes_only_with_a_pinned_image():
    (ds,) = CATALOG["nvidia-device-plugin"]({"mig_strategy": "single"}).objects()
    pod = ds["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])
    c = pod["containers"][0]
    assert c["image"].startswith("nvcr.io/nvidia/k8s-device-plugin:v") and {"name": "MIG_STRATEGY", "value": "single"} in c["env"]
    assert c["volumeMounts"][0]["mountPath"] == "/var/lib/kubelet/device-plugins"


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
