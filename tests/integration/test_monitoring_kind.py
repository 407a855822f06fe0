"""monitoring on a real kind cluster (the stack cluster, before the other modules use it): Prometheus, the
exporter and node_exporter built here and run as pods (restricted / privileged node agents); the
cluster-metrics scenario (node and pod metrics, a crash-looping pod's alert); the pods' memory as the
kubelet measures it."""

import pytest

from appliance import e2e, orchestrator
from appliance.components.prom import Prometheus
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
    assert mem and all(v > 0 for v in mem.values()), mem  # its budget: bench/bench_stack.py


def test_a_tenants_pod_annotated_for_scraping_is_no_target_and_raises_no_alert(kind):
    """bob (his own token) runs a pod annotated prometheus.io/scrape that exports an XID and a crash loop under
    the exporter's names: Prometheus never discovers it and nothing fires. Controls: the same pod in a platform
    namespace is discovered (job `pods`); the kubelets and cAdvisor are scraped (with the metrics-only token)."""
    import time

    from kubernetes import client, config

    _, result = kind
    kube = Kube(result["kubeconfig"])
    prom = Prometheus(kube)
    forged = ('DCGM_FI_DEV_XID_ERRORS{gpu="0",UUID="GPU-0",Hostname="x",modelName="m",namespace="user-bob",pod="p"} 79\n'
              'kube_pod_container_status_waiting_reason{namespace="user-alice",pod="x",container="c",reason="CrashLoopBackOff"} 1\n')
    serve = ("import http.server as h\n"
             "class H(h.BaseHTTPRequestHandler):\n"
             "    def do_GET(self):\n"
             "        self.send_response(200); self.end_headers(); self.wfile.write(" + repr(forged) + ".encode())\n"
             "h.HTTPServer(('', 8000), H).serve_forever()\n")

    def pod(ns):
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "forger", "namespace": ns, "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "8000"}},
                "spec": {"securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
                         "containers": [{"name": "app", "image": "appliance.local/trainer:stub", "imagePullPolicy": "IfNotPresent",
                                         "command": ["python3", "-c", serve], "ports": [{"containerPort": 8000}],
                                         "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}},
                                         "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}]}}

    bob = client.CoreV1Api(config.new_client_from_config_dict(kube.kubeconfig_for("user-bob", "bob", 600, "it")))
    admin = client.CoreV1Api(kube.api)
    bob.create_namespaced_pod("user-bob", pod("user-bob"))
    admin.create_namespaced_pod("kubeflow", pod("kubeflow"))
    try:
        deadline, seen = time.time() + 120, set()
        while time.time() < deadline:
            t = prom.get("targets", state="any")
            seen = {(x["discoveredLabels"].get("__meta_kubernetes_namespace"), x["discoveredLabels"].get("__meta_kubernetes_pod_name"))
                    for x in t["activeTargets"] + t["droppedTargets"]}
            if ("kubeflow", "forger") in seen:
                break
            time.sleep(5)
        assert ("kubeflow", "forger") in seen, "the control: a platform namespace's annotated pod is never discovered"
        assert not [s for s in seen if s[0] == "user-bob"], seen
        time.sleep(35)  # two scrapes and rule evaluations
        assert prom.query('up{job="pods",namespace="user-bob"}') == []
        forged_alerts = [a for a in prom.alerts() if a["labels"].get("UUID") == "GPU-0" or a["labels"].get("pod") == "x"]
        assert forged_alerts == [], forged_alerts  # nor from the platform namespace's copy: the rules select their jobs
        up = {r["metric"]["job"]: r["value"][1] for r in prom.query('min by (job) (up{job=~"kubelet|cadvisor|node-exporter|gpu-exporter"})')}
        assert up == {"kubelet": "1", "cadvisor": "1", "node-exporter": "1", "gpu-exporter": "1"}, up
    finally:
        bob.delete_namespaced_pod("forger", "user-bob", grace_period_seconds=0)
        admin.delete_namespaced_pod("forger", "kubeflow", grace_period_seconds=0)
