"""Ask Katib's db-manager for a trial's observation logs from a pod in a namespace, as any user could:
the pod carries Katib's trial label (so the network policy lets it through) and speaks the DBManager gRPC
API with the standard library alone (h2c, hand-made protobuf). Each method prints one line,
`METHOD TRIAL: answered (N bytes)` (a reply message came), `refused` (a gRPC error) or `unreachable`; `run`
ends with `every call refused` or `not every call refused`.

    python3 dbm_probe.py run NAMESPACE TRIAL [get|delete|report ...] [--katib NS]   # on the host: a pod there, its output
    python3 dbm_probe.py call HOST:PORT TRIAL [get|delete|report ...]               # in the pod
"""

import socket
import struct
import sys
import time
from pathlib import Path


def _frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def _field(num: int, data: bytes) -> bytes:
    """A length-delimited protobuf field (values under 128 bytes)."""
    return bytes([num << 3 | 2, len(data)]) + data


def _header(name: bytes, value: bytes) -> bytes:
    """HPACK: a literal field, not indexed, new name, no Huffman coding (strings under 128 bytes)."""
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def call(addr: str, method: bytes, message: bytes) -> int | None:
    """One unary call; the reply's size in bytes, or None when the server answered with an error only."""
    host, port = addr.rsplit(":", 1)
    hdrs = b"".join(_header(k, v) for k, v in [
        (b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/api.v1.beta1.DBManager/" + method),
        (b":authority", addr.encode()), (b"content-type", b"application/grpc"), (b"te", b"trailers")])
    body = b"\x00" + struct.pack(">I", len(message)) + message
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _frame(4, 0, 0) + _frame(1, 4, 1, hdrs) + _frame(0, 1, 1, body))
        buf, got = b"", None
        while True:
            while len(buf) < 9 or len(buf) < 9 + int.from_bytes(buf[:3], "big"):
                chunk = s.recv(65536)
                if not chunk:
                    return got
                buf += chunk
            size = int.from_bytes(buf[:3], "big")
            kind, flags, stream = buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
            buf = buf[9 + size:]
            if kind == 4 and not flags & 1:
                s.sendall(_frame(4, 1, 0))  # acknowledge the server's settings
            elif kind == 0 and stream == 1:
                got = (got or 0) + size
            if kind == 7 or (stream == 1 and (kind == 3 or (kind in (0, 1) and flags & 1))):  # GOAWAY, reset, end of stream
                return got


def requests(trial: str) -> dict[str, tuple[bytes, bytes]]:
    name, now = trial.encode(), time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()).encode()
    metric = _field(1, b"loss") + _field(2, b"0")
    return {"get": (b"GetObservationLog", _field(1, name)),
            "delete": (b"DeleteObservationLog", _field(1, name)),
            "report": (b"ReportObservationLog", _field(1, name) + _field(2, _field(1, _field(1, now) + _field(2, metric))))}


def probe(addr: str, trial: str, methods: list[str]) -> None:
    for m in methods or ["get"]:
        try:
            got = call(addr, *requests(trial)[m])
            print(f"{m} {trial}: {'refused' if got is None else f'answered ({got} bytes)'}", flush=True)
        except OSError as e:
            print(f"{m} {trial}: unreachable ({e})", flush=True)


def run(namespace: str, trial: str, methods: list[str], katib: str = "katib", timeout: float = 180, kubeconfig: str | None = None) -> str:
    """In `namespace` (your kubeconfig's credentials, or `kubeconfig`'s): this file in a ConfigMap, a pod labelled
    as trial `trial` calling db-manager with it; returns the pod's output (both deleted after)."""
    import os

    from kubernetes import client, config

    config.load_kube_config(config_file=kubeconfig or os.environ.get("KUBECONFIG"))
    core = client.CoreV1Api()
    name = f"dbm-probe-{int(time.time())}"
    core.create_namespaced_config_map(namespace, {"metadata": {"name": name}, "data": {"dbm_probe.py": Path(__file__).read_text()}})
    try:
        core.create_namespaced_pod(namespace, {"metadata": {"name": name, "labels": {"katib.kubeflow.org/trial": trial}}, "spec": {
            "restartPolicy": "Never", "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
            "volumes": [{"name": "probe", "configMap": {"name": name}}],
            "containers": [{"name": "probe", "image": "appliance.local/trainer:stub", "imagePullPolicy": "IfNotPresent",
                            "command": ["python3", "/probe/dbm_probe.py", "call", f"katib-db-manager.{katib}.svc.cluster.local:6789", trial, *methods],
                            "volumeMounts": [{"name": "probe", "mountPath": "/probe"}],
                            "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
                            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}]}})
        deadline = time.monotonic() + timeout
        while core.read_namespaced_pod(name, namespace).status.phase not in ("Succeeded", "Failed"):
            if time.monotonic() > deadline:
                return f"the probe pod did not finish in {timeout:.0f} s"
            time.sleep(2)
        return core.read_namespaced_pod_log(name, namespace)
    finally:
        core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
        core.delete_namespaced_config_map(name, namespace)


def main(argv: list[str]) -> int:
    katib = "katib"
    if "--katib" in argv:
        i = argv.index("--katib")
        katib, argv = argv[i + 1], argv[:i] + argv[i + 2:]
    if len(argv) < 3 or argv[0] not in ("run", "call"):
        print("usage: dbm_probe.py run NAMESPACE TRIAL [METHOD ...] [--katib NS] | call HOST:PORT TRIAL [METHOD ...]", file=sys.stderr)
        return 2
    mode, where, trial, *methods = argv
    if mode == "call":
        probe(where, trial, methods)
    else:
        out = run(where, trial, methods, katib)
        lines = out.splitlines()
        print(out + ("every call refused" if lines and all(x.endswith(": refused") for x in lines) else "not every call refused"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
