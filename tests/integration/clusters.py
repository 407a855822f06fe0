"""Shared for integration tests: a cluster brought up through the orchestrator and always taken down."""

import contextlib

from appliance import orchestrator, paths, profiles, report


def require_kind() -> None:
    """Skip the calling test when kind cannot run here (no Docker daemon), saying why."""
    import pytest

    from appliance.providers.kind import KindProvider

    ok, why = KindProvider.available()
    if not ok:
        pytest.skip(why)


@contextlib.contextmanager
def cluster(profile_name: str, provider: str, sets: list[str], components: tuple[str, ...]):
    """`up` the profile (only `components` of it) on `provider`; yields (profile, up result); `down` after."""
    loaded = profiles.load(profile_name, sets, provider)
    profile = loaded.profile.model_copy(update={"components": {k: v for k, v in loaded.profile.components.items() if k in components}})
    try:
        yield profile, orchestrator.up(profile, provider, report.make())
    finally:
        if paths.state_dir(profile.cluster.name).exists():
            orchestrator.down(profile.cluster.name, report.make())


def scenario_passes(result: dict, provider: str, components, name: str, out) -> "object":
    """Run the e2e scenario `name` on the cluster `up` made; fail naming its failed steps; return its result."""
    from appliance import e2e

    (r,) = e2e.run(result["kubeconfig"], provider, set(components), name, out)
    assert r.passed, [f"{s.name}: {s.message}" for s in r.steps if s.status == "failed"]
    return r
