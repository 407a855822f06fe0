"""A pipeline of 8-GPU steps for the simulator: two shards in parallel, then a merge, each asking for a
whole DGX H100 node (8 GPUs). Where each step would run is the scheduler's answer (the node in the report).

    python3 submit.py gpu_steps --namespace user-alice
"""

from hera.workflows import DAG, Container, Workflow
from hera.workflows import models as m

IMAGE = "appliance.local/trainer:stub"
GPU = "NVIDIA-H100-80GB-HBM3"


def _step(name: str) -> Container:
    return Container(name=name, image=IMAGE, command=["python3", "/app/stub_train.py"], args=["--steps", "50"],
                     resources=m.ResourceRequirements(requests={"nvidia.com/gpu": "8", "cpu": "16", "memory": "64Gi"},
                                                      limits={"nvidia.com/gpu": "8"}),
                     node_selector={"nvidia.com/gpu.product": GPU},
                     tolerations=[m.Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")])


def pipeline(namespace: str | None = None) -> Workflow:
    with Workflow(generate_name="gpu-steps-", namespace=namespace, entrypoint="main") as w:
        shard, merge = _step("shard"), _step("merge")
        with DAG(name="main"):
            a = shard(name="shard-0")
            b = shard(name="shard-1")
            [a, b] >> merge(name="merge")
    return w
