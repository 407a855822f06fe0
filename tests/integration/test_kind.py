"""A real kind cluster from the locally built node image: 1 control plane + 1 worker,
a server pod behind a Service reached by name from a pod on the other node, then delete."""

from __future__ import annotations

import subprocess
import textwrap

import pytest

from appliance.providers.kind import KindProvider
from appliance.schema import ClusterSpec
from tests.integration.clusters import require_kind

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.docker]

NAME = "appliance-it"


@pytest.fixture(scope="module")
def docker_ok():
    require_kind()


def _manifest(server_image: str, client_image: str, cp: str, worker: str) -> str:
    return textwrap.dedent(f"""
        apiVersion: v1
        kind: Pod
        metadata: {{name: web, labels: {{app: web}}}}
        spec:
          nodeName: {worker}
          containers:
          - name: etcd
            image: {server_image}
            imagePullPolicy: Never
            command: [etcd, --data-dir=/tmp/etcd, --listen-client-urls=http://0.0.0.0:2379, --advertise-client-urls=http://web:2379]
        ---
        apiVersion: v1
        kind: Service
        metadata: {{name: web}}
        spec:
          selector: {{app: web}}
          ports: [{{port: 80, targetPort: 2379}}]
        ---
        apiVersion: v1
        kind: Pod
        metadata: {{name: client}}
        spec:
          nodeName: {cp}
          restartPolicy: Never
          tolerations: [{{operator: Exists}}]
          containers:
          - name: c
            image: {client_image}
            imagePullPolicy: Never
            command:
            - bash
            - -c
            - |
              for i in $(seq 1 60); do
                if exec 3<>/dev/tcp/web.default.svc.cluster.local/80; then
                  reply=$(printf 'GET /version HTTP/1.0\\r\\nHost: web\\r\\n\\r\\n' >&3; cat <&3)
                  exec 3<&-
                  case $reply in *etcdserver*) echo "$reply"; exit 0;; esac
                  echo "not etcd yet: $reply"
                fi
                sleep 1
              done
              exit 1
        """)


def _pvc_manifest(image: str, node: str) -> str:
    return textwrap.dedent(f"""
        apiVersion: v1
        kind: PersistentVolumeClaim
        metadata: {{name: data}}
        spec:
          accessModes: [ReadWriteOnce]
          resources: {{requests: {{storage: 1Gi}}}}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {{name: writer}}
        spec:
          nodeSelector: {{kubernetes.io/hostname: {node}}}
          restartPolicy: Never
          containers:
          - name: w
            image: {image}
            imagePullPolicy: Never
            command: [bash, -c, "echo hello > /data/x && cat /data/x"]
            volumeMounts: [{{name: d, mountPath: /data}}]
          volumes: [{{name: d, persistentVolumeClaim: {{claimName: data}}}}]
        """)


def test_kind_cluster_lifecycle(docker_ok, tmp_path):
    from appliance.images.node import build_node_image
    from appliance.images.tools import ensure_tools

    img = build_node_image()
    kubectl = ensure_tools(["kubectl"])["kubectl"]
    spec = ClusterSpec(name=NAME, control_planes=1, workers=1, kind={"image": img.tag})
    p = KindProvider(spec, tmp_path / "state", report=print)
    p.delete()  # leftovers of an aborted run
    try:
        info = p.create()
        assert len(info.nodes) == 2 and all(n["ready"] for n in info.nodes)

        def k(*args, **kw):
            return subprocess.run(
                [str(kubectl), "--kubeconfig", str(info.kubeconfig), *args], capture_output=True, text=True, timeout=180, **kw
            )

        cp, worker = f"{NAME}-control-plane", f"{NAME}-worker"
        r = k("apply", "-f", "-", input=_manifest(img.images["etcd"], img.images["appliance-cni"], cp, worker))
        assert r.returncode == 0, r.stderr
        r = k("wait", "--for=condition=Ready", "pod/web", "--timeout=120s")
        assert r.returncode == 0, r.stderr + k("describe", "pod/web").stdout
        r = k("wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/client", "--timeout=120s")
        logs = k("logs", "client").stdout
        assert r.returncode == 0, r.stderr + logs + k("describe", "pod/client").stdout
        assert "etcdserver" in logs, logs

        # storage: the default StorageClass (local-path-provisioner) binds a claim on first use
        if "local-path-provisioner" in img.images:
            r = k("apply", "-f", "-", input=_pvc_manifest(img.images["kube-proxy"], worker))
            assert r.returncode == 0, r.stderr
            r = k("wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/writer", "--timeout=180s")
            assert r.returncode == 0, r.stderr + k("describe", "pod/writer").stdout
            assert k("logs", "writer").stdout.strip() == "hello"

        st = p.status()
        assert st["exists"] and len(st["nodes"]) == 2
        assert {x["name"] for x in st["containers"]} == {cp, worker}
        assert p.ready()
    except Exception:
        p.collect_logs(tmp_path / "logs")
        raise
    finally:
        p.delete()
    left = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"label=io.x-k8s.kind.cluster={NAME}", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
    ).stdout.split()
    assert left == []
    assert not p.ready()
