"""monitoring: the exporter's attribution, patterns, faults, NVML and pod-resources paths (a fake NVML module),
the exposition format, the shipped rules and the component's rendering."""

from __future__ import annotations

import importlib.util
import re
import sys
import types
from pathlib import Path

import pytest
import yaml

from appliance.components import CATALOG
from appliance.errors import UserError
from appliance.runtime import Runtime

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("gpu_exporter", ROOT / "images" / "gpu-exporter" / "exporter.py")
exp = importlib.util.module_from_spec(spec)
sys.modules["gpu_exporter"] = exp  # dataclasses look their module up
spec.loader.exec_module(exp)
hooks = importlib.import_module("appliance.components.monitoring.hooks")


def pod(name, node, gpus, created="2026-01-01T00:00:00Z", ns="user-alice", phase="Running", annotations=None, containers=None):
    cs = containers or [{"name": "pytorch", "resources": {"limits": {"nvidia.com/gpu": str(gpus)}} if gpus else {}}]
    return {"metadata": {"name": name, "namespace": ns, "creationTimestamp": created, "annotations": annotations or {}},
            "spec": {"nodeName": node, "containers": cs}, "status": {"phase": phase}}


def node(name, gpus=8, annotations=None, product="NVIDIA-H100-80GB-HBM3", memory="81559"):
    return {"metadata": {"name": name, "annotations": annotations or {},
                         "labels": {"nvidia.com/gpu.product": product, "nvidia.com/gpu.memory": memory}},
            "status": {"capacity": {"nvidia.com/gpu": str(gpus)}, "conditions": [{"type": "Ready", "status": "True"}]}}


def test_attribution_follows_creation_order_and_skips_finished_pods():
    pods = [pod("b", "n", 2, created="2026-01-01T00:00:02Z"), pod("a", "n", 4, created="2026-01-01T00:00:01Z"),
            pod("done", "n", 8, created="2026-01-01T00:00:00Z", phase="Succeeded"),
            pod("two", "n", 0, created="2026-01-01T00:00:03Z", containers=[
                {"name": "c1", "resources": {"limits": {"nvidia.com/gpu": "1"}}}, {"name": "side"},
                {"name": "c2", "resources": {"requests": {"nvidia.com/gpu": "1"}}}])]
    owners = exp.attribute(8, pods)
    assert [owners[i][1:] for i in range(8)] == [("a", "pytorch")] * 4 + [("b", "pytorch")] * 2 + [("two", "c1"), ("two", "c2")]
    assert exp.attribute(8, list(reversed(pods))) == owners           # the same whatever order the API lists them
    assert exp.attribute(3, pods) == {i: ("user-alice", "a", "pytorch") for i in range(3)}  # never past the capacity


def test_simulated_node_job_gpus_busy_idle_gpus_zero_xid_injected():
    n = node("dgx-0", annotations={exp.XID: "3=79,junk,7=x"})
    pods = [pod("job-master-0", "dgx-0", 4, annotations={exp.PATTERN: "util=40-90/60s,mem=50"})]
    gpus = exp.simulate(n, pods, t=1000.0)
    assert len(gpus) == 8 and all(g.simulated and g.host == "dgx-0" and g.model == "NVIDIA H100 80GB HBM3" for g in gpus)
    busy, idle = gpus[:4], gpus[4:]
    assert all(g.owner == ("user-alice", "job-master-0", "pytorch") and 40 <= g.util <= 90 and g.fb_used == round(81559 / 2) for g in busy)
    assert all(g.owner == ("", "", "") and g.util == 0 and g.fb_used == 0 and g.fb_free == 81559 for g in idle)
    assert {g.index: g.xid for g in gpus if g.xid} == {3: 79}
    assert len({g.uuid for g in gpus}) == 8 and gpus[0].uuid == exp.simulate(n, pods, t=5.0)[0].uuid  # stable per node/index
    again = exp.simulate(n, [pod("job-master-0", "dgx-0", 4, annotations={exp.PATTERN: "broken"})], t=1000.0)
    assert all(g.util > 0 for g in again[:4])  # a bad pattern falls back to the default, never a failed scrape


def test_a_mig_node_has_a_series_per_instance_held_by_the_pod_that_asked_for_its_profile():
    """The simulator's MIG node as it makes it (all-balanced on 8 H100s, mixed): 32 instances, each labelled as
    dcgm-exporter labels them; a pod asking for three 1g.10gb and one 3g.40gb holds exactly those."""
    from appliance.providers.sim.nodes import node_manifest
    from appliance.schema import NodeClass

    n = node_manifest(NodeClass(name="mig", gpus=8, gpu_product="NVIDIA-H100-80GB-HBM3", mig_strategy="mixed", mig_config="all-balanced"), 0, "c")
    asks = [{"name": "train", "resources": {"limits": {"nvidia.com/mig-1g.10gb": "3", "nvidia.com/mig-3g.40gb": "1"}}}]
    gpus = exp.simulate(n, [pod("small", "mig-0", 0, containers=asks)], t=1000.0)
    assert len(gpus) == 32 and {g.instance[1] for g in gpus} == {"1g.10gb", "2g.20gb", "3g.40gb"}
    held = [(g.index, g.instance, g.fb_free + g.fb_used) for g in gpus if g.owner[1] == "small"]
    assert held == [(0, ("1", "1g.10gb"), 9984), (0, ("2", "1g.10gb"), 9984), (0, ("4", "3g.40gb"), 40320), (1, ("1", "1g.10gb"), 9984)]
    assert all(g.util == 0 for g in gpus if not g.owner[1]) and len({g.uuid for g in gpus}) == 8  # an instance carries its GPU's UUID
    text = exp.render(gpus)
    assert 'GPU_I_ID="4",GPU_I_PROFILE="3g.40gb",simulated="true"} ' in text and 'pod="small"' in text
    single = node_manifest(NodeClass(name="s", gpus=2, gpu_product="NVIDIA-A100-SXM4-40GB", mig_strategy="single", mig_config="all-1g.5gb"), 0, "c")
    one = exp.simulate(single, [pod("p", "s-0", 2)], t=0.0)
    assert len(one) == 14 and [g.instance for g in one if g.owner[1] == "p"] == [("1", "1g.5gb"), ("2", "1g.5gb")]
    assert exp.simulate(node("plain", annotations={exp.MIG: "junk"}), [], t=0.0)[0].instance == ("", "")


@pytest.mark.parametrize("text,want", [("util=85", {"util": (85, 85, 0)}),
                                       ("util=70-95/120s, mem=75", {"util": (70, 95, 120), "mem": (75, 75, 0)})])
def test_pattern_parses(text, want):
    assert exp.parse_pattern(text) == want


@pytest.mark.parametrize("bad", ["util", "gpu=5", "util=120", "util=a-b"])
def test_pattern_refuses(bad):
    with pytest.raises(ValueError):
        exp.parse_pattern(bad)


def test_sine_stays_within_its_range():
    vals = [exp.level((20, 80, 60), t, 0.3) for t in range(0, 120, 3)]
    assert min(vals) >= 20 and max(vals) <= 80 and max(vals) - min(vals) > 50


def test_exposition_has_dcgm_names_and_labels():
    g = exp.GPU(2, "GPU-x", "NVIDIA H100", "dgx-0", util=55, fb_used=10, fb_free=20, xid=48,
                owner=("user-alice", "p", "c"), simulated=True)
    text = exp.render([g], exp.cluster_state([node("dgx-0")], [pod("p", "dgx-0", 1)]))
    line = next(ln for ln in text.splitlines() if ln.startswith("DCGM_FI_DEV_GPU_UTIL{"))
    labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
    assert labels == {"gpu": "2", "UUID": "GPU-x", "device": "nvidia2", "modelName": "NVIDIA H100", "Hostname": "dgx-0",
                      "namespace": "user-alice", "pod": "p", "container": "c", "simulated": "true"} and line.endswith(" 55")
    for name in exp.FIELDS:
        assert f"# TYPE {name} gauge" in text
    assert re.search(r'^DCGM_FI_DEV_XID_ERRORS\{gpu="2",.*\} 48$', text, re.M)
    assert 'kube_node_status_condition{node="dgx-0",condition="Ready",status="true"} 1' in text
    assert 'kube_pod_container_resource_requests{namespace="user-alice",pod="p",container="pytorch",node="dgx-0",resource="nvidia_com_gpu",unit="integer"} 1' in text
    assert exp.series("m", {"a": 'q"\\\n'}, 1) == 'm{a="q\\"\\\\\\n"} 1'
    assert exp.series("m", {}, 64 * 2**30) == "m{} 68719476736" and exp.series("m", {}, 0.25) == "m{} 0.25"


def test_cluster_state_restarts_and_crash_loop():
    p = pod("crash", "n", 0, ns="user-bob")
    p["status"]["containerStatuses"] = [{"name": "pytorch", "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]
    n = node("n", gpus=0)
    n["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    st = exp.cluster_state([n], [p])
    assert st["kube_pod_container_status_restarts_total"][2] == [({"namespace": "user-bob", "pod": "crash", "container": "pytorch"}, 4.0)]
    assert st["kube_pod_container_status_waiting_reason"][2][0][0]["reason"] == "CrashLoopBackOff"
    assert ({"node": "n", "condition": "Ready", "status": "false"}, 1.0) in st["kube_node_status_condition"][2]
    assert st["kube_node_status_capacity"][2] == []


# --- the real path: pod-resources wire format and NVML through a fake module

def _varint(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def _ld(num, payload):
    payload = payload.encode() if isinstance(payload, str) else payload
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def test_pod_resources_response_maps_gpu_uuids_to_pods():
    dev = _ld(1, "nvidia.com/gpu") + _ld(2, "GPU-aaa") + _ld(2, "GPU-bbb") + _ld(3, _ld(1, _varint(0 << 3) + _varint(0)))
    other = _ld(1, "example.com/nic") + _ld(2, "nic-0")
    container = _ld(1, "pytorch") + _ld(2, dev) + _ld(2, other) + _varint(3 << 3) + _varint(5)  # cpu_ids = 5
    resp = _ld(1, _ld(1, "job-0") + _ld(2, "user-alice") + _ld(3, container)) + _ld(1, _ld(1, "idle") + _ld(2, "ns"))
    assert exp.device_owners(resp) == {"GPU-aaa": ("user-alice", "job-0", "pytorch"), "GPU-bbb": ("user-alice", "job-0", "pytorch")}


class FakeNVML(types.SimpleNamespace):
    """The parts of pynvml the exporter calls: two GPUs, an XID 79 queued on the second."""

    class NVMLError(Exception):
        pass

    nvmlEventTypeXidCriticalError = 8
    NVML_TEMPERATURE_GPU = 0

    def __init__(self):
        super().__init__(events=[types.SimpleNamespace(device="h1", eventData=79)], inited=False)

    def nvmlInit(self):
        self.inited = True

    def nvmlDeviceGetCount(self):
        return 2

    def nvmlDeviceGetHandleByIndex(self, i):
        return f"h{i}"

    def nvmlEventSetCreate(self):
        return "set"

    def nvmlDeviceRegisterEvents(self, h, mask, s):
        if h == "h0":
            raise self.NVMLError("not supported")

    def nvmlEventSetWait(self, s, timeout):
        if not self.events:
            raise self.NVMLError("timeout")
        return self.events.pop()

    def nvmlDeviceGetUUID(self, h):
        return f"GPU-{h}".encode()

    def nvmlDeviceGetName(self, h):
        return b"NVIDIA H100 80GB HBM3"

    def nvmlDeviceGetMemoryInfo(self, h):
        return types.SimpleNamespace(used=2 * 2**30, free=78 * 2**30)

    def nvmlDeviceGetUtilizationRates(self, h):
        return types.SimpleNamespace(gpu=93 if h == "h1" else 0)

    def nvmlDeviceGetPowerUsage(self, h):
        return 512_000

    def nvmlDeviceGetTemperature(self, h, sensor):
        return 61


def test_nvml_source_reads_devices_owners_and_xids():
    nvml = FakeNVML()
    src = exp.NvmlSource(nvml, "gpu-host", lambda: {"GPU-h1": ("user-alice", "job-0", "pytorch")})
    g0, g1 = src.gpus()
    assert nvml.inited and (g0.uuid, g0.owner, g0.util, g0.xid, g0.simulated) == ("GPU-h0", ("", "", ""), 0, 0, False)
    assert (g1.owner, g1.util, g1.fb_used, g1.fb_free, g1.power, g1.temp, g1.xid) == (
        ("user-alice", "job-0", "pytorch"), 93, 2048, 79872, 512.0, 61, 79)
    assert "simulated" not in g1.labels() and src.gpus()[1].xid == 79  # the last XID stays


# --- rules and rendering

def test_shipped_rules_parse_and_name_the_five_alerts():
    opts = CATALOG["monitoring"].Opts(gpu_idle_minutes=7, pvc_full_percent=85)
    doc = yaml.safe_load(hooks._rules_text(opts))
    rules = {r["alert"]: r for g in doc["groups"] for r in g["rules"]}
    assert {"GPUXidError", "GPUAllocatedIdle", "NodeNotReady", "PodCrashLooping", "PVCNearlyFull"} <= set(rules)
    assert "[7m]" in rules["GPUAllocatedIdle"]["expr"] and "> 85" in rules["PVCNearlyFull"]["expr"]
    assert "{{ $labels.Hostname }}" in rules["GPUXidError"]["annotations"]["summary"]  # Prometheus' templates untouched
    assert "$" not in "".join(r["expr"] for r in rules.values())


def test_extra_rules_join_and_a_bad_file_is_one_line_with_its_line(tmp_path):
    good = tmp_path / "mine.yml"
    good.write_text("groups:\n  - name: mine\n    rules:\n      - {alert: Mine, expr: up == 0}\n")
    text = hooks._rules_text(CATALOG["monitoring"].Opts(extra_rules=str(good)))
    assert "Mine" in text and "GPUXidError" in text
    bad = tmp_path / "bad.yml"
    bad.write_text("groups:\n  - name: x\n    rules:\n      - alert: [unclosed\n")
    with pytest.raises(UserError) as e:
        hooks._rules_text(CATALOG["monitoring"].Opts(extra_rules=str(bad)))
    line = e.value.line()
    assert line.startswith(f"{bad}:5: rules do not parse") and line.count("— fix:") == 1 and "\n" not in line
    no_expr = tmp_path / "noexpr.yml"
    no_expr.write_text("groups: [{name: x, rules: [{alert: A}]}]\n")
    with pytest.raises(UserError, match="needs `alert` \\(or `record`\\) and `expr`"):
        hooks._rules_text(CATALOG["monitoring"].Opts(extra_rules=str(no_expr)))


def test_rendering_in_cluster_and_on_the_host():
    comp = CATALOG["monitoring"]
    c = comp({"storage_size": "10Gi"})
    objs = {(o["kind"], o["metadata"]["name"]): o for o in c.objects(crds=False)}
    dep = objs[("Deployment", "prometheus")]["spec"]["template"]["spec"]
    assert "--storage.tsdb.retention.size=8192MB" in dep["containers"][0]["args"]
    assert dep["volumes"][1]["persistentVolumeClaim"]["claimName"] == "prometheus"
    assert objs[("PersistentVolumeClaim", "prometheus")]["spec"]["resources"]["requests"]["storage"] == "10Gi"
    assert objs[("Namespace", "monitoring")]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert ("DaemonSet", "node-exporter") in objs and ("DaemonSet", "gpu-exporter-nvml") in objs
    conf = yaml.safe_load(objs[("ConfigMap", "prometheus")]["data"]["prometheus.yml"])
    assert {j["job_name"] for j in conf["scrape_configs"]} == {"prometheus", "gpu-exporter", "node-exporter", "kubelet", "cadvisor", "pods"}
    assert objs[("DaemonSet", "gpu-exporter-nvml")]["spec"]["template"]["spec"]["volumes"][1]["hostPath"]["path"] == "/dev/null"
    assert "--gpus" in (a := objs[("Deployment", "gpu-exporter")]["spec"]["template"]["spec"]["containers"][0]["args"]) and a[1] == "none"
    h = comp({}, Runtime(pods_run=False))
    now, _, hosted = h._split(h.objects(None, None, {"web": 4100, "exporter": 4101}, crds=False))
    assert [d["metadata"]["name"] for d in hosted] == ["prometheus", "gpu-exporter"] and h.images() == []
    assert {o["kind"] for o in now} == {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap"}
    conf = yaml.safe_load(next(o for o in now if o["kind"] == "ConfigMap")["data"]["prometheus.yml"])
    assert [j["static_configs"][0]["targets"] for j in conf["scrape_configs"]] == [["127.0.0.1:4100"], ["127.0.0.1:4101"]]
    assert hosted[1]["spec"]["template"]["spec"]["containers"][0]["args"][:2] == ["--gpus", "simulated"]



def _in_cluster(options=None) -> tuple[dict, dict]:
    """(objects by (kind, name), prometheus.yml's jobs by name), rendered for the cluster."""
    objs = {(o["kind"], o["metadata"]["name"]): o for o in CATALOG["monitoring"](options or {}).objects(crds=False)}
    conf = yaml.safe_load(objs[("ConfigMap", "prometheus")]["data"]["prometheus.yml"])
    return objs, {j["job_name"]: j for j in conf["scrape_configs"]}


def test_pods_are_scraped_only_in_the_declared_namespaces_under_limits():
    _, jobs = _in_cluster()
    for job in jobs.values():  # every pod discovery is held to named namespaces; no redirect is followed
        assert job["follow_redirects"] is False, job["job_name"]
        assert all(sd.get("namespaces", {}).get("names") for sd in job.get("kubernetes_sd_configs", []) if sd["role"] == "pod"), job["job_name"]
    pods = jobs["pods"]
    names = pods["kubernetes_sd_configs"][0]["namespaces"]["names"]
    assert "kubeflow" in names and not [n for n in names if n.startswith("user-")]
    assert pods["sample_limit"] and pods["label_limit"] and pods["label_name_length_limit"] and pods["label_value_length_limit"]
    assert pods["target_limit"] and pods["body_size_limit"] and pods["honor_labels"] is False and pods["honor_timestamps"] is False
    assert "pods" not in _in_cluster({"pod_namespaces": []})[1]
    _, mine = _in_cluster({"pod_namespaces": ["user-alice"]})  # an operator's choice, under the same limits
    assert mine["pods"]["kubernetes_sd_configs"][0]["namespaces"]["names"] == ["user-alice"] and mine["pods"]["sample_limit"]


def test_kubelets_get_a_token_that_reads_metrics_only_and_prometheus_cannot_reach_their_other_apis():
    objs, jobs = _in_cluster()
    rules = lambda name: objs[("ClusterRole", name)]["rules"]  # noqa: E731
    assert rules("appliance:monitoring:kubelet-scraper") == [{"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]}]
    prom = rules("appliance:monitoring:prometheus")
    assert all(set(r["verbs"]) <= {"get", "list", "watch"} and "/" not in "".join(r["resources"]) for r in prom), prom
    assert not any("secrets" in r["resources"] or "nonResourceURLs" in r for r in prom)
    secret = objs[("Secret", "kubelet-scraper")]
    assert secret["type"] == "kubernetes.io/service-account-token"
    assert secret["metadata"]["annotations"] == {"kubernetes.io/service-account.name": "kubelet-scraper"}
    assert objs[("ServiceAccount", "kubelet-scraper")]["automountServiceAccountToken"] is False
    pod = objs[("Deployment", "prometheus")]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "prometheus"
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "kubelet-scraper")
    assert next(v for v in pod["volumes"] if v["name"] == "kubelet-scraper")["secret"]["secretName"] == "kubelet-scraper"
    for job in ("kubelet", "cadvisor"):
        assert jobs[job]["authorization"]["credentials_file"] == f"{mount['mountPath']}/token"
    sent_own_token = [j["job_name"] for j in jobs.values() if "serviceaccount/token" in str(j)]
    assert sent_own_token == []  # Prometheus' own token goes to the API server only (discovery)


#: PromQL words that are not series names
PROMQL = {"by", "without", "and", "or", "unless", "offset", "bool", "on", "ignoring", "group_left", "group_right"}


def series_selectors(expr: str) -> list[tuple[str, str]]:
    """(series name, its `{...}` or "") for each series an expression reads (functions, keywords, grouping
    labels and label matchers left out)."""
    braces: list[str] = []
    expr = re.sub(r"\{[^}]*\}", lambda m: braces.append(m[0]) or f"{{{len(braces) - 1}}}", expr)
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)
    out = []
    for m in re.finditer(r"\b[A-Za-z_:][\w:]*\b", expr):
        rest = expr[m.end():].lstrip()
        if m[0] in PROMQL or rest.startswith("(") or expr[:m.start()].endswith("{"):
            continue
        sel = re.match(r"\{(\d+)\}", rest)
        out.append((m[0], braces[int(sel[1])] if sel else ""))
    return out


def test_series_selectors_of_an_expression():
    assert series_selectors('max by (gpu) (a{job="x",pod!=""}[5m]) > 0 and b offset 5m') == [("a", '{job="x",pod!=""}'), ("b", "")]


def test_every_alert_selects_the_job_that_scrapes_its_series():
    doc = yaml.safe_load(hooks._rules_text(CATALOG["monitoring"].Opts()))
    jobs = set(_in_cluster()[1])
    for rule in (r for g in doc["groups"] for r in g["rules"]):
        selectors = series_selectors(rule["expr"])
        assert selectors, rule["alert"]
        for name, sel in selectors:
            job = re.search(r'job="([^"]+)"', sel)
            assert job and job[1] in jobs, f"{rule['alert']}: {name}{sel} selects no job of ours"

# --- the e2e report's plots

def test_svg_line_plot_scales_to_its_box():
    from xml.etree import ElementTree as ET

    from appliance.e2e.plots import svg_lines

    svg = svg_lines("GPU utilization", "%", {"allocated GPUs": [(100.0, 0.0), (110.0, 50.0), (160.0, 100.0)], "all": [(100.0, 25.0)]})
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    (line,) = root.iter(f"{ns}polyline")
    xs, ys = zip(*(map(float, p.split(",")) for p in line.get("points").split()), strict=True)
    assert xs[0] == 56 and xs[-1] == 56 + 560 - 56 - 150 and ys[0] == 24 + 148 and ys[-1] == 24  # t0 left, max on top
    assert len(list(root.iter(f"{ns}circle"))) == 1
    texts = [t.text for t in root.iter(f"{ns}text")]
    assert {"GPU utilization", "allocated GPUs", "all", "60 s", "100"} <= set(texts)
    assert "no samples" in svg_lines("x", "MiB", {}) and "<script" not in svg_lines("<script>", "u", {"<b>": [(1, 1)]})


def test_scenario_plots_query_each_panel_over_the_scenario_and_the_report_embeds_them(tmp_path):
    from appliance.e2e import plots, reports
    from appliance.e2e.runner import ScenarioResult

    asked = []

    class Prom:
        def query_range(self, expr, start, end, step):
            asked.append((start, end, step))
            return [{"metric": {"name": "allocated"}, "values": [[1000, "8"], [1010, "16"]]}]

    svgs = plots.scenario_plots(Prom(), 1000.0, 1600.0)
    assert len(svgs) == len(plots.PANELS) == len(asked) and asked[0] == (995.0, 1605.0, 5.0)
    out = reports.html_report([ScenarioResult("gpu-metrics")], tmp_path / "r.html", plots={"gpu-metrics": svgs})
    assert out.read_text().count("<svg") == 3 and "allocated" in out.read_text()


def test_a_python_image_runs_on_the_host_with_our_python_and_the_checkout_files():
    from appliance.components import kit

    decl = CATALOG["monitoring"].decl.images["gpu-exporter"]
    assert kit._host_program("gpu-exporter", decl) == [sys.executable, str(ROOT / "images" / "gpu-exporter" / "exporter.py")]
    other = decl.python.model_copy(update={"files": {"/x": "images/gpu-exporter/requirements.lock"}})
    assert kit._sig_version(decl) != kit._sig_version(decl.model_copy(update={"python": other}))


def test_exporter_serves_the_last_page_and_says_why_before_the_first():
    class Kube:
        fail = True

        def get(self, path):
            if self.fail:
                raise OSError("connection refused")
            return {"items": [node("dgx-0")] if path.endswith("nodes") else [pod("p", "dgx-0", 2)]}

    kube = Kube()
    e = exp.Exporter(exp.SimulatedSource(kube), kube, state=True)
    e.update()
    with pytest.raises(RuntimeError, match="connection refused"):
        e.collect()
    kube.fail = False
    e.update()
    kube.fail = True
    e.update()  # the API server away again: the last lists stay
    text = e.collect()
    assert text.count('DCGM_FI_DEV_GPU_UTIL{gpu=') == 8 and text.count('pod="p"') >= 2 and "kube_node_status_condition" in text
    nvml = exp.Exporter(exp.NvmlSource(FakeNVML(), "gpu-host"), None, state=False)
    nvml.update()
    assert nvml.collect().count("DCGM_FI_DEV_XID_ERRORS{") == 2 and "kube_" not in nvml.collect()


@pytest.mark.parametrize("style", ["data", "read"])
def test_prometheus_through_the_api_server_proxy_with_the_clients_token(style):
    from appliance.components import prom

    calls = []

    class Resp:
        data = b'{"status": "success", "data": {"alerts": [{"state": "firing"}]}}' if style == "data" else None

        def read(self):
            return b'{"status": "success", "data": {"alerts": []}}'

    api = types.SimpleNamespace(
        configuration=types.SimpleNamespace(host="https://10.0.0.1:6443",
                                            auth_settings=lambda: {"BearerToken": {"key": "authorization", "value": "Bearer t0k"}}),
        rest_client=types.SimpleNamespace(request=lambda method, url, headers, _request_timeout: calls.append((method, url, headers)) or Resp()))
    p = prom.Prometheus.__new__(prom.Prometheus)
    p.kube, p.namespace, p.url = types.SimpleNamespace(api=api), "monitoring", ""
    assert p.alerts() == ([{"state": "firing"}] if style == "data" else [])
    assert calls == [("GET", "https://10.0.0.1:6443/api/v1/namespaces/monitoring/services/prometheus:web/proxy/api/v1/alerts?",
                      {"Accept": "application/json", "authorization": "Bearer t0k"})]


def test_a_bad_rules_file_stops_the_profile_before_anything_runs(tmp_path):
    from appliance import profiles

    bad = tmp_path / "bad.yml"
    bad.write_text("groups:\n  - name: x\n    rules: [\n")
    with pytest.raises(UserError) as e:
        profiles.load("laptop", [f"components.monitoring.options.extra_rules={bad}"])
    assert e.value.line().startswith(f"{bad}:4: rules do not parse")
    assert profiles.load("laptop", [f"components.monitoring.options.extra_rules={bad}", "components.monitoring.enabled=false"])


def test_pods_on_the_simulators_nodes_get_cadvisor_series_at_their_requests():
    fake, real = node("dgx-0", annotations={"kwok.x-k8s.io/node": "fake"}), node("kind-worker")
    running = pod("p", "dgx-0", 0, containers=[{"name": "c", "resources": {"requests": {"memory": "64Gi", "cpu": "500m"}}}])
    running["status"]["startTime"] = "2026-01-01T00:00:00Z"
    t = exp._parse_time("2026-01-01T00:01:40Z")
    fam = exp.simulated_usage([fake, real], [running, pod("q", "kind-worker", 0), pod("done", "dgx-0", 0, phase="Succeeded")], t)
    (lb, mem), = fam["container_memory_working_set_bytes"][2]
    assert lb == {"namespace": "user-alice", "pod": "p", "container": "c", "node": "dgx-0", "simulated": "true"} and mem == 64 * 2**30
    assert fam["container_cpu_usage_seconds_total"][2] == [(lb, 50.0)]  # half a core for 100 s
    assert [exp.quantity(q) for q in ("2", "250m", "1k", "1Ki", "1.5Gi")] == [2, 0.25, 1000, 1024, 1.5 * 2**30]
