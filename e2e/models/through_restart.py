"""Scenario helper (as the admin): KServe's controller rolled as an upgrade rolls it (a new pod template),
while predict requests go to an InferenceService's predictor without pause; every request must be answered
right, and the predictor's pods must be the same ones (a controller restart restarts no server).

    python3 ../models/through_restart.py NAMESPACE ISVC [--after 10]"""

from __future__ import annotations

import sys
import threading
import time

from kubernetes import client, config

from appliance.e2e.lib import post  # the runner's Python: the appliance is importable

CONTROLLER = ("kserve", "kserve-controller-manager", "control-plane=kserve-controller-manager")


def main(argv: list[str]) -> int:
    ns, isvc = argv[0], argv[1]
    after = float(argv[argv.index("--after") + 1]) if "--after" in argv else 10.0
    config.load_kube_config()
    api = client.Configuration.get_default_copy()
    core, apps = client.CoreV1Api(), client.AppsV1Api()
    servers = lambda: sorted(p.metadata.uid for p in core.list_namespaced_pod(ns, label_selector=f"serving.kserve.io/inferenceservice={isvc}").items)  # noqa: E731
    before = servers()
    counts, failures, stop = {"ok": 0}, [], threading.Event()

    def ask() -> None:
        while not stop.is_set():
            try:
                got = post(api, ns, f"{isvc}-predictor:80", f"/v1/models/{isvc}:predict", {"instances": [[1.0, 0.0, 0.0, 0.0]]})
                assert abs(got["predictions"][0] - 2.25) < 0.02, got
                counts["ok"] += 1
            except Exception as e:  # noqa: BLE001 — every failure counts, whatever it is
                failures.append(f"{time.strftime('%H:%M:%S')} {type(e).__name__}: {str(e)[:160]}")
            time.sleep(0.02)

    sender = threading.Thread(target=ask, daemon=True)
    sender.start()
    time.sleep(2)
    cns, name, sel = CONTROLLER
    old = {p.metadata.uid for p in core.list_namespaced_pod(cns, label_selector=sel).items}
    apps.patch_namespaced_deployment(name, cns, {"spec": {"template": {"metadata": {"annotations": {"appliance.dev/rolled-at": str(time.time())}}}}})
    deadline = time.monotonic() + 180
    while True:
        pods = core.list_namespaced_pod(cns, label_selector=sel).items
        ready = [p for p in pods if p.metadata.uid not in old and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])]
        if ready and not any(p.metadata.uid in old for p in pods):
            break
        assert time.monotonic() < deadline, "KServe's controller not rolled in 180 s"
        time.sleep(1)
    print(f"controller rolled: new pod {ready[0].metadata.name}")
    time.sleep(after)
    stop.set()
    sender.join(30)
    assert not failures, f"{len(failures)} of {counts['ok'] + len(failures)} requests failed: {failures[:5]}"
    assert servers() == before, f"the predictor's pods changed: {before} -> {servers()}"
    print(f"{counts['ok']} requests answered, 0 failed, through the controller's roll; predictor pods unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
