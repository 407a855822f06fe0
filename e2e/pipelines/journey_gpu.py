"""The journey's pipelines on the simulator (journey-gpu-sim), shaped for DGX nodes: the data step before
tuning and the evaluate → predict steps after serving, each asking what it would on real hardware, each
with a simulated run time (annotation appliance.dev/sim-run-time). Simulated nodes run no code, so the
experiment, the training job and the service in between are created by the scenario as alice.

    python3 submit.py journey_gpu --param stage=data --namespace user-alice --name journey-data
    python3 submit.py journey_gpu --param stage=check --namespace user-alice --name journey-check
"""

from hera.workflows import DAG, Container, Workflow
from hera.workflows import models as m

IMAGE = "appliance.local/trainer:stub"
GPU = "NVIDIA-H100-80GB-HBM3"
ON_GPU_NODES = {"node_selector": {"nvidia.com/gpu.product": GPU},
                "tolerations": [m.Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")]}


def _step(name: str, run_time: str, gpus: int = 0, cpu: str = "2", memory: str = "8Gi") -> Container:
    requests = {"cpu": cpu, "memory": memory, **({"nvidia.com/gpu": str(gpus)} if gpus else {})}
    return Container(name=name, image=IMAGE, command=["python3", "/app/stub_train.py"], args=["--steps", "50"],
                     annotations={"appliance.dev/sim-run-time": run_time},
                     resources=m.ResourceRequirements(requests=requests, limits={k: v for k, v in requests.items() if k != "cpu"}),
                     **(ON_GPU_NODES if gpus else {}))


def pipeline(stage: str = "data", namespace: str | None = None) -> Workflow:
    with Workflow(generate_name=f"journey-{stage}-", namespace=namespace, entrypoint="main") as w:
        if stage == "data":
            prepare = _step("prepare", "3s", cpu="8", memory="32Gi")
            with DAG(name="main"):
                prepare(name="prepare")
        elif stage == "check":
            evaluate, predict = _step("evaluate", "6s", gpus=1, memory="16Gi"), _step("predict", "2s")
            with DAG(name="main"):
                evaluate(name="evaluate") >> predict(name="predict")
        else:
            raise ValueError(f"stage is data or check, not {stage!r}")
    return w
