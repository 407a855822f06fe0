"""Memoization: `draw` is cached in the namespace's ConfigMap `pipeline-cache` under a key made of its input,
so running the pipeline again with the same `key` reuses its output (a random token) instead of running it.

    python3 submit.py memoized --namespace user-alice --param key=K
"""

from hera.workflows import DAG, Parameter, Resources, Workflow, script
from hera.workflows import models as m

IMAGE = "appliance.local/trainer:stub"
SMALL = Resources(cpu_request="20m", memory_request="32Mi", memory_limit="128Mi")
CACHE = "pipeline-cache"


@script(image=IMAGE, command=["python3"], resources=SMALL,
        memoize=m.Memoize(key="draw-{{inputs.parameters.key}}", max_age="1h",
                          cache=m.Cache(config_map=m.ConfigMapKeySelector(name=CACHE, key="draw"))),
        outputs=[Parameter(name="token", value_from=m.ValueFrom(path="/tmp/token"))])
def draw(key: str):
    import secrets
    import time

    time.sleep(3)  # the work a cache hit saves
    open("/tmp/token", "w").write(secrets.token_hex(8))


@script(image=IMAGE, command=["python3"], resources=SMALL)
def use(token: str):
    print(f"token {token}")


def pipeline(namespace: str | None = None, key: str = "default") -> Workflow:
    with Workflow(generate_name="memoized-", namespace=namespace, entrypoint="main") as w:
        with DAG(name="main"):
            d = draw(arguments={"key": key})
            d >> use(arguments={"token": d.get_parameter("token")})
    return w
