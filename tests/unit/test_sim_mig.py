"""MIG on simulated nodes: a node class's layout becomes the resources NVIDIA's device plugin advertises (single:
instances as nvidia.com/gpu; mixed: nvidia.com/mig-<profile>) and the labels GPU feature discovery sets; a layout
that cannot be is one line."""

import pytest

from appliance.errors import ProfileError
from appliance.providers.sim.nodes import MIG_ANNOTATION, node_manifest
from appliance.schema import NodeClass

H100 = "NVIDIA-H100-80GB-HBM3"


def node(**kw):
    return node_manifest(NodeClass(name="mig", gpus=8, gpu_product=H100, **kw), 0, "c")


def test_mixed_balanced_advertises_each_profile_and_no_whole_gpu():
    n = node(mig_strategy="mixed", mig_config="all-balanced")
    cap, labels = n["status"]["capacity"], n["metadata"]["labels"]
    assert {k: v for k, v in cap.items() if k.startswith("nvidia.com/")} == {
        "nvidia.com/mig-1g.10gb": "16", "nvidia.com/mig-2g.20gb": "8", "nvidia.com/mig-3g.40gb": "8"}
    assert labels["nvidia.com/mig.config"] == "all-balanced" and labels["nvidia.com/mig.strategy"] == "mixed"
    assert labels["nvidia.com/mig-1g.10gb.count"] == "16" and labels["nvidia.com/mig-3g.40gb.memory"] == "40320"
    assert labels["nvidia.com/gpu.product"] == H100 and labels["nvidia.com/gpu.count"] == "8"
    assert n["metadata"]["annotations"][MIG_ANNOTATION] == "8x1g.10gb=2,2g.20gb=1,3g.40gb=1"


def test_single_advertises_instances_as_gpus_of_a_mig_product():
    n = node(mig_strategy="single", mig_config="all-1g.10gb")
    assert n["status"]["capacity"]["nvidia.com/gpu"] == "56"
    labels = n["metadata"]["labels"]
    assert labels["nvidia.com/gpu.product"] == f"{H100}-MIG-1g.10gb" and labels["nvidia.com/gpu.count"] == "56"
    assert labels["nvidia.com/gpu.memory"] == "9984" and labels["nvidia.com/gpu.slices.gi"] == "1"


def test_without_mig_config_whole_gpus():
    n = node()
    assert n["status"]["capacity"]["nvidia.com/gpu"] == "8" and MIG_ANNOTATION not in n["metadata"]["annotations"]
    assert "nvidia.com/mig.config" not in n["metadata"]["labels"]


@pytest.mark.parametrize(("kw", "text"), [
    ({"mig_strategy": "none", "mig_config": "all-1g.10gb"}, "with mig_strategy none"),
    ({"mig_strategy": "mixed", "mig_config": "all-1g.5gb"}, "1g.5gb not on NVIDIA-H100"),
    ({"mig_strategy": "mixed", "mig_config": "3g.40gb=2,2g.20gb=1"}, "needs more than one"),
    ({"mig_strategy": "mixed", "mig_config": "1g.10gb=x"}, "is not <profile>=<count>"),
    ({"mig_strategy": "single", "mig_config": "all-balanced"}, "single with mixed profiles"),
    ({"mig_strategy": "mixed", "mig_config": "all-1g.10gb", "gpu_product": "NVIDIA-L4"}, "no MIG-capable GPU"),
])
def test_a_layout_that_cannot_be_is_one_line(kw, text):
    with pytest.raises(ProfileError, match=text) as e:
        node_manifest(NodeClass(name="mig", gpus=8, **{"gpu_product": H100, **kw}), 0, "c")
    assert "cluster.node_classes[mig].mig_config" in str(e.value.where)
