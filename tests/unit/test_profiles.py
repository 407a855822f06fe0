"""Profile loading: shipped profiles, extends, --set, and one clear line per bad input."""

import textwrap

import pytest

from appliance import profiles
from appliance.errors import ProfileError
from appliance.runtime import Runtime


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


@pytest.mark.parametrize("name", ["laptop", "ci", "dgx", "sim-dgx-pod"])
def test_shipped_profiles_validate(name):
    loaded = profiles.load(name)
    assert loaded.profile.name == name
    assert loaded.profile.components


def test_extends_merges_and_child_wins():
    ci = profiles.load("ci").profile
    assert ci.cluster.name == "appliance-ci" and ci.cluster.workers == 1
    assert ci.cluster.node_classes[0].name == "cpu"  # inherited from laptop
    assert ci.components == profiles.load("laptop").profile.components


def test_sim_profile_is_dgx_shaped():
    dgx = profiles.load("sim-dgx-pod").profile.cluster.node_classes[0]
    assert (dgx.gpus, dgx.count, dgx.gpu_product) == (8, 4, "NVIDIA-H100-80GB-HBM3")


def test_set_overrides_typed_values_and_list_items():
    p = profiles.load("dgx", ["cluster.workers=2", "cluster.baremetal.hosts.0.address=10.0.0.5",
                              "components.network-policy.enabled=false"]).profile
    assert p.cluster.workers == 2
    assert p.cluster.baremetal.hosts[0].address == "10.0.0.5"
    assert not p.components["network-policy"].enabled


def test_unknown_key_names_file_line_field_and_suggestion(tmp_path):
    f = write(tmp_path, "bad.yaml", """\
        name: bad
        cluster:
          name: x
          wrkers: 2
        """)
    with pytest.raises(ProfileError) as e:
        profiles.load(str(f))
    line = e.value.line()
    assert f"{f}:4" in line and "cluster.wrkers" in line and "did you mean 'workers'" in line
    assert e.value.code == 2 and "\n" not in line


def test_wrong_type(tmp_path):
    f = write(tmp_path, "bad.yaml", "name: bad\ncluster:\n  workers: many\n")
    with pytest.raises(ProfileError) as e:
        profiles.load(str(f))
    assert f"{f}:3" in e.value.line() and "cluster.workers" in e.value.line() and "'many'" in e.value.line()


def test_bad_quantity(tmp_path):
    f = write(tmp_path, "bad.yaml", "name: bad\ncluster:\n  node_classes:\n    - name: a\n      memory: lots\n")
    with pytest.raises(ProfileError) as e:
        profiles.load(str(f))
    assert f"{f}:5" in e.value.line() and "quantity" in e.value.line()


def test_unknown_component(tmp_path):
    f = write(tmp_path, "bad.yaml", "name: bad\ncomponents:\n  platform-base: {}\n  user-profile: {}\n")
    with pytest.raises(ProfileError) as e:
        profiles.load(str(f))
    assert f"{f}:4" in e.value.line() and "user-profile" in e.value.line() and "did you mean 'user-profiles'" in e.value.line()


def test_component_option_checked(tmp_path):
    f = write(tmp_path, "bad.yaml", "name: bad\ncomponents:\n  platform-base: {}\n  user-profiles:\n    options:\n      users: [Alice]\n")
    with pytest.raises(ProfileError) as e:
        profiles.load(str(f))
    assert "components.user-profiles.options.users" in e.value.line() and "Alice" in e.value.line()


def test_dependency_cycle(tmp_path):
    f = write(tmp_path, "bad.yaml", """\
        name: bad
        components:
          platform-base:
            depends_on: [user-profiles]
          user-profiles: {}
        """)
    with pytest.raises(ProfileError) as e:
        profiles.load(str(f))
    assert "dependency cycle" in e.value.line() and "depends_on" in e.value.line()


def test_missing_dependency(tmp_path):
    f = write(tmp_path, "bad.yaml", "name: bad\ncomponents:\n  user-profiles: {}\n")
    with pytest.raises(ProfileError) as e:
        profiles.load(str(f))
    assert "needs 'platform-base'" in e.value.line() and f"{f}:3" in e.value.line()


def test_extends_loop_and_missing_parent(tmp_path):
    write(tmp_path, "a.yaml", "extends: b.yaml\nname: a\n")
    write(tmp_path, "b.yaml", "extends: a.yaml\nname: b\n")
    with pytest.raises(ProfileError, match="loops"):
        profiles.load(str(tmp_path / "a.yaml"))
    write(tmp_path, "c.yaml", "extends: nope\nname: c\n")
    with pytest.raises(ProfileError) as e:
        profiles.load(str(tmp_path / "c.yaml"))
    assert f"{tmp_path / 'c.yaml'}:1" in e.value.line()


def test_bad_yaml_and_bad_set(tmp_path):
    f = write(tmp_path, "bad.yaml", "name: bad\ncluster: [unclosed\n")
    with pytest.raises(ProfileError, match="not valid YAML"):
        profiles.load(str(f))
    with pytest.raises(ProfileError, match="key=value"):
        profiles.load("laptop", ["cluster.workers"])
    with pytest.raises(ProfileError) as e:
        profiles.load("laptop", ["cluster.wokers=3"])
    assert "--set cluster.wokers=3" in e.value.line()


def test_unknown_profile_name():
    with pytest.raises(ProfileError, match="did you mean 'laptop'"):
        profiles.load("lapto")


def test_provider_overrides_apply_only_to_that_provider_and_set_wins():
    assert profiles.load("laptop", provider="kind").profile.components["network-policy"].enabled
    assert not profiles.load("laptop", provider="sim").profile.components["network-policy"].enabled
    p = profiles.load("laptop", ["components.network-policy.enabled=true"], provider="sim").profile
    assert p.components["network-policy"].enabled


def test_controllers_run_on_the_host_where_the_provider_runs_no_pods():
    from appliance import components, providers

    for provider, on_host in (("kind", False), ("sim", True)):
        p = profiles.load("laptop", [], provider).profile
        comps = components.enabled(p, providers.get(provider).runtime())
        assert comps["training-operator"].on_host is on_host and comps["kserve"].on_host is on_host
    forced = profiles.load("laptop", ["components.kserve.options.runtime=in-cluster"], "sim").profile
    assert not components.enabled(forced, Runtime(pods_run=False))["kserve"].on_host


def test_bad_override_names_its_line(tmp_path):
    f = write(tmp_path, "bad.yaml", """\
        name: bad
        provider_overrides:
          sim:
            cluster:
              wrkers: 1
        """)
    with pytest.raises(ProfileError) as e:
        profiles.load(str(f), provider="sim")
    assert f"{f}:5" in e.value.line() and "did you mean 'workers'" in e.value.line()


def test_dns_replicas_follow_the_node_count():
    from appliance.components.platform_base.hooks import _dns_target as dns_target

    assert dns_target("auto", 1) == 1 and dns_target("auto", 3) == 2 and dns_target(3, 1) == 3
    with pytest.raises(ProfileError, match="dns_replicas"):
        profiles.load("laptop", ["components.platform-base.options.dns_replicas=many"])


def test_set_with_a_quoted_key_holding_dots():
    p = profiles.load("laptop", ['cluster.images.mirrors."docker.io"=http://mirror:5000'], "kind").profile
    assert p.cluster.images.mirrors == {"docker.io": "http://mirror:5000"}


def test_several_problems_still_give_one_fix(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ncluster: {workers: many, control_planes: none}\n")
    with pytest.raises(ProfileError) as e:
        profiles.load(str(bad))
    line = e.value.line()
    assert line.count("fix:") == 1 and "1 more problem(s)" in line
