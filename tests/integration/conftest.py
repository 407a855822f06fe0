"""The stack cluster: one kind cluster of the ci profile that the component modules (clusters.STACK_MODULES)
share, made at its first use and taken down at the end of the session; those modules run last, in that order.
With pytest-xdist (`make test` runs `-n 2 --dist loadgroup`), the stack modules are one group on one worker
and every other test is the other group: the stack cluster's waits overlap the simulator's and Docker's work."""

import pytest

from tests.integration.clusters import STACK, STACK_COMPONENTS, STACK_MODULES, cluster, require_kind


def _rank(item) -> int:
    """-2 unit tests, -1 other integration tests, else the stack module's place in STACK_MODULES."""
    module = getattr(item, "module", None)
    if module is None:
        return -1
    if module.__name__.startswith("tests.unit."):
        return -2
    name = module.__name__.rpartition(".")[2]
    return STACK_MODULES.index(name) if name in STACK_MODULES else -1


def pytest_itemcollected(item):
    """Each test's xdist group (read by xdist's collection hook, which may run before ours)."""
    item.add_marker(pytest.mark.xdist_group("stack" if _rank(item) >= 0 else "rest"))


def pytest_collection_modifyitems(items):
    """Unit tests first (they fail in seconds), then the other integration modules, then the stack modules in
    STACK_MODULES' order (within each group, collection order)."""
    items.sort(key=_rank)


@pytest.fixture(scope="session")
def stack(_isolated_state):
    """(profile, result of its `up`) for the shared stack cluster."""
    require_kind()
    with cluster("ci", "kind", [f"cluster.name={STACK}"], STACK_COMPONENTS) as up:
        yield up
