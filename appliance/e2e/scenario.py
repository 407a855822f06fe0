"""Scenario files: declarative steps (apply / assert / error / access / script / cleanup) with timeouts."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from appliance.errors import ProfileError
from appliance.schema import ProviderName
from appliance.util.provider_names import PROVIDERS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


IDENTITY = "`namespace/serviceaccount`: act with that service account's token (a user's own identity)"


class Apply(_Strict):
    file: str = ""
    objects: list[dict[str, Any]] = Field(default_factory=list)
    as_: str = Field("", alias="as", description=IDENTITY + "; default: the cluster admin")
    dry_run: bool = Field(False, description="authorization and admission only: nothing is stored")
    refused: str = Field("", description="each object, applied as a dry run (nothing is stored), must be refused (403 or 422) "
                                         "with a message holding this text; one admitted is tried again until the step's timeout")


class Access(_Strict):
    """An identity tries each verb on each resource; `allowed` says whether RBAC must let every request
    through (else each must get 403). A resource is `plural` (core API) or `plural.group`, as kubectl names
    it (`pytorchjobs.kubeflow.org`)."""

    as_: str = Field(alias="as", description=IDENTITY)
    verbs: list[Literal["list", "get", "create", "delete"]] = Field(default_factory=lambda: ["list"], min_length=1)
    resources: list[str] = Field(default_factory=lambda: ["pods"], min_length=1)
    namespace: str
    name: str = Field("e2e-access-probe", description="get/delete: the object's name (it need not exist)")
    allowed: bool


class Script(_Strict):
    run: str
    exit_code: int = 0
    stdout_contains: str = ""
    as_: str = Field("", alias="as", description="run with a kubeconfig for this namespace/serviceaccount")


class ScenarioStep(_Strict):
    name: str
    timeout: float = Field(60, gt=0)
    apply: Apply | None = None
    assert_: dict[str, Any] | None = Field(None, alias="assert")
    error: dict[str, Any] | None = None
    access: Access | None = None
    script: Script | None = None
    delete: Apply | None = None
    components: list[str] = Field(default_factory=list, description="skip this step unless the cluster has these components")

    @model_validator(mode="after")
    def _one_action(self) -> "ScenarioStep":
        acts = [k for k in ("apply", "assert_", "error", "access", "script", "delete") if getattr(self, k) is not None]
        if len(acts) != 1:
            raise ValueError(f"step '{self.name}' must have exactly one of apply/assert/error/access/script/delete (has {len(acts)})")
        return self

    @property
    def kind(self) -> str:
        return next(k.rstrip("_") for k in ("apply", "assert_", "error", "access", "script", "delete") if getattr(self, k) is not None)


class Scenario(_Strict):
    name: str
    description: str = ""
    providers: list[ProviderName] = Field(default_factory=lambda: list(PROVIDERS))
    components: list[str] = Field(default_factory=list, description="components the cluster must have")
    steps: list[ScenarioStep]
    cleanup: list[ScenarioStep] = Field(default_factory=list)
    path: Path | None = Field(None, exclude=True)


def load(path: Path) -> Scenario:
    """Parse and validate a scenario file; a bad one is one line naming file and field."""
    try:
        data = yaml.safe_load(path.read_text())
        s = Scenario.model_validate(data)
    except yaml.YAMLError as e:
        raise ProfileError(f"not valid YAML ({e})", str(path), "fix the YAML syntax") from None
    except ValidationError as e:
        err = e.errors()[0]
        raise ProfileError(err["msg"].removeprefix("Value error, "), f"{path} ({'.'.join(map(str, err['loc']))})", "see e2e/README.md for the step format") from None
    s.path = path
    return s
