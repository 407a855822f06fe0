"""Prometheus' HTTP API of a cluster's monitoring component: the host process's loopback port (the simulator)
or the API server's service proxy (in the cluster). Used by `status`, the e2e report and scenario scripts:

    python -m appliance.components.prom 'DCGM_FI_DEV_GPU_UTIL'     # KUBECONFIG: the cluster
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.parse
import urllib.request

from appliance.runtime.process import HostProcess, controllers_dir


class PrometheusError(RuntimeError):
    pass


def _proxy_get(api, path: str) -> bytes:
    """GET a path of the API server with the client's credentials (its REST client: the same across the
    kubernetes package's generations, whose ApiClient.call_api differ)."""
    cfg = api.configuration
    headers = {"Accept": "application/json"}
    if (auth := cfg.auth_settings().get("BearerToken")) and auth.get("value"):
        headers[auth["key"]] = auth["value"]
    r = api.rest_client.request("GET", cfg.host + path, headers=headers, _request_timeout=10)
    return r.data if getattr(r, "data", None) is not None else r.read()


class Prometheus:
    def __init__(self, kube, namespace: str = "monitoring"):
        self.kube, self.namespace = kube, namespace
        rec = HostProcess(controllers_dir(kube.kubeconfig), "prometheus").load()
        self.url = f"http://127.0.0.1:{rec.extra['ports']['web']}" if rec and rec.alive() else ""

    def get(self, path: str, **params) -> dict | list:
        """GET /api/v1/<path> → its `data`."""
        query = urllib.parse.urlencode(params)
        try:
            if self.url:
                with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as r:
                    body = json.load(r)
            else:
                proxy = f"/api/v1/namespaces/{self.namespace}/services/prometheus:web/proxy/api/v1/{path}"
                body = json.loads(_proxy_get(self.kube.api, f"{proxy}?{query}"))
        except (OSError, urllib.error.URLError, ValueError) as e:
            raise PrometheusError(f"Prometheus not reachable ({str(e).splitlines()[0][:120]})") from None
        except Exception as e:  # noqa: BLE001 - the client's ApiException and its kin: the same one line
            raise PrometheusError(f"Prometheus not reachable ({str(e).splitlines()[0][:120]})") from None
        if body.get("status") != "success":
            raise PrometheusError(f"{path}: {body.get('error', body)}")
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        return self.get("query", query=expr)["result"]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict]:
        return self.get("query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=f"{step:g}")["result"]

    def alerts(self) -> list[dict]:
        return self.get("alerts")["alerts"]


def main(argv: list[str]) -> int:
    import os

    from appliance.kube import Kube

    if len(argv) != 1 or "KUBECONFIG" not in os.environ:
        print("usage: KUBECONFIG=FILE python -m appliance.components.prom EXPR", file=sys.stderr)
        return 2
    try:
        print(json.dumps(Prometheus(Kube(os.environ["KUBECONFIG"])).query(argv[0]), indent=1))
    except PrometheusError as e:
        print(e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
