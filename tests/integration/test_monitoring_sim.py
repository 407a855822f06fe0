"""monitoring on the simulator: Prometheus (built from its Go module) and the GPU exporter run as supervised
host processes; the gpu-metrics scenario (a 2x8-GPU PyTorchJob's GPUs in Prometheus under DCGM names, an
injected XID firing its alert); `status` shows a firing alert; their memory; `down` stops both. Tenants: the
real Prometheus with the shipped rules and the `pods` job's limits against a tenant's forged series; the GPU
runtime policy on the simulator's API server, as bob."""

import json
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psutil
import pytest
import yaml

from appliance import e2e, orchestrator, report
from appliance.components import CATALOG, kit
from appliance.components.monitoring import rules_text
from appliance.components.prom import Prometheus
from appliance.kube import Kube
from appliance.procs import free_ports
from appliance.runtime import Runtime, process
from tests.integration.clusters import MIG_NODE, cluster, scenario_passes

pytestmark = [pytest.mark.integration, pytest.mark.slow]
COMPONENTS = ("platform-base", "user-profiles", "training-operator", "monitoring")
NAME = "it-monitoring-sim"
PROCS = ("prometheus", "gpu-exporter")


@pytest.fixture(scope="module")
def sim():
    with cluster("sim-dgx-pod", "sim", [f"cluster.name={NAME}", "components.monitoring={}"], COMPONENTS, (MIG_NODE,)) as up:
        yield up


def _hosts(result):
    return [process.HostProcess(process.controllers_dir(result["kubeconfig"]), p) for p in PROCS]


def test_up_runs_prometheus_and_the_exporter_on_the_host(sim):
    profile, result = sim
    assert not result["failed"] and "monitoring" in result["ran"]
    kube = Kube(result["kubeconfig"])
    assert CATALOG["monitoring"](profile.components["monitoring"].options, Runtime(pods_run=False)).ready(kube) == (True, "")
    assert all(h.alive() for h in _hosts(result))
    assert kube.get("apps/v1", "Deployment", "prometheus", "monitoring") is None  # no pods: host processes serve
    prom = Prometheus(kube)
    deadline = time.time() + 60
    while not (up := prom.query('up{job="gpu-exporter"} == 1')) and time.time() < deadline:
        time.sleep(2)
    assert up, "Prometheus never scraped the exporter"
    assert len(prom.query('DCGM_FI_DEV_GPU_UTIL{GPU_I_ID=""}')) == 32  # 4 DGX nodes x 8
    assert len(prom.query('DCGM_FI_DEV_GPU_UTIL{GPU_I_PROFILE="1g.10gb"}')) == 16  # the MIG node's 8 GPUs, 2 of them each


def test_mig_placement_scenario_passes(sim, tmp_path):
    """A job asking for two 1g.10gb instances lands on the MIG node; the series of those instances carry its pod."""
    _, result = sim
    scenario_passes(result, "sim", COMPONENTS, "mig-placement", tmp_path, skips_for=("queues",))


def test_gpu_metrics_scenario_passes(sim, tmp_path):
    _, result = sim
    (r,) = e2e.run(result["kubeconfig"], "sim", set(COMPONENTS), "gpu-metrics", tmp_path)
    assert r.passed, [f"{s.name}: {s.message}" for s in r.steps if s.status == "failed"]
    page = (tmp_path / "report.html").read_text()  # the report plots the scenario's time from Prometheus
    assert page.count("<svg") == 3 and ">allocated<" in page and ">allocated GPUs<" in page and "no samples" not in page


def test_status_shows_a_firing_alert(sim):
    profile, result = sim
    kube = Kube(result["kubeconfig"])
    from kubernetes import client

    core = client.CoreV1Api(kube.api)
    node = next(n.metadata.name for n in core.list_node().items if (n.status.capacity or {}).get("nvidia.com/gpu"))
    core.patch_node(node, {"metadata": {"annotations": {"appliance.dev/gpu-xid": "5=48"}}})
    try:
        want = f"FIRING GPUXidError: GPU 5 on {node} reports XID 48"
        deadline, notes = time.time() + 90, []
        while time.time() < deadline:
            notes = orchestrator.status(NAME)["components"]["monitoring"]["notes"]
            if want in notes:
                break
            time.sleep(3)
        assert want in notes, notes
        assert f"monitoring: FIRING GPUXidError: GPU 5 on {node}" in report.status_text(orchestrator.status(NAME))
    finally:
        core.patch_node(node, {"metadata": {"annotations": {"appliance.dev/gpu-xid": None}}})


def test_memory_of_the_host_processes(sim, record_property):
    _, result = sim
    rss = {}
    for h in _hosts(result):
        sup = psutil.Process(h.load().pid)
        rss[h.name] = sum(p.memory_info().rss for p in [sup, *sup.children(recursive=True)]) / 2**20
    record_property("rss_mib", rss)
    print(f"RSS MiB (supervisor + program): {rss}")
    assert rss and all(v > 0 for v in rss.values()), rss  # its budget at scale: bench/bench_monitoring.py


def test_new_options_restart_prometheus_with_them(sim):
    profile, result = sim
    prom_host, exporter_host = _hosts(result)
    before = (prom_host.load().pid, exporter_host.load().pid)
    opts = {**profile.components["monitoring"].options, "scrape_interval": "7s"}
    changed = profile.model_copy(update={"components": {**profile.components, "monitoring": profile.components["monitoring"].model_copy(update={"options": opts})}})
    again = orchestrator.up(changed, "sim", report.make())
    assert not again["failed"] and "monitoring" in again["ran"]
    assert prom_host.load().pid != before[0] and exporter_host.load().pid == before[1]  # only what changed restarts
    conf = Prometheus(Kube(result["kubeconfig"]))
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if "scrape_interval: 7s" in conf.get("status/config")["yaml"]:
                break
        except Exception:  # noqa: BLE001 - restarting
            pass
        time.sleep(1)
    assert "scrape_interval: 7s" in conf.get("status/config")["yaml"]


# --- a tenant against Prometheus and the GPU runtime

FORGED = "\n".join([  # what a tenant's pod could export: a platform's names, platform labels, job included
    'DCGM_FI_DEV_XID_ERRORS{gpu="0",UUID="GPU-x",Hostname="dgx-0",modelName="H100",namespace="user-bob",pod="p",job="gpu-exporter"} 79',
    'kube_node_status_condition{node="dgx-0",condition="Ready",status="true",job="gpu-exporter"} 0',
    'kube_pod_container_status_waiting_reason{namespace="user-alice",pod="x",container="c",reason="CrashLoopBackOff"} 1',
    'kubelet_volume_stats_used_bytes{namespace="user-alice",persistentvolumeclaim="home"} 100',
    'kubelet_volume_stats_capacity_bytes{namespace="user-alice",persistentvolumeclaim="home"} 100', ""])


def _serve(routes: dict[str, tuple[int, str]]) -> tuple[ThreadingHTTPServer, int]:
    """A local HTTP server: path -> (status, body); a 302's body is its Location."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            code, body = routes.get(self.path, (404, ""))
            self.send_response(code)
            if code == 302:
                self.send_header("Location", body)
                body = ""
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, srv.server_address[1]


def _get(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/{path}", timeout=5) as r:
        return json.load(r)["data"]


def test_a_tenants_forged_series_raise_no_alert_and_its_pod_job_is_held_to_limits(tmp_path):
    """Prometheus (the real program) with the shipped rules and the rendered in-cluster `pods` job (its limits,
    no redirects; static targets standing in for pods): a target exporting the platform's series as alerts
    would want them raises none, though scraped; one over the sample limit and one redirecting are down. The
    control: the same XID from the `gpu-exporter` job fires GPUXidError."""
    comp = CATALOG["monitoring"]({})
    conf = yaml.safe_load(next(o for o in comp.objects(crds=False) if o["kind"] == "ConfigMap")["data"]["prometheus.yml"])
    pods = next(j for j in conf["scrape_configs"] if j["job_name"] == "pods")
    flood = "".join(f'flood{{i="{i}"}} 1\n' for i in range(pods["sample_limit"] + 1))
    xid = 'DCGM_FI_DEV_XID_ERRORS{gpu="3",UUID="GPU-3",Hostname="dgx-1",modelName="H100",namespace="user-alice",pod="job-0"} 79\n'
    srv, port = _serve({"/forged": (200, FORGED), "/flood": (200, flood), "/xid": (200, xid), "/redirect": (302, "/forged")})
    target = f"127.0.0.1:{port}"
    pods.pop("kubernetes_sd_configs")
    pods.pop("relabel_configs")
    pods["static_configs"] = [{"targets": [target], "labels": {"__metrics_path__": f"/{case}", "case": case}}
                              for case in ("forged", "flood", "redirect")]
    jobs = [pods, {"job_name": "gpu-exporter", "honor_labels": True, "metrics_path": "/xid", "static_configs": [{"targets": [target]}]}]
    (tmp_path / "alerts.yml").write_text(rules_text(CATALOG["monitoring"].Opts()))
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"}, "rule_files": ["alerts.yml"], "scrape_configs": jobs}))
    (web,) = free_ports(1)
    prog = kit._go_program("prometheus", CATALOG["monitoring"].decl.images["prometheus"].go)
    proc = subprocess.Popen([str(prog), f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'data'}",
                             f"--web.listen-address=127.0.0.1:{web}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline, alerts = time.time() + 60, []
        while time.time() < deadline:
            try:
                alerts = _get(web, "alerts")["alerts"]
                forged = _get(web, "query?query=" + urllib.request.quote('count({job="pods",case="forged"})'))["result"]
            except OSError:
                time.sleep(1)
                continue
            if any(a["labels"]["alertname"] == "GPUXidError" and a["state"] == "firing" for a in alerts) and forged:
                time.sleep(3)  # a few more evaluations with the forged series in
                alerts = _get(web, "alerts")["alerts"]
                break
            time.sleep(1)
        assert [(a["labels"]["alertname"], a["labels"].get("namespace"), a["state"]) for a in alerts] == [
            ("GPUXidError", "user-alice", "firing")], alerts
        forged = _get(web, "query?query=" + urllib.request.quote('DCGM_FI_DEV_XID_ERRORS{job="pods"}'))["result"]
        assert forged and forged[0]["metric"]["exported_job"] == "gpu-exporter"  # scraped, its own `job` renamed
        up = {r["metric"].get("case", r["metric"]["job"]): r["value"][1] for r in _get(web, "query?query=up")["result"]}
        assert up == {"forged": "1", "flood": "0", "redirect": "0", "gpu-exporter": "1"}, up
        errors = {t["labels"].get("case"): t["lastError"] for t in _get(web, "targets")["activeTargets"]}
        assert "sample limit exceeded" in errors["flood"] and "302" in errors["redirect"], errors
    finally:
        proc.terminate()
        proc.wait(10)
        srv.shutdown()


def test_bob_cannot_select_gpus_by_runtime_class_or_environment(sim):
    """The nvidia-device-plugin component's policy on the simulator's API server, as bob with his own token:
    the nvidia runtime class and NVIDIA_VISIBLE_DEVICES refused; GPUs by the device plugin's resource allowed,
    and the runtime class allowed in kube-system (the agents' namespace)."""
    from kubernetes import client, config
    from kubernetes.client.rest import ApiException

    _, result = sim
    kube = Kube(result["kubeconfig"])
    comp = CATALOG["nvidia-device-plugin"]()
    comp.install(kube)
    try:
        bob = client.CoreV1Api(config.new_client_from_config_dict(kube.kubeconfig_for("user-bob", "bob", 600, "it")))
        admin = client.CoreV1Api(kube.api)

        def pod(ns, runtime=None, env=None, gpus=0):
            c = {"name": "c", "image": "appliance.local/trainer:stub", "env": env or [],
                 "resources": {"limits": {"nvidia.com/gpu": str(gpus)}} if gpus else {}}
            return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "gpu-probe", "namespace": ns},
                    "spec": {"containers": [c], **({"runtimeClassName": runtime} if runtime else {})}}

        def refused(api, body) -> str:
            deadline = time.time() + 30  # a new policy takes a moment to load
            while True:
                try:
                    api.create_namespaced_pod(body["metadata"]["namespace"], body, dry_run="All")
                except ApiException as e:
                    return json.loads(e.body)["message"]
                if time.time() > deadline:
                    return ""
                time.sleep(1)

        assert "runtime class nvidia is for the GPU agents only" in refused(bob, pod("user-bob", runtime="nvidia"))
        assert "NVIDIA_VISIBLE_DEVICES is the device plugin's to set" in refused(
            bob, pod("user-bob", env=[{"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"}]))
        bob.create_namespaced_pod("user-bob", pod("user-bob", gpus=1, env=[{"name": "NVIDIA_VISIBLE_DEVICES", "value": "void"}]), dry_run="All")
        admin.create_namespaced_pod("kube-system", pod("kube-system", runtime="nvidia"), dry_run="All")
        with pytest.raises(ApiException, match="GPU agents only"):  # nor the admin, outside the agents' namespaces
            admin.create_namespaced_pod("user-alice", pod("user-alice", runtime="nvidia"), dry_run="All")
    finally:
        comp.remove(kube)


def test_down_stops_both(sim):
    profile, result = sim
    pids = [h.load().pid for h in _hosts(result)]
    orchestrator.down(profile.cluster.name, report.make())
    assert not any(h.alive() for h in _hosts(result))
    assert all(not psutil.pid_exists(p) or psutil.Process(p).status() == psutil.STATUS_ZOMBIE for p in pids)

