"""Scenario helper: send v1 and v2 predict requests to an InferenceService's predictor Service through
the API server's service proxy (no port-forward, no ingress) and check the answers against the stub
model's true weights (y = 2·x0 - x1 + 0.5·x2 + 3·x3 + 0.25).

    python3 ../models/predict.py NAMESPACE ISVC [--port 80]"""

from __future__ import annotations

import json
import sys

from kubernetes import client, config

TRUE_W, TRUE_B = [2.0, -1.0, 0.5, 3.0], 0.25
INSTANCES = [[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [0.5, -2.0, 4.0, 1.0]]


def expected(x):
    return sum(a * b for a, b in zip(TRUE_W, x, strict=True)) + TRUE_B


def post(cfg, ns: str, svc: str, path: str, body: dict):
    """POST JSON through the API server's service proxy with the kubeconfig's credentials (plain urllib:
    independent of the kubernetes client's generated-API version)."""
    import ssl
    import urllib.request

    ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert) if cfg.verify_ssl else ssl._create_unverified_context()
    if cfg.cert_file:
        ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    token = (cfg.api_key or {}).get("authorization") or (cfg.api_key or {}).get("BearerToken")
    if token:
        headers["Authorization"] = token if token.lower().startswith("bearer ") else f"Bearer {token}"
    req = urllib.request.Request(f"{cfg.host}/api/v1/namespaces/{ns}/services/{svc}/proxy{path}",
                                 data=json.dumps(body).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
        return json.loads(r.read())


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
