"""A daemonized process's info carries its start time, so `status` can show its uptime."""

import time

import psutil
import pytest

from appliance import procs
from appliance.report import status_text

pytestmark = pytest.mark.integration


def test_info_has_start_time_while_alive(tmp_path):
    p = procs.spawn("sleeper", ["sleep", "30"], tmp_path / "sleeper.log", tmp_path)
    try:
        time.sleep(1.2)
        info = p.info()
        assert info["alive"] and abs(info["create_time"] - psutil.Process(p.pid).create_time()) < 1
        row = next(ln for ln in status_text({"cluster": "c", "provider": "sim", "profile": "x", "ready": True, "kubeconfig": "k",
                                             "components": {}, "provider_status": {"processes": [info]}}).splitlines()
                   if ln.split()[:1] == ["sleeper"])
        assert row.split()[2] == "running" and row.split()[-1].endswith("s") and float(row.split()[-1][:-1]) >= 1
    finally:
        procs.stop(p, grace=2)
    assert p.info()["alive"] is False and p.info()["create_time"] == 0.0
