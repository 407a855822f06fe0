"""Train, evaluate and serve the stub model as one pipeline (Hera → Argo Workflows):

    volume  ─┐
    prepare ─┼─ train (a PyTorchJob, created and awaited) ─ evaluate (MSE as an output) ─ deploy (when the
             └──────────────────────────────────────────────┘  MSE passes: an InferenceService) ─ predict

The model travels on a volume claim of the user's namespace (trainer → evaluation → model server); the holdout
set and the evaluated model are artifacts in the user's bucket. Steps run as the namespace's `pipeline-runner`.

    python3 submit.py train_serve --namespace user-alice
"""

from hera.workflows import DAG, Artifact, Parameter, Resource, Resources, RetryStrategy, Task, Workflow, script
from hera.workflows import models as m

IMAGE = "appliance.local/trainer:stub"   # python3 + numpy + e2e/models/stub_train.py
SMALL = Resources(cpu_request="50m", memory_request="64Mi", memory_limit="256Mi")
MODEL_DIR = "/mnt/model"

VOLUME = """\
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: "{{workflow.parameters.volume}}"}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
"""

_PYTORCHJOB = """\
apiVersion: kubeflow.org/v1
kind: PyTorchJob
metadata: {name: "{{workflow.name}}-train"}
spec:
  runPolicy: {cleanPodPolicy: None, backoffLimit: 1}
  pytorchReplicaSpecs:
    Master:
      replicas: 1
      restartPolicy: OnFailure
      template:
        spec:
          containers:
            - name: pytorch
              image: %(image)s
              imagePullPolicy: IfNotPresent
              args: [%(args)s, --out, /mnt/output/stub]
              resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {memory: 512Mi}}
              volumeMounts: [{name: out, mountPath: /mnt/output}]
          volumes: [{name: out, persistentVolumeClaim: {claimName: "{{workflow.parameters.volume}}"}}]
    Worker:
      replicas: 1
      restartPolicy: OnFailure
      template:
        spec:
          containers:
            - name: pytorch
              image: %(image)s
              imagePullPolicy: IfNotPresent
              args: [%(args)s]
              resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {memory: 512Mi}}
"""


def pytorchjob(args: str) -> str:
    """The manifest of a 2-rank PyTorchJob of the stub model for a resource step: `args` (YAML flow items) for
    both ranks; the master writes the model to the workflow's volume."""
    return _PYTORCHJOB % {"image": IMAGE, "args": args}

INFERENCESERVICE = """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: "{{workflow.parameters.model}}"
  annotations: {serving.kserve.io/deploymentMode: RawDeployment}
spec:
  predictor:
    model:
      modelFormat: {name: stub-npz}
      storageUri: "pvc://{{workflow.parameters.volume}}/stub"
      resources: {requests: {cpu: 100m, memory: 256Mi}, limits: {memory: 1Gi}}
"""


@script(image=IMAGE, command=["python3"], resources=SMALL,
        outputs=[Artifact(name="holdout", path="/tmp/holdout.npz", archive=m.ArchiveStrategy(none=m.NoneStrategy())),
                 Parameter(name="rows", value_from=m.ValueFrom(path="/tmp/rows"))])
def prepare(rows: int, seed: int):
    """A holdout set from the stub model's true function (y = 2·x0 - x1 + 0.5·x2 + 3·x3 + 0.25)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 4))
    np.savez("/tmp/holdout.npz", x=x, y=x @ np.array([2.0, -1.0, 0.5, 3.0]) + 0.25)
    open("/tmp/rows", "w").write(str(rows))
    print(f"holdout: {rows} rows")


@script(image=IMAGE, command=["python3"], resources=SMALL,
        inputs=[Artifact(name="holdout", path="/tmp/holdout.npz")],
        outputs=[Parameter(name="mse", value_from=m.ValueFrom(path="/tmp/mse")), Artifact(name="model", path="/tmp/model")],
        volume_mounts=[m.VolumeMount(name="model", mount_path=MODEL_DIR, read_only=True)])
def evaluate():
    """Mean squared error of the trained model on the holdout set; the model itself becomes an artifact."""
    import shutil

    import numpy as np

    d, model = np.load("/tmp/holdout.npz"), np.load("/mnt/model/stub/model.npz")
    mse = float(np.mean((d["x"] @ model["w"] + model["b"][0] - d["y"]) ** 2))
    open("/tmp/mse", "w").write(f"{mse:.8f}")  # plain decimals: Argo's `when` expressions read no exponents
    shutil.copytree("/mnt/model/stub", "/tmp/model")
    print(f"mse {mse:.6g} on {len(d['y'])} rows; w={model['w'].round(3).tolist()} b={model['b'][0]:.3f}")


@script(image=IMAGE, command=["python3"], resources=SMALL,
        retry_strategy=RetryStrategy(limit=5, backoff=m.Backoff(duration="3s", factor=2)),
        outputs=[Parameter(name="predictions", value_from=m.ValueFrom(path="/tmp/predictions"))])
def predict(model: str, namespace: str):
    """v1 predict request to the served model; the answers must match the true function."""
    import json
    import urllib.request

    x = [[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [0.5, -2.0, 4.0, 1.0]]
    want = [2 * a - b + 0.5 * c + 3 * d + 0.25 for a, b, c, d in x]
    url = f"http://{model}-predictor.{namespace}.svc.cluster.local/v1/models/{model}:predict"
    req = urllib.request.Request(url, data=json.dumps({"instances": x}).encode(), headers={"Content-Type": "application/json"})
    got = json.loads(urllib.request.urlopen(req, timeout=30).read())["predictions"]
    open("/tmp/predictions", "w").write(json.dumps([round(g, 3) for g in got]))
    if len(got) != len(want) or any(abs(g - w) > 0.02 for g, w in zip(got, want, strict=True)):
        raise SystemExit(f"predictions {got} differ from {want}")
    print(f"predictions match: {[round(g, 3) for g in got]}")


def pipeline(namespace: str | None = None, steps: int = 200, model: str = "pipe-stub", volume: str = "pipe-stub-model",
             threshold: float = 0.01, rows: int = 128) -> Workflow:
    with Workflow(generate_name="train-serve-", namespace=namespace, entrypoint="main",
                  arguments=[Parameter(name="model", value=str(model)), Parameter(name="volume", value=str(volume)),
                             Parameter(name="threshold", value=str(threshold))],
                  volumes=[m.Volume(name="model", persistent_volume_claim=m.PersistentVolumeClaimVolumeSource(
                      claim_name="{{workflow.parameters.volume}}"))]) as w:
        claim = Resource(name="volume", action="apply", manifest=VOLUME)
        train = Resource(name="train", action="create", manifest=pytorchjob('--steps, "{{inputs.parameters.steps}}"'), set_owner_reference=True,
                         inputs=[Parameter(name="steps")],
                         success_condition="status.replicaStatuses.Master.succeeded > 0",
                         failure_condition="status.replicaStatuses.Master.failed > 0")
        deploy = Resource(name="deploy", action="apply", manifest=INFERENCESERVICE,
                          success_condition="status.modelStatus.states.activeModelState == Loaded",
                          failure_condition="status.modelStatus.states.activeModelState == FailedToLoad")
        with DAG(name="main"):
            v = Task(name="volume", template=claim)
            p = prepare(arguments={"rows": str(rows), "seed": "7"})
            t = Task(name="train", template=train, arguments={"steps": str(steps)})
            e = evaluate(arguments=[p.get_artifact("holdout")])
            d = Task(name="deploy", template=deploy,
                     when=f"{{{{tasks.{e.name}.outputs.parameters.mse}}}} < {{{{workflow.parameters.threshold}}}}")
            q = predict(arguments={"model": "{{workflow.parameters.model}}", "namespace": "{{workflow.namespace}}"})
            v >> t
            [p, t] >> e >> d
            q.depends = f"{d.name}.Succeeded"
    return w
