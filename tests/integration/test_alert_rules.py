"""Every shipped alert rule, fired and held back, by Prometheus' own rule tester (`promtool test rules`, built
from the same module and version as the Prometheus the component runs): series written as the exporters and
the kubelet export them; each rule fires on its condition (after its `for:`) with its labels and summary, stays
quiet just under it, and ignores the same series from a tenant's scraped pod (job `pods`)."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from appliance.components import CATALOG
from appliance.components.monitoring import rules_text
from appliance.images.builds import go_binary

pytestmark = [pytest.mark.integration]

XID = "DCGM_FI_DEV_XID_ERRORS{job=\"%s\",Hostname=\"dgx-0\",gpu=\"3\",UUID=\"GPU-3\",modelName=\"H100\",namespace=\"user-alice\",pod=\"train\"}"
UTIL = "DCGM_FI_DEV_GPU_UTIL{job=\"%s\",Hostname=\"dgx-0\",gpu=\"1\",namespace=\"user-bob\",pod=\"%s\"}"
READY = "kube_node_status_condition{job=\"%s\",node=\"dgx-1\",condition=\"Ready\",status=\"true\"}"
WAITING = "kube_pod_container_status_waiting_reason{job=\"%s\",namespace=\"user-alice\",pod=\"crasher\",container=\"app\",reason=\"CrashLoopBackOff\"}"
USED = "kubelet_volume_stats_used_bytes{job=\"%s\",namespace=\"user-alice\",persistentvolumeclaim=\"home-alice\"}"
CAP = "kubelet_volume_stats_capacity_bytes{job=\"%s\",namespace=\"user-alice\",persistentvolumeclaim=\"home-alice\"}"
TSDB = "prometheus_tsdb_storage_blocks_bytes{job=\"%s\"}"
LIMIT = "prometheus_tsdb_retention_limit_bytes{job=\"%s\"}"


def _case(series: list[tuple[str, str]], at: str, alert: str, fired: list[dict]) -> dict:
    return {"interval": "1m", "input_series": [{"series": s, "values": v} for s, v in series],
            "alert_rule_test": [{"eval_time": at, "alertname": alert, "exp_alerts": fired}]}


def _fired(labels: dict, summary: str) -> dict:
    return {"exp_labels": labels, "exp_annotations": {"summary": summary}}


def cases(idle: int, full: int) -> list[dict]:
    """(the options' gpu_idle_minutes, pvc_full_percent) → promtool test groups: each rule fires, and does not."""
    xid = {"severity": "critical", "Hostname": "dgx-0", "gpu": "3", "UUID": "GPU-3", "modelName": "H100",
           "namespace": "user-alice", "pod": "train"}
    idle_labels = {"severity": "warning", "job": "gpu-exporter", "Hostname": "dgx-0", "gpu": "1", "namespace": "user-bob", "pod": "held"}
    vol = {"severity": "warning", "job": "kubelet", "namespace": "user-alice", "persistentvolumeclaim": "home-alice"}
    flat = f"0x{idle + 10}"
    return [
        _case([(XID % "gpu-exporter", "0 0 79 79")], "3m", "GPUXidError", [_fired(xid, "GPU 3 on dgx-0 reports XID 79")]),
        _case([(XID % "gpu-exporter", "0x5")], "3m", "GPUXidError", []),
        _case([(XID % "pods", "79x5")], "3m", "GPUXidError", []),  # a tenant's pod exporting the name
        _case([(UTIL % ("gpu-exporter", "held"), flat)], f"{idle + 5}m", "GPUAllocatedIdle",
              [_fired(idle_labels, f"GPU 1 on dgx-0 held by user-bob/held idle for {idle} minutes")]),
        _case([(UTIL % ("gpu-exporter", "held"), f"0x{idle - 2} 5 0x12")], f"{idle + 5}m", "GPUAllocatedIdle", []),  # used within the window
        _case([(UTIL % ("gpu-exporter", ""), flat)], f"{idle + 5}m", "GPUAllocatedIdle", []),  # no pod holds it
        _case([(UTIL % ("pods", "held"), flat)], f"{idle + 5}m", "GPUAllocatedIdle", []),
        _case([(READY % "gpu-exporter", "1 0x5")], "4m", "NodeNotReady",
              [_fired({"severity": "critical", "job": "gpu-exporter", "node": "dgx-1", "condition": "Ready", "status": "true"}, "node dgx-1 is not Ready")]),
        _case([(READY % "gpu-exporter", "1 1 1 0")], "3m", "NodeNotReady", []),  # not Ready for under its 1m
        _case([(READY % "pods", "0x5")], "4m", "NodeNotReady", []),
        _case([(WAITING % "gpu-exporter", "1x5")], "3m", "PodCrashLooping",
              [_fired({"severity": "warning", "job": "gpu-exporter", "namespace": "user-alice", "pod": "crasher", "container": "app",
                       "reason": "CrashLoopBackOff"}, "container app of user-alice/crasher is crash-looping")]),
        _case([(WAITING % "gpu-exporter", "0x5")], "3m", "PodCrashLooping", []),
        _case([(WAITING % "pods", "1x5")], "3m", "PodCrashLooping", []),
        _case([(USED % "kubelet", f"{full + 5}x10"), (CAP % "kubelet", "100x10")], "8m", "PVCNearlyFull",
              [_fired(vol, f"volume user-alice/home-alice is {full + 5} % full")]),
        _case([(USED % "kubelet", f"{full - 1}x10"), (CAP % "kubelet", "100x10")], "8m", "PVCNearlyFull", []),
        _case([(USED % "pods", "100x10"), (CAP % "pods", "100x10")], "8m", "PVCNearlyFull", []),
        _case([(TSDB % "prometheus", f"{full + 5}x10"), (LIMIT % "prometheus", "100x10")], "8m", "PrometheusStorageNearlyFull",
              [_fired({"severity": "warning", "job": "prometheus"},
                      f"Prometheus' storage is {full + 5} % of its size limit (the oldest samples are being dropped)")]),
        _case([(TSDB % "prometheus", "500x10"), (LIMIT % "prometheus", "0x10")], "8m", "PrometheusStorageNearlyFull", []),  # no limit set
        _case([(TSDB % "pods", "100x10"), (LIMIT % "pods", "100x10")], "8m", "PrometheusStorageNearlyFull", []),
    ]


@pytest.fixture(scope="module")
def promtool():
    """promtool of the Prometheus module the monitoring component builds (cached like its other Go builds)."""
    go = next(i for i in CATALOG["monitoring"]().decl.images.values() if i.go and i.go.package == "cmd/prometheus").go
    return go_binary(go.module, go.version, "cmd/promtool", "promtool", tags=go.tags, env=go.env)


def test_every_shipped_rule_fires_on_its_condition_and_not_under_it_or_from_a_tenants_pod(promtool, tmp_path):
    opts = CATALOG["monitoring"].Opts()
    text = rules_text(opts)
    shipped = {r["alert"] for g in yaml.safe_load(text)["groups"] for r in g["rules"]}
    tests = cases(opts.gpu_idle_minutes, opts.pvc_full_percent)
    assert {t["alert_rule_test"][0]["alertname"] for t in tests} == shipped  # a new rule needs its cases here
    (tmp_path / "alerts.yml").write_text(text)
    (tmp_path / "tests.yml").write_text(yaml.safe_dump({"rule_files": ["alerts.yml"], "evaluation_interval": "1m", "tests": tests}))
    out = subprocess.run([str(promtool), "test", "rules", "tests.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_broken_case_is_caught(promtool, tmp_path):
    """Control: promtool fails when an expected alert does not fire (the test above can fail)."""
    (tmp_path / "alerts.yml").write_text(rules_text(CATALOG["monitoring"].Opts()))
    wrong = _case([(XID % "gpu-exporter", "0x5")], "3m", "GPUXidError", [_fired({"severity": "critical"}, "x")])
    (tmp_path / "tests.yml").write_text(yaml.safe_dump({"rule_files": ["alerts.yml"], "evaluation_interval": "1m", "tests": [wrong]}))
    out = subprocess.run([str(promtool), "test", "rules", "tests.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "GPUXidError" in out.stdout + out.stderr
