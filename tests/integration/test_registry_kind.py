"""Local images delivered through a registry on a real kind cluster: `cluster.images.registry` makes
`up` push what it builds to a real registry (distribution v3, a container on the nodes' network)
instead of importing it into the node containers; the nodes' containerd pulls `appliance.local/*`
through the mirror the provider wrote."""

import json
import subprocess
import time

import pytest
from kubernetes import client

from appliance.images import registry as R
from appliance.kube import Kube
from tests.integration.clusters import cluster, require_kind
from tests.integration.registry import container_registry

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.docker]
NAME = "it-registry-kind"


@pytest.fixture(scope="module")
def up():
    require_kind()
    with container_registry("kind", f"{NAME}-registry") as url:
        sets = [f"cluster.name={NAME}", "cluster.workers=0", "cluster.images.source=local", f"cluster.images.registry={url}"]
        with cluster("ci", "kind", sets, ("platform-base", "training-operator")) as (profile, result):
            yield url, result


def _ctr_images(node: str) -> str:
    return subprocess.run(["docker", "exec", node, "ctr", "-n", "k8s.io", "images", "ls", "-q"],
                          capture_output=True, text=True, check=True).stdout


def test_built_images_are_pushed_and_pulled_by_the_node(up):
    url, result = up
    assert not result["failed"], result
    status, _, body = R.Endpoint(url).request("GET", "/v2/_catalog")
    assert status == 200 and {"training-operator", "trainer"} <= set(json.loads(body)["repositories"])
    status, _, body = R.Endpoint(url).request("GET", "/v2/trainer/tags/list")
    assert "stub" in json.loads(body)["tags"]
    # the operator's Deployment is Available (up waited for it) from an image the node pulled
    assert any(line.startswith("appliance.local/training-operator:") for line in _ctr_images(f"{NAME}-control-plane").split())


def test_single_node_runs_one_coredns(up):
    scale = client.AppsV1Api(Kube(up[1]["kubeconfig"]).api).read_namespaced_deployment_scale("coredns", "kube-system")
    assert scale.spec.replicas == 1


def test_a_pod_pulls_an_alias_through_the_mirror(up):
    _, result = up
    node = f"{NAME}-control-plane"
    subprocess.run(["docker", "exec", node, "ctr", "-n", "k8s.io", "images", "rm", "appliance.local/trainer:stub"], capture_output=True)
    kube = Kube(result["kubeconfig"])
    core = client.CoreV1Api(kube.api)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pull-check", "namespace": "default"},
           "spec": {"restartPolicy": "Never", "containers": [{
               "name": "c", "image": "appliance.local/trainer:stub", "imagePullPolicy": "Always",
               "command": ["python3", "-c", "import numpy; print('numpy', numpy.__version__)"]}]}}
    kube.apply([pod])
    phase, deadline = "", time.monotonic() + 180
    while phase not in ("Succeeded", "Failed") and time.monotonic() < deadline:
        time.sleep(2)
        phase = core.read_namespaced_pod("pull-check", "default").status.phase
    events = [e.message for e in core.list_namespaced_event("default", field_selector="involvedObject.name=pull-check").items]
    assert phase == "Succeeded", events
    assert core.read_namespaced_pod_log("pull-check", "default").startswith("numpy ")
    assert any("Successfully pulled image" in m for m in events), events
    assert "appliance.local/trainer:stub" in _ctr_images(node).split()
