"""Supervisor for a controller run as a host process against a cluster's kubeconfig.

    python -m appliance.runtime.supervisor --kubeconfig K [--secret NS/NAME --cert-dir D]
        [--route HOST:PORT=LOCALPORT ...] [--unprivileged] [--bind SRC:DST ...] -- BINARY ARGS...

- runs the controller as its child and restarts it when it exits (backoff 1 s .. 30 s);
- copies a Secret's keys (e.g. the webhook serving certificate its cert rotator writes) into `--cert-dir`,
  standing in for the Secret volume a Pod would have;
- `--route`: Services the child dials by name (`name.namespace:port`, fnmatch patterns) reach these loopback
  ports through a CONNECT proxy given to the child as HTTPS_PROXY (appliance.runtime.connect_proxy);
- `--unprivileged`: as root, the child runs as nobody in a user namespace; `--bind`: the child sees SRC at
  DST, a path fixed in its code (a mount namespace of its own) — both by appliance.runtime.userns;
- exits (stopping the child) when the kubeconfig file disappears, i.e. the cluster was deleted, so a
  host controller never outlives its cluster;
- SIGTERM/SIGINT stop the child and exit.
"""

from __future__ import annotations

import argparse
import base64
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from appliance.runtime import userns
from appliance.runtime.process import STARTED
from appliance.util.files import atomic_write


def _sync_secret(kubeconfig: str, secret: str, cert_dir: Path, last: dict) -> None:
    try:
        from kubernetes import client

        from appliance.kube import api_client

        ns, _, name = secret.partition("/")
        if "api" not in last:
            last["api"] = client.CoreV1Api(api_client(kubeconfig))
        data = last["api"].read_namespaced_secret(name, ns).data or {}
    except Exception as e:  # noqa: BLE001 - the API may be briefly away; try again next round
        last.pop("api", None)
        print(f"supervisor: reading secret {secret}: {str(e).splitlines()[0][:200]}", flush=True)
        return
    if data and data != last.get("data"):
        for k, v in data.items():
            atomic_write(cert_dir / k, base64.b64decode(v), mode=0o600)
        last["data"] = data
        print(f"supervisor: secret {secret} written to {cert_dir}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--secret", default="")
    ap.add_argument("--cert-dir", default="")
    ap.add_argument("--route", action="append", default=[], help="HOST:PORT pattern=loopback port")
    ap.add_argument("--unprivileged", action="store_true")
    ap.add_argument("--bind", action="append", default=[], help="SRC:DST")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args(argv)
    cmd = userns.program(ap, a.cmd)
    stopping = False
    child: subprocess.Popen | None = None

    def on_signal(signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    backoff, started, cert_state = 1.0, 0.0, {}
    env = {**os.environ, "KUBECONFIG": a.kubeconfig}
    if a.route:
        from appliance.runtime import connect_proxy

        routes = [(pattern, int(port)) for pattern, _, port in (r.rpartition("=") for r in a.route)]
        proxy = f"http://127.0.0.1:{connect_proxy.serve(routes)}"
        env.update(HTTPS_PROXY=proxy, https_proxy=proxy, NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
        print(f"supervisor: services {', '.join(a.route)} through {proxy}", flush=True)
    if (a.unprivileged and os.geteuid() == 0) or a.bind:
        ns = ["--as-nobody"] if a.unprivileged else []
        cmd = [sys.executable, "-m", "appliance.runtime.userns", *ns, *(f"--bind={b}" for b in a.bind), "--", *cmd]
    while not stopping:
        if not Path(a.kubeconfig).exists():
            print("supervisor: kubeconfig is gone (cluster deleted); exiting", flush=True)
            break
        if a.secret and a.cert_dir:
            _sync_secret(a.kubeconfig, a.secret, Path(a.cert_dir), cert_state)
        if child is None or child.poll() is not None:
            if child is not None:
                print(f"supervisor: controller exited ({child.returncode}); restart in {backoff:.0f}s", flush=True)
                time.sleep(backoff)
                backoff = 1.0 if time.monotonic() - started > 60 else min(backoff * 2, 30.0)
                if stopping:
                    break
            started = time.monotonic()
            child = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL)
            print(f"{STARTED} {child.pid}: {' '.join(cmd[:1])}", flush=True)
        time.sleep(1.0)
    if child is not None and child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
