"""The journey's pipeline (Hera → Argo Workflows), submitted from a notebook by its user:

    volume ─┐
    prepare ┼ tune (a Katib Experiment over the stub's lr and epochs, created and awaited) ─ train (a 2-rank
            │   PyTorchJob with the best parameters) ─ evaluate (MSE as an output) ─ serve (create the
            └─  InferenceService, or update it in place while requests flow) ─ predict

With `lr` and `epochs` given, `tune` is left out (a retrain with known parameters: it updates the served
model). prepare, evaluate and predict are train_serve's steps; the holdout set and the evaluated model are
artifacts in the user's bucket. Steps run as the namespace's `pipeline-runner`.

    from submit import submit, wait
    from journey import pipeline
    wf = wait(submit(pipeline(), name="journey"))
"""

from hera.workflows import DAG, Parameter, Resource, Task, Workflow, script
from hera.workflows import models as m
from train_serve import IMAGE, SMALL, VOLUME, evaluate, predict, prepare, pytorchjob

EXPERIMENT = """\
apiVersion: kubeflow.org/v1beta1
kind: Experiment
metadata: {name: "{{workflow.name}}-tune"}
spec:
  objective: {type: minimize, objectiveMetricName: loss}
  algorithm: {algorithmName: random}
  maxTrialCount: %(trials)d
  parallelTrialCount: 2
  maxFailedTrialCount: 1
  parameters:
    - {name: lr, parameterType: double, feasibleSpace: {min: "0.05", max: "0.4"}}
    - {name: epochs, parameterType: int, feasibleSpace: {min: "10", max: "80"}}
  metricsCollectorSpec: {collector: {kind: StdOut}}
  trialTemplate:
    primaryContainerName: train
    trialParameters: [{name: lr, reference: lr}, {name: epochs, reference: epochs}]
    trialSpec:
      apiVersion: batch/v1
      kind: Job
      spec:
        backoffLimit: 0
        template:
          spec:
            restartPolicy: Never
            securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
            containers:
              - name: train
                image: %(image)s
                imagePullPolicy: IfNotPresent
                command: [python3, /app/stub_train.py, "--lr=${trialParameters.lr}", "--epochs=${trialParameters.epochs}", --out=/tmp/m, --linger=3]
                resources: {requests: {cpu: 50m, memory: 64Mi}, limits: {memory: 256Mi}}
                securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
"""


def _best(name: str) -> str:
    return f'{{.status.currentOptimalTrial.parameterAssignments[?(@.name=="{name}")].value}}'


@script(image=IMAGE, command=["python3"], resources=SMALL,
        outputs=[Parameter(name="rollout", value_from=m.ValueFrom(path="/tmp/rollout"))])
def serve(model: str, volume: str, revision: str, namespace: str, settle: int):
    """Create the InferenceService (RawDeployment), or update it in place when one already serves: then
    requests go to it without pause from before the update until the new revision is ready and `settle`
    seconds more (the old pod's exit), and none may fail. Talks to the API server with the step's token."""
    import json
    import ssl
    import threading
    import time
    import urllib.error
    import urllib.request

    sa = "/var/run/secrets/kubernetes.io/serviceaccount"
    ctx = ssl.create_default_context(cafile=f"{sa}/ca.crt")
    isvcs = f"/apis/serving.kserve.io/v1beta1/namespaces/{namespace}/inferenceservices"

    def kube(method, path, body=None, ctype="application/json"):
        req = urllib.request.Request("https://kubernetes.default.svc" + path, method=method, data=json.dumps(body).encode() if body else None,
                                     headers={"Authorization": "Bearer " + open(f"{sa}/token").read(), "Content-Type": ctype})
        try:
            return json.loads(urllib.request.urlopen(req, context=ctx, timeout=30).read())
        except urllib.error.HTTPError as e:
            if e.code == 404 and method == "GET":
                return None
            raise SystemExit(f"{method} {path}: {e.code} {e.read()[:300]!r}") from None

    def rolled_out():
        """The predictor's Deployment runs only its newest revision, all of it available (RawDeployment)."""
        d = kube("GET", f"/apis/apps/v1/namespaces/{namespace}/deployments/{model}-predictor")
        st, want = (d or {}).get("status") or {}, ((d or {}).get("spec") or {}).get("replicas", 1)
        done = bool(d) and st.get("observedGeneration", 0) >= d["metadata"]["generation"] and \
            st.get("replicas") == st.get("updatedReplicas") == st.get("availableReplicas") == want
        return done, (d or {}).get("metadata", {}).get("annotations", {}).get("deployment.kubernetes.io/revision")

    spec = {"predictor": {"annotations": {"appliance.dev/revision": revision},
                          "model": {"modelFormat": {"name": "stub-npz"}, "storageUri": f"pvc://{volume}/stub",
                                    "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}}}}
    live = kube("GET", f"{isvcs}/{model}")
    serving = live is not None and rolled_out()[0]
    sent, failures, stop = [0], [], threading.Event()

    def traffic():
        url = f"http://{model}-predictor.{namespace}.svc.cluster.local/v1/models/{model}:predict"
        body = json.dumps({"instances": [[1.0, 0.0, 0.0, 0.0]]}).encode()
        while not stop.is_set():
            try:
                req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
                got = json.loads(urllib.request.urlopen(req, timeout=5).read())["predictions"][0]
                if abs(got - 2.25) > 0.02:
                    failures.append(f"answer {got}")
            except Exception as e:  # noqa: BLE001 — every failed request is counted and shown
                failures.append(f"{type(e).__name__}: {e}")
            sent[0] += 1
            time.sleep(0.05)

    sender = threading.Thread(target=traffic)
    before = rolled_out()[1] if live else None
    if serving:
        sender.start()
        time.sleep(2)
    if live:
        kube("PATCH", f"{isvcs}/{model}", {"spec": spec}, "application/merge-patch+json")
        print(f"updating {model} in place (revision {before}){' while requests flow' if serving else ''}", flush=True)
    else:
        kube("POST", isvcs, {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
                             "metadata": {"name": model, "annotations": {"serving.kserve.io/deploymentMode": "RawDeployment"}},
                             "spec": spec})
        print(f"creating {model}", flush=True)
    t0 = time.monotonic()
    while not ((state := rolled_out())[0] and state[1] != before):
        if time.monotonic() - t0 > 600:
            stop.set()
            raise SystemExit(f"{model}'s predictor not rolled out after 600s (revision {state[1]}, was {before})")
        time.sleep(0.5)
    took = time.monotonic() - t0
    if serving:
        time.sleep(settle)
        stop.set()
        sender.join()
    result = {"action": "updated" if live else "created", "seconds": round(took, 1), "revision": state[1],
              "requests": sent[0], "failed": len(failures)}
    open("/tmp/rollout", "w").write(json.dumps(result))
    print(json.dumps(result), *failures[:5], sep="\n")
    if failures:
        raise SystemExit(f"{len(failures)} of {sent[0]} requests failed during the rollout")


def pipeline(namespace: str | None = None, model: str = "journey", volume: str = "journey-model", trials: int = 4,
             lr: float | None = None, epochs: int | None = None, threshold: float = 0.01, settle: int = 20) -> Workflow:
    tuned = lr is None or epochs is None
    with Workflow(generate_name="journey-", namespace=namespace, entrypoint="main",
                  arguments=[Parameter(name="model", value=model), Parameter(name="volume", value=volume),
                             Parameter(name="threshold", value=str(threshold))],
                  volumes=[m.Volume(name="model", persistent_volume_claim=m.PersistentVolumeClaimVolumeSource(
                      claim_name="{{workflow.parameters.volume}}"))]) as w:
        claim = Resource(name="volume", action="apply", manifest=VOLUME)
        experiment = tuned and Resource(name="tune", action="create", manifest=EXPERIMENT % {"trials": int(trials), "image": IMAGE},
                              set_owner_reference=True,
                              success_condition=f"status.trialsSucceeded > {int(trials) - 1}",
                              failure_condition="status.trialsFailed > 0",
                              outputs=[Parameter(name="lr", value_from=m.ValueFrom(json_path=_best("lr"))),
                                       Parameter(name="epochs", value_from=m.ValueFrom(json_path=_best("epochs")))])
        job = Resource(name="train", action="create", manifest=pytorchjob('--lr, "{{inputs.parameters.lr}}", --epochs, "{{inputs.parameters.epochs}}"'), set_owner_reference=True,
                       inputs=[Parameter(name="lr"), Parameter(name="epochs")],
                       success_condition="status.replicaStatuses.Master.succeeded > 0",
                       failure_condition="status.replicaStatuses.Master.failed > 0")
        with DAG(name="main"):
            v = Task(name="volume", template=claim)
            p = prepare(arguments={"rows": "128", "seed": "7"})
            if tuned:
                k = Task(name="tune", template=experiment)
                best = {"lr": "{{tasks.tune.outputs.parameters.lr}}", "epochs": "{{tasks.tune.outputs.parameters.epochs}}"}
            else:
                best = {"lr": str(lr), "epochs": str(epochs)}
            t = Task(name="train", template=job, arguments=best)
            e = evaluate(arguments=[p.get_artifact("holdout")])
            s = serve(arguments={"model": "{{workflow.parameters.model}}", "volume": "{{workflow.parameters.volume}}",
                                 "revision": "{{workflow.name}}", "namespace": "{{workflow.namespace}}", "settle": str(settle)},
                      when=f"{{{{tasks.{e.name}.outputs.parameters.mse}}}} < {{{{workflow.parameters.threshold}}}}")
            q = predict(arguments={"model": "{{workflow.parameters.model}}", "namespace": "{{workflow.namespace}}"})
            [v, k] >> t if tuned else v >> t
            [p, t] >> e >> s
            q.depends = f"{s.name}.Succeeded"
    return w
