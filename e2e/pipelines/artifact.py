"""One step writing an artifact (a small report) to the namespace's default artifact repository: the
user's bucket in the artifact store.

    python3 submit.py artifact --namespace user-alice
"""

from hera.workflows import Artifact, Resources, Steps, Workflow, script
from hera.workflows import models as m

IMAGE = "appliance.local/trainer:stub"


@script(image=IMAGE, command=["python3"], resources=Resources(cpu_request="20m", memory_request="32Mi", memory_limit="128Mi"),
        outputs=[Artifact(name="report", path="/tmp/report.txt", archive=m.ArchiveStrategy(none=m.NoneStrategy()))])
def write(text: str):
    open("/tmp/report.txt", "w").write(text + "\n")


def pipeline(namespace: str | None = None, text: str = "private to its owner") -> Workflow:
    with Workflow(generate_name="artifact-", namespace=namespace, entrypoint="main") as w:
        with Steps(name="main"):
            write(arguments={"text": text})
    return w
