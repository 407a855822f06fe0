"""The registry client against a real registry (distribution v3): push a built image, read it back."""

import json

import pytest

from appliance.components import CATALOG
from appliance.images import delivery as D
from appliance.images import registry as R
from appliance.schema import ImagesSpec
from tests.integration.registry import host_registry

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def url():
    with host_registry() as u:
        yield u


def test_push_then_the_manifest_and_blobs_are_served(url):
    (operator,) = [i for i in CATALOG["training-operator"]().images() if i.name == "training-operator"]
    ref, archive = operator.build()
    D.push(archive, ref, url, ("appliance.local/training-operator:alias",))
    ep = R.Endpoint(url)
    repo, tag = ref.split("/", 1)[1].rsplit(":", 1)
    assert repo == "training-operator"
    status, _, body = ep.request("GET", f"/v2/{repo}/tags/list")
    assert status == 200 and set(json.loads(body)["tags"]) == {tag, "alias"}
    status, headers, body = ep.request("GET", f"/v2/{repo}/manifests/{tag}", headers={"Accept": R.MANIFEST_TYPE})
    manifest = json.loads(body)
    assert status == 200 and manifest["mediaType"] == R.MANIFEST_TYPE
    for blob in [manifest["config"]] + manifest["layers"]:
        assert ep.has_blob(repo, blob["digest"])
    # a second push uploads no blob again and gives the same manifest digest
    assert R.push_archive(archive, ep, repo, tag) == headers["Docker-Content-Digest"]


def test_auto_takes_upstream_through_a_mirror_that_answers(url):
    d = D.decide(ImagesSpec(mirrors={"docker.io": url}), [CATALOG["training-operator"].decl.images["training-operator"].upstream])
    assert d.source == "upstream", d.why


def test_images_push_fills_a_registry_for_an_air_gapped_site(url):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", "from appliance.cli import run; run()", "images", "push", "--profile", "laptop",
                        "--provider", "kind", "--set", "components.kserve.enabled=false", "--registry", url],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    assert "cluster.images.registry=" + url in r.stdout
    status, _, body = R.Endpoint(url).request("GET", "/v2/_catalog")
    assert {"training-operator", "trainer"} <= set(json.loads(body)["repositories"])


@pytest.mark.parametrize("registry,code,text", [("http://bad host", 2, "not a registry address"), ("http://127.0.0.1:9", 1, "does not answer")])
def test_images_push_bad_registry_is_one_line(registry, code, text):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", "from appliance.cli import run; run()", "images", "push", "--registry", registry],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == code and len(r.stderr.strip().splitlines()) == 1 and text in r.stderr
