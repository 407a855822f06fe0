"""What each provider says of itself (host needs, cold builds, port mappings, e2e profile, automatic choice), and the
one list of provider names the registry, the schema and the e2e scenarios share."""

import pytest
from pydantic import ValidationError

from appliance import e2e, orchestrator, providers
from appliance.e2e.scenario import Scenario
from appliance.images import debian, node
from appliance.images.gobuild import PROGRAMS
from appliance.providers.kind.provider import GCC
from appliance.schema import ClusterSpec, Profile
from appliance.toolchain import SIM_TOOLS
from appliance.util.provider_names import PROVIDERS

MAPPINGS = [{"container_port": 30080, "host_port": 8000, "listen_address": "127.0.0.1"}]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("APPLIANCE_CACHE", str(tmp_path))
    return tmp_path


def test_the_registry_holds_the_names_and_each_provider_its_own():
    assert providers.NAMES == PROVIDERS
    assert [providers.get(n).name for n in PROVIDERS] == list(PROVIDERS)


def test_the_schema_and_the_scenarios_take_exactly_the_names():
    for name in PROVIDERS:
        Profile(name="p", provider=name, provider_overrides={name: {}})
    for bad in ({"provider": "docker"}, {"provider_overrides": {"docker": {}}}):
        with pytest.raises(ValidationError):
            Profile(name="p", **bad)
    assert Scenario(name="s", steps=[]).providers == list(PROVIDERS)


def test_host_needs():
    kind, sim, bm = (providers.get(n) for n in ("kind", "sim", "baremetal"))
    assert (kind.needs_docker, kind.needs_kernel, kind.programs) == (True, True, (GCC,))
    assert (sim.needs_docker, sim.needs_kernel, sim.programs) == (False, False, ())
    assert (bm.needs_docker, bm.needs_kernel, bm.programs) == (False, True, ())


def test_kind_builds_its_node_image_unless_the_profile_names_one(cache):
    kind = providers.get("kind")
    cold = kind.cold_build(ClusterSpec())
    assert cold.rootfs == {"node": debian.NODE_PACKAGES, "slim": debian.SLIM_PACKAGES}
    assert cold.programs == [(GCC, "the kind node image is built here")]
    assert cold.tools == node.TOOLS and cold.builds == ["node image"]
    assert cold.go == [(m, v, n) for n, (m, v, _) in PROGRAMS.items()]
    given = kind.cold_build(ClusterSpec.model_validate({"kind": {"image": "kindest/node:v1.31.4"}}))
    assert given.rootfs == {} and given.programs == []


def test_kind_needs_no_gcc_once_the_node_root_filesystem_is_cached(cache):
    path = debian.rootfs_path("node", debian.NODE_PACKAGES)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    assert providers.get("kind").cold_build(ClusterSpec()).programs == []


def test_sim_and_baremetal_cold_builds():
    assert providers.get("sim").cold_build(ClusterSpec()) == providers.ColdBuild(tools=list(SIM_TOOLS))
    assert providers.get("baremetal").cold_build(ClusterSpec()) == providers.ColdBuild()


def test_only_kind_maps_host_ports_to_the_nodes():
    spec = ClusterSpec.model_validate({"kind": {"port_mappings": MAPPINGS}})
    assert providers.get("kind").port_mappings(spec) == MAPPINGS
    assert providers.get("sim").port_mappings(spec) == [] and providers.get("baremetal").port_mappings(spec) == []


def test_e2e_profiles():
    assert {n: e2e.default_profile(n) for n in PROVIDERS} == {"sim": "sim-dgx-pod", "kind": "ci", "baremetal": "dgx"}
    assert e2e.default_profile(None) == "ci"


def test_auto_takes_kind_with_a_docker_daemon_else_the_simulator(monkeypatch):
    up = {"daemon": True, "version": "27.1", "error": ""}
    down = {"daemon": False, "version": "", "error": "docker client not found"}
    assert providers.auto(up) == ("kind", "a Docker daemon (27.1) answers")
    assert providers.auto(down) == ("sim", "no Docker daemon answers (docker client not found); the simulator needs none")
    monkeypatch.setattr(orchestrator.host, "docker", lambda: down)
    assert orchestrator.choose_provider(Profile(name="p"))[0] == "sim"
    assert orchestrator.choose_provider(Profile(name="p", provider="baremetal")) == ("baremetal", "set by profile 'p'")


def test_up_records_the_providers_port_mappings_for_the_components(tmp_path, monkeypatch):
    import io
    import json
    from types import SimpleNamespace

    from appliance import paths, prereqs, report

    monkeypatch.setenv("APPLIANCE_STATE", str(tmp_path))
    monkeypatch.setattr(prereqs, "check", lambda *a: None)
    monkeypatch.setattr(prereqs, "announce", lambda *a: 0)
    monkeypatch.setattr(orchestrator, "execute", lambda *a: SimpleNamespace(ran=[], skipped=[], failed={}, blocked=[], noop=[]))
    profile = Profile(name="p", cluster={"name": "c1", "kind": {"port_mappings": MAPPINGS}})
    orchestrator.up(profile, "kind", report.Reporter(io.StringIO()))
    assert json.loads((paths.state_dir("c1") / "state.json").read_text())["port_mappings"] == MAPPINGS
