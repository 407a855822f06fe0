"""Memoization: `draw` is cached under a key made of its input in the cache `<namespace>.pipeline-cache` (a
ConfigMap the controller keeps; caches are named after the workflow's namespace, which admission enforces),
so running the pipeline again with the same `key` reuses its output (a random token) instead of running it.

    python3 submit.py memoized --namespace user-alice --param key=K [--param cache=NAME]
"""

from hera.workflows import DAG, Parameter, Resources, Workflow, script
from hera.workflows import models as m

IMAGE = "appliance.local/trainer:stub"
SMALL = Resources(cpu_request="20m", memory_request="32Mi", memory_limit="128Mi")
CACHE = "{{workflow.namespace}}.pipeline-cache"


def _memoize(cache: str) -> m.Memoize:
    return m.Memoize(key="draw-{{inputs.parameters.key}}", max_age="1h", cache=m.Cache(config_map=m.ConfigMapKeySelector(name=cache, key="draw")))


@script(image=IMAGE, command=["python3"], resources=SMALL,
        memoize=_memoize(CACHE),
        outputs=[Parameter(name="token", value_from=m.ValueFrom(path="/tmp/token"))])
def draw(key: str):
    import secrets
    import time

    time.sleep(3)  # the work a cache hit saves
    open("/tmp/token", "w").write(secrets.token_hex(8))


@script(image=IMAGE, command=["python3"], resources=SMALL)
def use(token: str):
    print(f"token {token}")


def pipeline(namespace: str | None = None, key: str = "default", cache: str = CACHE) -> dict:
    with Workflow(generate_name="memoized-", namespace=namespace, entrypoint="main") as w:
        with DAG(name="main"):
            d = draw(arguments={"key": key})
            d >> use(arguments={"token": d.get_parameter("token")})
    body = w.to_dict()
    (tmpl,) = [t for t in body["spec"]["templates"] if t["name"] == "draw"]
    tmpl["memoize"] = _memoize(cache).dict(by_alias=True, exclude_none=True)
    return body
