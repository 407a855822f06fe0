"""Shared for integration tests: a cluster brought up through the orchestrator and always taken down; the
stack cluster the component modules share (conftest.py makes it once per session)."""

import contextlib
import os

from appliance import orchestrator, paths, profiles, report
from appliance.util.env import environment


def require_kind() -> None:
    """Skip the calling test when kind cannot run here (no Docker daemon), saying why."""
    import pytest

    from appliance.providers.kind import KindProvider

    ok, why = KindProvider.available()
    if not ok:
        pytest.skip(why)


# Two kind clusters of the ci profile, side by side, each shared by a group of modules that run on it in
# this order (monitoring first: it wants no alert firing; those that re-`up` with other options last, each
# putting the profile back after). pytest-xdist runs each group on a worker of its own (conftest.py).
STACK = os.environ.get("APPLIANCE_IT_STACK", "it-stack")  # the clusters' prefix: another lets two sessions run side by side
STACK_COMPONENTS = ("platform-base", "user-profiles", "training-operator", "kserve", "network-policy", "monitoring",
                    "notebooks", "pipelines", "database", "tuning", "queues", "nvidia-device-plugin",  # the plugin: its GPU policy (no GPU here)
                    "tracking")
STACK_GROUPS = {"stack-a": ("test_journey_kind", "test_notebooks_kind", "test_serving_kind", "test_backup_kind"),
                "stack-b": ("test_bundle_kind", "test_monitoring_kind", "test_netpol_kind", "test_pipelines_kind", "test_project_kind",
                            "test_tracking_kind", "test_tuning_kind")}
#: the simulator modules sharing one cluster of the sim-dgx-pod profile with these components, in this order
#: (the journey first, on a fresh cluster; tuning last: it kills PostgreSQL, switches tuning off and takes it down)
SIM_STACK = f"{STACK}-sim"
SIM_STACK_COMPONENTS = ("platform-base", "user-profiles", "training-operator", "kserve", "monitoring", "pipelines", "database", "tuning")
SIM_STACK_MODULES = ("test_journey_sim", "test_pipelines_sim", "test_serving_sim", "test_training_sim", "test_tuning_sim")
STACK_MODULES = tuple(m for group in STACK_GROUPS.values() for m in group) + SIM_STACK_MODULES
#: the other modules' xdist groups: these (Docker, the installed tool, the benchmarks), beside the simulator's ("sim")
HOST_MODULES = ("test_baremetal", "test_bundle_docker", "test_baremetal_up", "test_kind", "test_registry_kind", "test_registry", "test_e2e_build",
                "test_installed", "test_bench_smoke", "test_prebuild", "test_toolchain",
                "test_upgrade_sim")  # a simulator of its own, here where the group finished ~150 s before the others'


#: the stack group whose cluster is made as an offline site makes it (issue 27): from a bundle, into empty caches
OFFLINE_GROUP = "stack-b"
#: every proxy pointing where nothing listens; only loopback (the kind API server's port on this host) direct
NO_WAY_OUT = {**{k: "http://127.0.0.1:9" for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")},
              "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


def group_of(module: str) -> str:
    """The xdist group of test module `module` (its last name)."""
    return next((g for g, mods in STACK_GROUPS.items() if module in mods), "host" if module in HOST_MODULES else "sim")


#: a simulated DGX H100 whose GPUs are cut into MIG instances (mixed: 16 x 1g.10gb, 8 x 2g.20gb, 8 x 3g.40gb)
MIG_NODE = {"name": "dgx-h100-mig", "count": 1, "cpu": "224", "memory": "2Ti", "gpus": 8, "gpu_product": "NVIDIA-H100-80GB-HBM3",
            "mig_strategy": "mixed", "mig_config": "all-balanced", "taints": ["nvidia.com/gpu=present:NoSchedule"]}


def load(profile_name: str, provider: str, sets: list[str], components: tuple[str, ...], node_classes: tuple[dict, ...] = ()):
    """The profile with `sets` applied, only `components` of it, `node_classes` added."""
    from appliance.schema import NodeClass

    p = profiles.load(profile_name, sets, provider).profile
    spec = p.cluster.model_copy(update={"node_classes": [*p.cluster.node_classes, *(NodeClass(**nc) for nc in node_classes)]})
    return p.model_copy(update={"cluster": spec, "components": {k: v for k, v in p.components.items() if k in components}})


def with_options(profile, component: str, **options):
    """`profile` with these options of `component` changed."""
    comps = dict(profile.components)
    comps[component] = comps[component].model_copy(update={"options": {**comps[component].options, **options}})
    return profile.model_copy(update={"components": comps})


@contextlib.contextmanager
def cluster(profile_name: str, provider: str, sets: list[str], components: tuple[str, ...], node_classes: tuple[dict, ...] = ()):
    """`up` the profile (only `components` of it, `node_classes` added) on `provider`; yields (profile, up
    result); `down` after."""
    profile = load(profile_name, provider, sets, components, node_classes)
    try:
        yield profile, orchestrator.up(profile, provider, report.make())
    finally:
        if paths.state_dir(profile.cluster.name).exists():
            orchestrator.down(profile.cluster.name, report.make())


@contextlib.contextmanager
def offline_cluster(profile_name: str, provider: str, sets: list[str], components: tuple[str, ...], work):
    """`cluster`, made the way an offline site makes it: a bundle of the profile packed from this host's caches,
    then `up --bundle` into empty caches (under `work`, removed once the cluster is up) with every proxy pointing
    nowhere; the up result has the bundle's unpack counts under "bundle"."""
    import shutil

    profile = load(profile_name, provider, sets, components)
    bundle = work / f"{profile_name}-{provider}.bundle"
    try:
        orchestrator.bundle(profile, provider, bundle, report.make())
        with environment({"APPLIANCE_CACHE": str(work / "cache"), **NO_WAY_OUT}):
            result = orchestrator.up(profile, provider, report.make(), bundle=bundle)
        shutil.rmtree(work, ignore_errors=True)  # the cluster runs from its nodes: ~6 GiB of disk back
        yield profile, result
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if paths.state_dir(profile.cluster.name).exists():
            orchestrator.down(profile.cluster.name, report.make())


def scenario_passes(result: dict, provider: str, components, name: str, out, skips_for: tuple[str, ...] = ()) -> "object":
    """Run the e2e scenario `name` on the cluster `up` made; fail naming its failed steps, and its steps skipped
    for a component the cluster lacks unless that component is in `skips_for` (a skipped step passes nothing);
    return its result."""
    from appliance import e2e

    (r,) = e2e.run(result["kubeconfig"], provider, set(components), name, out)
    assert r.passed, [f"{s.name}: {s.message}" for s in r.steps if s.status == "failed"]
    lacking = {s.name: set(s.message.removeprefix("needs ").split(", ")) for s in r.steps if s.status == "skipped"}
    assert not {n: c for n, c in lacking.items() if c - set(skips_for)}, f"skipped steps of {name}: {lacking}"
    return r


def rerun_keeps_the_process(profile, result: dict, name: str) -> None:
    """A second `up` of the same profile is a no-op and leaves host process `name` as it was (same pid)."""
    from appliance.runtime import process

    host = process.HostProcess(process.controllers_dir(result["kubeconfig"]), name)
    pid = host.load().pid
    again = orchestrator.up(profile, "sim", report.make())
    assert again["noop"] and host.load().pid == pid
