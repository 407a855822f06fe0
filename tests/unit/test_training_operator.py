"""training-operator component: options, objects, RBAC, flags, host-process bookkeeping; stub model."""

import importlib.util
import json
import threading
from pathlib import Path

import pytest
from pydantic import ValidationError

from appliance import paths
from appliance.components import CATALOG, Resources
from appliance.runtime import process

ROOT = Path(__file__).resolve().parents[2]


def comp(**opts):
    return CATALOG["training-operator"](opts)


def test_registered_with_defaults():
    c = comp()
    assert c.options.runtime == "auto" and not c.on_host and c.options.schemes == ["pytorchjob", "tfjob", "mpijob"]
    assert "platform-base" in c.depends


@pytest.mark.parametrize("bad", [{"runtime": "pod"}, {"schemes": ["mxjob"]}, {"schemes": []}, {"unknown": 1}])
def test_bad_options_are_rejected(bad):
    with pytest.raises(ValidationError):
        comp(**bad)


def test_requests_only_in_cluster():
    assert comp(runtime="host").requests() == Resources()
    assert comp(cpu="250m", memory="1Gi").requests() == Resources(250, 1024)


def _objects(c, **refs):
    return c.objects(None, refs or None, crds=False)


def test_host_runtime_runs_the_deployment_on_the_host_and_registers_no_webhook():
    c = comp(runtime="host")
    now, late, (hosted,) = c._split(_objects(c))
    kinds = [o["kind"] for o in now]
    assert hosted["metadata"]["name"] == "training-operator" and "Deployment" not in kinds and not late
    assert "ValidatingWebhookConfiguration" not in kinds and "Service" not in kinds
    assert {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Secret", "ConfigMap"} <= set(kinds)
    assert c.images() == []


def test_in_cluster_objects():
    objs = _objects(comp(namespace="ml", schemes=["pytorchjob", "mpijob"]), **{"training-operator": "img:1", "pytorch-init": "trainer:1"})
    dep = next(o for o in objs if o["kind"] == "Deployment")
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "img:1" and dep["metadata"]["namespace"] == "ml"
    assert "--enable-scheme=pytorchjob" in c["args"] and "--enable-scheme=mpijob" in c["args"] and "--enable-scheme=tfjob" not in c["args"]
    assert "--pytorch-init-container-image=trainer:1" in c["args"]
    assert {"name": "MY_POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}} in c["env"]
    assert any(m["mountPath"] == "/tmp/k8s-webhook-server/serving-certs" for m in c["volumeMounts"])
    vwc = next(o for o in objs if o["kind"] == "ValidatingWebhookConfiguration")
    assert vwc["metadata"]["name"] == "validator.training-operator.kubeflow.org"  # the name the operator's cert rotator patches
    assert [h["name"] for h in vwc["webhooks"]] == ["validator.pytorchjob.training-operator.kubeflow.org"]  # no MPIJob webhook upstream
    assert all(h["clientConfig"]["service"]["namespace"] == "ml" for h in vwc["webhooks"])


def test_webhook_can_be_disabled():
    kinds = [o["kind"] for o in _objects(comp(webhook=False))]
    assert "ValidatingWebhookConfiguration" not in kinds and "Deployment" in kinds


def test_rbac_covers_enabled_jobs_and_pods():
    role = next(o for o in _objects(comp(schemes=["pytorchjob", "tfjob"])) if o["kind"] == "ClusterRole" and o["metadata"]["name"] == "training-operator")
    res = {(g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    for r in ("pytorchjobs", "pytorchjobs/status", "tfjobs", "tfjobs/finalizers"):
        assert ("kubeflow.org", r) in res
    assert ("", "pods") in res and ("", "services") in res and ("", "secrets") not in res  # its cert Secret: a Role
    assert ("kubeflow.org", "mpijobs") not in res and ("", "pods/exec") not in res  # pods/exec: MPIJob's launcher only


def test_host_args_move_ports_off_defaults():
    c = comp(runtime="host")
    _, _, (dep,) = c._split(c.objects(None, None, {"webhook": 4002, "metrics": 4003, "probe": 4001}, crds=False))
    a = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--metrics-bind-address=0" in a and "--health-probe-bind-address=127.0.0.1:4001" in a and "--webhook-server-port=4002" in a
    assert "--pytorch-init-container-template-file=/etc/config/initContainer.yaml" in a


@pytest.mark.parametrize("master,tries,rc", [("localhost", "3", 0), ("no-such-master.invalid", "1", 1)])
def test_init_template_waits_for_the_master_name(master, tries, rc):
    import subprocess

    import yaml

    cm = next(o for o in _objects(comp()) if o["kind"] == "ConfigMap")
    text = cm["data"]["initContainer.yaml"].replace("{{.InitContainerImage}}", "trainer:1").replace("{{.MaxTries}}", tries).replace("{{.MasterAddr}}", master)
    (c,) = yaml.safe_load(text)
    assert c["name"] == "init-pytorch" and c["command"][:2] == ["sh", "-c"]
    assert subprocess.run(c["command"], capture_output=True, timeout=30).returncode == rc


def test_controllers_dir_is_under_the_cluster_state(tmp_path, monkeypatch):
    monkeypatch.setenv("APPLIANCE_STATE", str(tmp_path))
    kc = paths.state_dir("c1") / "kubeconfig"
    assert process.controllers_dir(str(kc)) == paths.state_dir("c1") / "controllers"
    other = process.controllers_dir("/elsewhere/kubeconfig")
    assert other.parent.parent == paths.state_dir("host-controllers")


def test_host_process_start_stop(tmp_path):
    """The supervisor runs the child, and exits (stopping it) when the kubeconfig disappears."""
    kc = tmp_path / "kubeconfig"
    kc.write_text("{}")
    hp = process.HostProcess(tmp_path / "controllers", "sleeper")
    hp.start(["sleep", "300"], str(kc))
    import time

    for _ in range(50):
        if "started pid" in (hp.log.read_text() if hp.log.exists() else ""):
            break
        time.sleep(0.1)
    assert hp.alive() and json.loads(hp.record.read_text())["pid"]
    kc.unlink()
    for _ in range(60):
        if not hp.alive():
            break
        time.sleep(0.1)
    assert not hp.alive() and "kubeconfig is gone" in hp.log.read_text()
    hp.stop()
    assert not hp.record.exists()


def test_crds_are_generated_for_the_enabled_schemes_only(tmp_path, monkeypatch):
    from appliance.images import builds

    folder = tmp_path / "crds"
    folder.mkdir()
    for kind in ("PyTorchJob", "TFJob", "XGBoostJob"):
        (folder / f"{kind}.yaml").write_text(
            f"apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: {kind.lower()}s.kubeflow.org\n"
            f"  annotations: {{controller-gen.kubebuilder.io/version: v0.16.5}}\nspec:\n  names: {{kind: {kind}}}\n")
    monkeypatch.setattr(builds, "generate_crds", lambda *a, **k: folder)
    out = [o for o in comp(schemes=["pytorchjob", "tfjob"]).objects() if o["kind"] == "CustomResourceDefinition"]
    assert sorted(c["spec"]["names"]["kind"] for c in out) == ["PyTorchJob", "TFJob"]
    assert all("annotations" not in c["metadata"] and c["metadata"]["labels"]["appliance.dev/component"] == "training-operator" for c in out)


# --- the stub model -----------------------------------------------------------------------------

np = pytest.importorskip("numpy")


def _stub():
    spec = importlib.util.spec_from_file_location("stub_train", ROOT / "e2e" / "models" / "stub_train.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_stub_single_rank_learns_the_true_weights():
    s = _stub()
    w, b, mse = s.train(0, 1, 200, 0.1)
    assert np.allclose(w, s.TRUE_W, atol=0.01) and abs(b - s.TRUE_B) < 0.01 and mse < 1e-3


def test_stub_two_ranks_allreduce_equals_full_batch(tmp_path):
    """Two ranks averaging shard gradients over TCP give the same model as one rank on all data."""
    s = _stub()
    from appliance.procs import free_ports

    (port,) = free_ports(1)
    out: dict[int, tuple] = {}

    def rank(r):
        out[r] = s.train(r, 2, 50, 0.1, s.AllReduce(r, 2, "127.0.0.1", port, timeout=30))

    ts = [threading.Thread(target=rank, args=(r,)) for r in (0, 1)]
    [t.start() for t in ts]
    [t.join(60) for t in ts]
    single = s.train(0, 1, 50, 0.1)
    assert np.allclose(out[0][0], out[1][0]) and np.allclose(out[0][0], single[0], atol=1e-9)


def test_stub_main_writes_artifact(tmp_path, monkeypatch):
    s = _stub()
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert s.main(["--steps", "100", "--out", str(tmp_path)]) == 0
    m = np.load(tmp_path / "model.npz")
    assert m["w"].shape == (4,) and json.loads((tmp_path / "model.json").read_text())["mse"] < 0.01
