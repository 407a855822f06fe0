"""Offline sites on kind: stack-b's cluster (conftest.py, clusters.offline_cluster) is made from a bundle of the ci
profile packed from this host's caches, unpacked into empty caches, with every proxy pointing where nothing
listens; the group's modules then run their scenarios on it. Here: it did come from the bundle, whole, and a
user's scenario passes on it."""

import pytest

from tests.integration.clusters import STACK_COMPONENTS, scenario_passes

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.docker]


def test_the_stack_came_up_from_its_bundle(stack):
    _, result = stack
    unpacked = result["bundle"]
    assert unpacked["files"] > 100 and unpacked["bytes"] > 2**30, unpacked  # component images, programs, toolchain
    assert not result["failed"] and {"cluster", *STACK_COMPONENTS} <= set(result["ran"]), result


def test_a_users_scenario_passes_on_it(stack, tmp_path):
    scenario_passes(stack[1], "kind", STACK_COMPONENTS, "user-isolation", tmp_path)
