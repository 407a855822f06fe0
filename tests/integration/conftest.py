"""The stack cluster: one kind cluster of the ci profile that the component modules (clusters.STACK_MODULES)
share, made at its first use and taken down at the end of the session; those modules run last, in that order."""

import pytest

from tests.integration.clusters import STACK, STACK_COMPONENTS, STACK_MODULES, cluster, require_kind


def pytest_collection_modifyitems(items):
    """Unit tests first (they fail in seconds), then the other integration modules, then the stack modules in
    STACK_MODULES' order (within each group, collection order)."""
    rank = {name: i for i, name in enumerate(STACK_MODULES)}

    def key(item) -> int:
        module = getattr(item, "module", None)
        if module is None:
            return -1
        if module.__name__.startswith("tests.unit."):
            return -2
        return rank.get(module.__name__.rpartition(".")[2], -1)

    items.sort(key=key)


@pytest.fixture(scope="session")
def stack(_isolated_state):
    """(profile, result of its `up`) for the shared stack cluster."""
    require_kind()
    with cluster("ci", "kind", [f"cluster.name={STACK}"], STACK_COMPONENTS) as up:
        yield up
