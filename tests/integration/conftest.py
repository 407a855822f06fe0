"""The stack clusters: kind clusters of the ci profile that groups of component modules share
(clusters.STACK_GROUPS), and one simulator cluster of the sim-dgx-pod profile that the simulator's component
modules share (clusters.SIM_STACK_MODULES), each made at its first use and taken down at the end of the
session; within a group, its modules run in their listed order. With pytest-xdist (`make test` runs `-n 4 --dist loadgroup`)
each stack group, the Docker and tool modules ("host") and the simulator's ("sim") are a group of tests on
a worker of their own: the clusters' waits overlap each other's work."""

import contextlib

import pytest

from tests.integration.clusters import (
    OFFLINE_GROUP,
    SIM_STACK,
    SIM_STACK_COMPONENTS,
    STACK,
    STACK_COMPONENTS,
    STACK_MODULES,
    cluster,
    group_of,
    offline_cluster,
    require_kind,
)


def _rank(item) -> int:
    """-2 unit tests, -1 other integration tests, else the stack module's place in STACK_MODULES (the
    simulator's shared one after the kind ones)."""
    module = getattr(item, "module", None)
    if module is None:
        return -1
    if module.__name__.startswith("tests.unit."):
        return -2
    name = module.__name__.rpartition(".")[2]
    return STACK_MODULES.index(name) if name in STACK_MODULES else -1


def pytest_itemcollected(item):
    """Each test's xdist group (read by xdist's collection hook, which may run before ours)."""
    module = getattr(item, "module", None)
    item.add_marker(pytest.mark.xdist_group(group_of(module.__name__.rpartition(".")[2]) if module else "sim"))


def pytest_collection_modifyitems(items):
    """Unit tests first (they fail in seconds), then the other integration modules, then the stack modules in
    STACK_MODULES' order (within each group, collection order)."""
    items.sort(key=_rank)


@pytest.fixture(scope="session")
def _stacks(_isolated_state):
    """The stack clusters this worker made, by group; taken down when the session ends."""
    with contextlib.ExitStack() as made:
        yield made, {}


@pytest.fixture(scope="module")
def stack(_stacks, request, tmp_path_factory):
    """(profile, result of its `up`) for the stack cluster of the calling module's group."""
    require_kind()
    made, ups = _stacks
    group = group_of(request.module.__name__.rpartition(".")[2])
    if group not in ups:
        sets = [f"cluster.name={STACK}-{group.removeprefix('stack-')}"]
        ups[group] = made.enter_context(
            offline_cluster("ci", "kind", sets, STACK_COMPONENTS, tmp_path_factory.mktemp("offline")) if group == OFFLINE_GROUP
            else cluster("ci", "kind", sets, STACK_COMPONENTS))
    return ups[group]


@pytest.fixture(scope="module")
def sim_stack(_stacks):
    """(profile, result of its `up`) for the simulator cluster the simulator's component modules share."""
    made, ups = _stacks
    if "sim" not in ups:
        ups["sim"] = made.enter_context(cluster("sim-dgx-pod", "sim", [f"cluster.name={SIM_STACK}"], SIM_STACK_COMPONENTS))
    return ups["sim"]
