"""Scenario helper: send v1 and v2 predict requests to an InferenceService's predictor Service through
the API server's service proxy (no port-forward, no ingress) and check the answers against the stub
model's true weights (y = 2·x0 - x1 + 0.5·x2 + 3·x3 + 0.25).

    python3 ../models/predict.py NAMESPACE ISVC [--port 80]"""

from __future__ import annotations

import sys

from kubernetes import client, config

from appliance.e2e.lib import post  # the runner's Python: the appliance is importable

TRUE_W, TRUE_B = [2.0, -1.0, 0.5, 3.0], 0.25
INSTANCES = [[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [0.5, -2.0, 4.0, 1.0]]


def expected(x):
    return sum(a * b for a, b in zip(TRUE_W, x, strict=True)) + TRUE_B


def main(argv: list[str]) -> int:
    ns, isvc = argv[0], argv[1]
    port = argv[argv.index("--port") + 1] if "--port" in argv else "80"
    config.load_kube_config()
    api = client.Configuration.get_default_copy()
    svc = f"{isvc}-predictor:{port}"
    v1 = post(api, ns, svc, f"/v1/models/{isvc}:predict", {"instances": INSTANCES})
    got1 = v1["predictions"]
    v2 = post(api, ns, svc, f"/v2/models/{isvc}/infer",
              {"inputs": [{"name": "x", "shape": [len(INSTANCES), 4], "datatype": "FP64", "data": [v for r in INSTANCES for v in r]}]})
    got2 = v2["outputs"][0]["data"]
    want = [expected(x) for x in INSTANCES]
    for name, got in (("v1", got1), ("v2", got2)):
        bad = [(g, w) for g, w in zip(got, want, strict=False) if abs(g - w) > 0.02]
        assert len(got) == len(want) and not bad, f"{name}: got {got}, want ≈{want}"
    print(f"v1 predictions {[round(g, 3) for g in got1]}; v2 outputs {[round(g, 3) for g in got2]}; expected ≈{[round(w, 3) for w in want]}")
    print("predictions match")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
