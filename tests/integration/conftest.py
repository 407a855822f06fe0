"""The stack cluster: one kind cluster of the ci profile that the component modules (clusters.STACK_MODULES)
share, made at its first use and taken down at the end of the session; those modules run last, in that order."""

import pytest

from tests.integration.clusters import STACK, STACK_COMPONENTS, STACK_MODULES, cluster, require_kind


def pytest_collection_modifyitems(items):
    """The stack modules after every other test, in STACK_MODULES' order (the rest keep theirs)."""
    rank = {name: i for i, name in enumerate(STACK_MODULES)}
    items.sort(key=lambda item: rank.get(item.module.__name__.rpartition(".")[2], -1) if getattr(item, "module", None) else -1)


@pytest.fixture(scope="session")
def stack(_isolated_state):
    """(profile, result of its `up`) for the shared stack cluster."""
    require_kind()
    with cluster("ci", "kind", [f"cluster.name={STACK}"], STACK_COMPONENTS) as up:
        yield up
