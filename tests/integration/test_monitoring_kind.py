"""monitoring on a real kind cluster (the stack cluster, before the other modules use it): Prometheus, the
exporter and node_exporter built here and run as pods (restricted / privileged node agents); the
cluster-metrics scenario (node and pod metrics, a crash-looping pod's alert); the pods' memory as the
kubelet measures it."""

import pytest

from appliance import e2e, orchestrator
from appliance.components.monitoring.prom import Prometheus
from appliance.kube import Kube

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.docker]
COMPONENTS = ("platform-base", "user-profiles", "training-operator", "monitoring")


@pytest.fixture(scope="module")
def kind(stack):
    """The stack cluster (conftest.py): (profile, result of its `up`)."""
    return stack


def test_up_installs_monitoring_in_the_cluster(kind):
    profile, result = kind
    assert not result["failed"] and "monitoring" in result["ran"]
    kube = Kube(result["kubeconfig"])
    for kind_, name, ns in [("Deployment", "prometheus", "monitoring"), ("Deployment", "gpu-exporter", "monitoring"),
                            ("DaemonSet", "node-exporter", "monitoring-node"), ("PersistentVolumeClaim", "prometheus", "monitoring")]:
        assert kube.get("apps/v1" if kind_ != "PersistentVolumeClaim" else "v1", kind_, name, ns) is not None, (kind_, name)
    assert orchestrator.status(profile.cluster.name)["components"]["monitoring"]["notes"] == ["no alerts firing"]


def test_cluster_metrics_scenario_passes(kind, tmp_path):
    _, result = kind
    (r,) = e2e.run(result["kubeconfig"], "kind", set(COMPONENTS), "cluster-metrics", tmp_path)
    assert r.passed, [f"{s.name}: {s.message}" for s in r.steps if s.status == "failed"]
    page = (tmp_path / "report.html").read_text()  # no GPUs on kind: the memory plot has samples, by namespace
    assert page.count("<svg") == 3 and ">monitoring<" in page and ">kubeflow<" in page


def test_footprint_of_monitoring(kind, record_property):
    _, result = kind
    prom = Prometheus(Kube(result["kubeconfig"]))
    mem = {r["metric"]["pod"]: float(r["value"][1]) / 2**20 for r in prom.query(
        'sum by (pod) (container_memory_working_set_bytes{namespace=~"monitoring|monitoring-node",container!=""})')}
    record_property("working_set_mib", mem)
    print(f"monitoring working set MiB: {mem}")
    assert mem and sum(mem.values()) < 400, mem
