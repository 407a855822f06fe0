"""kserve component: options, CRD schema edits, config, webhooks and their certificates."""

import base64
import json

import pytest
from pydantic import ValidationError

from appliance import certs
from appliance.components import CATALOG, Resources
from appliance.components import serving as S


def comp(**opts):
    return CATALOG["kserve"](opts)


def test_registered_with_defaults():
    c = comp()
    assert c.options.namespace == "kserve" and c.options.stub_runtime and c.requests() == Resources(100, 256)
    with pytest.raises(ValidationError):
        comp(mode="Serverless")


def test_inferenceservice_config_is_raw_without_istio():
    cfg = {k: json.loads(v) for k, v in S.inferenceservice_config(S.ServingOpts(), "srv:1").items()}
    assert cfg["deploy"]["defaultDeploymentMode"] == "RawDeployment"
    assert cfg["ingress"]["disableIstioVirtualHost"] and cfg["ingress"]["ingressGateway"]
    assert cfg["storageInitializer"]["enableDirectPvcVolumeMount"]
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
    S.fix_crd(crd)
    pred = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["predictor"]["properties"]
    assert "required" not in pred["model"] and "ephemeralContainers" not in pred
    assert "required" not in pred["containers"]["items"]["properties"]["readinessProbe"]["properties"]["httpGet"]
    assert pred["model"]["properties"]["ports"]["items"]["properties"]["protocol"]["default"] == "TCP"


def test_webhooks_carry_the_ca_and_point_at_the_service():
    pem = certs.service_certs(S.SERVICE, "kserve")
    assert certs.valid_for(pem["tls.crt"], pem["ca.crt"], f"{S.SERVICE}.kserve.svc")
    mut, val = S.webhooks("kserve", pem["ca.crt"])
    hooks = mut["webhooks"] + val["webhooks"]
    assert all(base64.b64decode(h["clientConfig"]["caBundle"]) == pem["ca.crt"] for h in hooks)
    assert all(h["clientConfig"]["service"] == {**h["clientConfig"]["service"], "name": S.SERVICE, "namespace": "kserve"} for h in hooks)
    pod = next(h for h in mut["webhooks"] if h["clientConfig"]["service"]["path"] == "/mutate-pods")
    assert pod["objectSelector"]["matchExpressions"][0]["key"] == "serving.kserve.io/inferenceservice"


def test_cert_for_another_service_is_not_reused():
    pem = certs.service_certs("other", "kserve")
    assert not certs.valid_for(pem["tls.crt"], pem["ca.crt"], f"{S.SERVICE}.kserve.svc")


def test_controller_objects():
    certs = {"ca.crt": b"a", "tls.crt": b"b", "tls.key": b"c"}
    objs = S.controller_objects(S.ServingOpts(namespace="srv"), "ctl:1", "srv:1", certs)
    kinds = [o["kind"] for o in objs]
    assert kinds.count("Deployment") == 1 and "ConfigMap" in kinds and "Secret" in kinds
    dep = next(o for o in objs if o["kind"] == "Deployment")
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "ctl:1" and {"name": "SECRET_NAME", "value": S.SECRET} in c["env"]
    assert any(m["mountPath"] == S.CERT_DIR for m in c["volumeMounts"])
    cm = next(o for o in objs if o["kind"] == "ConfigMap")
    assert cm["metadata"] == {**cm["metadata"], "name": "inferenceservice-config", "namespace": "srv"}


def test_stub_runtime_selects_the_stub_format():
    rt = S.stub_runtime("srv:1")
    assert rt["spec"]["supportedModelFormats"][0]["name"] == S.MODEL_FORMAT and rt["spec"]["supportedModelFormats"][0]["autoSelect"]
    c = rt["spec"]["containers"][0]
    assert c["name"] == "kserve-container" and "--model_dir=/mnt/models" in c["args"]
    assert c["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_host_runtime_points_webhooks_at_the_host_and_runs_no_pod():
    from appliance import certs

    c = S.KServe({"runtime": "host"})
    assert c.images() == [] and c.requests() == Resources()
    objs = c.objects(None, "", "srv:1", "https://127.0.0.1:4443")
    kinds = {o["kind"] for o in objs}
    assert "Deployment" not in kinds and "Service" not in kinds and {"Secret", "ConfigMap"} <= kinds
    hooks = [w for o in objs if o["kind"].endswith("WebhookConfiguration") for w in o["webhooks"]]
    assert hooks and all(w["clientConfig"]["url"].startswith("https://127.0.0.1:4443/") and "service" not in w["clientConfig"] for w in hooks)
    pem = certs.service_certs(S.SERVICE, "kserve", ["127.0.0.1"])
    assert certs.valid_for(pem["tls.crt"], pem["ca.crt"], f"{S.SERVICE}.kserve.svc", ["127.0.0.1"])
    plain = certs.service_certs(S.SERVICE, "kserve")
    assert not certs.valid_for(plain["tls.crt"], plain["ca.crt"], f"{S.SERVICE}.kserve.svc", ["127.0.0.1"])
