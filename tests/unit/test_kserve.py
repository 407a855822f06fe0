"""kserve component (a kit folder): options, CRD schema edits, config, webhooks and their certificates."""

import base64
import json

import pytest
from pydantic import ValidationError

from appliance import certs
from appliance.components import CATALOG, Resources
from appliance.components.kserve.hooks import fix_crd

SERVICE = "kserve-webhook-server-service"


def comp(**opts):
    return CATALOG["kserve"](opts)


def _objects(c, tls=None, **kw):
    if tls:
        c._tls = lambda kube: {k: base64.b64encode(v).decode() for k, v in tls.items()}
    return c.objects(None, kw.pop("images", None), kw.pop("ports", None), crds=False)


def _one(objs, kind):
    return next(o for o in objs if o["kind"] == kind)


def test_registered_with_defaults():
    c = comp()
    assert c.options.namespace == "kserve" and c.options.stub_runtime and c.requests() == Resources(100, 256)
    with pytest.raises(ValidationError):
        comp(mode="Serverless")


def test_inferenceservice_config_is_raw_without_istio():
    cm = _one(_objects(comp(), images={"model-server": "srv:1"}), "ConfigMap")
    cfg = {k: json.loads(v) for k, v in cm["data"].items()}
    assert cfg["deploy"]["defaultDeploymentMode"] == "RawDeployment"
    assert cfg["ingress"]["disableIstioVirtualHost"] and cfg["ingress"]["ingressGateway"]
    assert cfg["ingress"]["domainTemplate"] == "{{ .Name }}-{{ .Namespace }}.{{ .IngressDomain }}"
    assert cfg["storageInitializer"]["enableDirectPvcVolumeMount"] and cfg["agent"]["image"] == "srv:1"
    # the pod mutator parses each sidecar's resources: all must be valid quantities
    for key in ("storageInitializer", "agent", "logger", "batcher"):
        for f in ("cpuRequest", "cpuLimit", "memoryRequest", "memoryLimit"):
            assert cfg[key][f], (key, f)


def test_crd_fix_makes_predictor_fields_optional_and_defaults_protocol():
    crd = {"spec": {"names": {"kind": "InferenceService"}, "versions": [{"schema": {"openAPIV3Schema": {"properties": {"spec": {
        "properties": {"predictor": {"properties": {
            "model": {"required": ["name"], "properties": {"ports": {"items": {"properties": {"protocol": {"type": "string"}}}}}},
            "ephemeralContainers": {"type": "array"},
            "containers": {"items": {"properties": {"readinessProbe": {"properties": {"httpGet": {"required": ["port"]}}}}}},
        }}}}}}}}]}}
    fix_crd(crd)
    pred = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["predictor"]["properties"]
    assert "required" not in pred["model"] and "ephemeralContainers" not in pred
    assert "required" not in pred["containers"]["items"]["properties"]["readinessProbe"]["properties"]["httpGet"]
    assert pred["model"]["properties"]["ports"]["items"]["properties"]["protocol"]["default"] == "TCP"


def test_webhooks_carry_the_ca_and_point_at_the_service():
    pem = certs.service_certs(SERVICE, "kserve")
    assert certs.valid_for(pem["tls.crt"], pem["ca.crt"], f"{SERVICE}.kserve.svc")
    objs = _objects(comp(), pem)
    mut, val = _one(objs, "MutatingWebhookConfiguration"), _one(objs, "ValidatingWebhookConfiguration")
    hooks = mut["webhooks"] + val["webhooks"]
    assert len(hooks) == 5 and all(base64.b64decode(h["clientConfig"]["caBundle"]) == pem["ca.crt"] for h in hooks)
    assert all(h["clientConfig"]["service"] == {**h["clientConfig"]["service"], "name": SERVICE, "namespace": "kserve"} for h in hooks)
    pod = next(h for h in mut["webhooks"] if h["clientConfig"]["service"]["path"] == "/mutate-pods")
    assert pod["objectSelector"]["matchExpressions"][0]["key"] == "serving.kserve.io/inferenceservice"
    assert base64.b64decode(_one(objs, "Secret")["data"]["tls.key"]) == pem["tls.key"]


def test_cert_for_another_service_is_not_reused():
    pem = certs.service_certs("other", "kserve")
    assert not certs.valid_for(pem["tls.crt"], pem["ca.crt"], f"{SERVICE}.kserve.svc")


def test_controller_objects():
    objs = _objects(comp(namespace="srv"), images={"kserve-controller": "ctl:1"})
    kinds = [o["kind"] for o in objs]
    assert kinds.count("Deployment") == 1 and "ConfigMap" in kinds and "Secret" in kinds
    c = _one(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "ctl:1" and {"name": "SECRET_NAME", "value": "kserve-webhook-server-cert"} in c["env"]
    assert any(m["mountPath"] == "/tmp/k8s-webhook-server/serving-certs" for m in c["volumeMounts"])
    cm = _one(objs, "ConfigMap")
    assert cm["metadata"] == {**cm["metadata"], "name": "inferenceservice-config", "namespace": "srv"}


def test_stub_runtime_selects_the_stub_format_and_waits_for_the_controller():
    c = comp()
    _, late, _ = c._split(_objects(c, images={"model-server": "srv:1"}))
    (rt,) = late
    assert rt["kind"] == "ClusterServingRuntime"
    assert rt["spec"]["supportedModelFormats"][0]["name"] == "stub-npz" and rt["spec"]["supportedModelFormats"][0]["autoSelect"]
    ctr = rt["spec"]["containers"][0]
    assert ctr["name"] == "kserve-container" and "--model_dir=/mnt/models" in ctr["args"] and "--model_name={{.Name}}" in ctr["args"]
    assert ctr["image"] == "srv:1" and ctr["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert not [o for o in _objects(comp(stub_runtime=False)) if o["kind"] == "ClusterServingRuntime"]


def test_host_runtime_points_webhooks_at_the_host_and_runs_no_pod():
    c = comp(runtime="host")
    assert c.images() == [] and c.requests() == Resources()
    now, _, (hosted,) = c._split(_objects(c, ports={"webhook": 4443, "metrics": 4444, "probe": 4445}))
    kinds = {o["kind"] for o in now}
    assert hosted["kind"] == "Deployment" and "Deployment" not in kinds and "Service" not in kinds and {"Secret", "ConfigMap"} <= kinds
    hooks = [w for o in now if o["kind"].endswith("WebhookConfiguration") for w in o["webhooks"]]
    assert hooks and all(w["clientConfig"]["url"].startswith("https://127.0.0.1:4443/") and "service" not in w["clientConfig"] for w in hooks)
    assert "--health-probe-addr=127.0.0.1:4445" in hosted["spec"]["template"]["spec"]["containers"][0]["args"]
    pem = certs.service_certs(SERVICE, "kserve", ["127.0.0.1"])
    assert certs.valid_for(pem["tls.crt"], pem["ca.crt"], f"{SERVICE}.kserve.svc", ["127.0.0.1"])
    plain = certs.service_certs(SERVICE, "kserve")
    assert not certs.valid_for(plain["tls.crt"], plain["ca.crt"], f"{SERVICE}.kserve.svc", ["127.0.0.1"])
