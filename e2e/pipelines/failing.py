"""A pipeline whose check step fails: `check` exits 1 with its reason (which becomes the step's message) and is
retried twice as declared (3 attempts), while `independent` succeeds; the workflow ends Failed.

    python3 submit.py failing --namespace user-alice
"""

from hera.workflows import DAG, Resources, RetryStrategy, Workflow, script

IMAGE = "appliance.local/trainer:stub"
SMALL = Resources(cpu_request="20m", memory_request="32Mi", memory_limit="128Mi")


@script(image=IMAGE, command=["python3"], resources=SMALL, retry_strategy=RetryStrategy(limit=2, retry_policy="OnFailure"))
def check(rows: int):
    import sys

    if rows <= 0:
        reason = f"refusing rows={rows}: the input is empty"
        open("/dev/termination-log", "w").write(reason)  # the container's termination message: Argo's step message
        sys.exit(reason)
    print(f"{rows} rows")


@script(image=IMAGE, command=["python3"], resources=SMALL)
def independent():
    print("unaffected")


def pipeline(namespace: str | None = None, rows: int = 0) -> Workflow:
    with Workflow(generate_name="failing-", namespace=namespace, entrypoint="main") as w:
        with DAG(name="main"):
            check(arguments={"rows": str(rows)})
            independent()
    return w
