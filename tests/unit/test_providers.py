"""The one list of provider names the registry, the schema and the e2e scenarios share."""

import pytest
from pydantic import ValidationError

from appliance import providers
from appliance.e2e.scenario import Scenario
from appliance.schema import Profile
from appliance.util.provider_names import PROVIDERS


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
