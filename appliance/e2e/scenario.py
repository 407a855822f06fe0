"""Scenario files: declarative steps (build / apply / assert / error / access / script / cleanup) with timeouts."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from appliance.errors import ProfileError, UserError
from appliance.schema import ProviderName
from appliance.util import sourced
from appliance.util.provider_names import PROVIDERS

#: where a problem's fix points
FORMAT = "the step format: e2e/README.md, or `appliance e2e schema`"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


IDENTITY = "`namespace/serviceaccount`: act with that service account's token (a user's own identity)"
#: what an identity looks like (two DNS labels); empty: the cluster admin
IDENTITY_PATTERN = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9.]*[a-z0-9])?)?$"


class Apply(_Strict):
    """Objects from `file` (a YAML stream, relative to the scenario file) and `objects`."""

    file: str = ""
    objects: list[dict[str, Any]] = Field(default_factory=list)
    as_: str = Field("", alias="as", pattern=IDENTITY_PATTERN, description=IDENTITY + "; default: the cluster admin")
    dry_run: bool = Field(False, description="authorization and admission only: nothing is stored")
    refused: str = Field("", description="each object, applied as a dry run (nothing is stored), must be refused (403 or 422) "
                                         "with a message holding this text; one admitted is tried again until the step's timeout")

    @model_validator(mode="after")
    def _some_objects(self) -> "Apply":
        if not (self.file or self.objects):
            raise ValueError("give `file:` or `objects:`")
        return self


class Access(_Strict):
    """An identity tries each verb on each resource; `allowed` says whether RBAC must let every request
    through (else each must get 403). A resource is `plural` (core API) or `plural.group`, as kubectl names
    it (`pytorchjobs.kubeflow.org`)."""

    as_: str = Field(alias="as", pattern=IDENTITY_PATTERN, min_length=1, description=IDENTITY)
    verbs: list[Literal["list", "get", "create", "delete"]] = Field(default_factory=lambda: ["list"], min_length=1)
    resources: list[str] = Field(default_factory=lambda: ["pods"], min_length=1)
    namespace: str
    name: str = Field("e2e-access-probe", description="get/delete: the object's name (it need not exist)")
    allowed: bool


class Script(_Strict):
    run: str
    exit_code: int = 0
    stdout_contains: str = ""
    as_: str = Field("", alias="as", pattern=IDENTITY_PATTERN, description="run with a kubeconfig for this namespace/serviceaccount")


#: an image's name: a repository path component
IMAGE_NAME = r"^[a-z0-9]+([._-][a-z0-9]+)*$"
#: where a later step uses a built image's reference
IMAGE_REF = re.compile(r"\$\{images\.([^}]*)\}")


class Build(_Strict):
    """An image of the user's Python project, built here and put where the nodes find it (no registry):
    Debian python3, the wheels of `requirements` installed offline, every file of `context` under /app.
    Later steps write `${images.NAME}` for its reference."""

    name: str = Field(pattern=IMAGE_NAME, description="later steps' manifests and scripts write ${images.NAME} for the image's reference")
    context: str = Field(".", description="the project's folder, relative to the scenario file; its files go to /app "
                                          "(hidden ones and __pycache__ left out)")
    requirements: str = Field("requirements.txt", description="relative to `context`: one requirement a line (pin versions: the "
                                                              "image is cached by these lines); wheels come through the host's pip configuration")
    entrypoint: list[str] = Field(default_factory=lambda: ["python3"], min_length=1,
                                  description="the image's entrypoint (working directory /app); a pod's `command` replaces it")


ACTIONS = ("build", "apply", "assert_", "error", "access", "script", "delete")


class ScenarioStep(_Strict):
    name: str
    timeout: float = Field(60, gt=0)
    build: Build | None = None
    apply: Apply | None = None
    assert_: dict[str, Any] | None = Field(None, alias="assert")
    error: dict[str, Any] | None = None
    access: Access | None = None
    script: Script | None = None
    delete: Apply | None = None
    components: list[str] = Field(default_factory=list, description="skip this step unless the cluster has these components")
    providers: list[ProviderName] = Field(default_factory=list, description="skip this step on other providers (e.g. a model that "
                                          "answers: kind, baremetal — the simulator's pods run no code); none: every provider")

    @model_validator(mode="after")
    def _one_action(self) -> "ScenarioStep":
        acts = [k for k in ACTIONS if getattr(self, k) is not None]
        if len(acts) != 1:
            raise ValueError(f"step '{self.name}' must have exactly one of build/apply/assert/error/access/script/delete (has {len(acts)})")
        return self

    @property
    def kind(self) -> str:
        return next(k.rstrip("_") for k in ACTIONS if getattr(self, k) is not None)


class Scenario(_Strict):
    name: str
    description: str = ""
    providers: list[ProviderName] = Field(default_factory=lambda: list(PROVIDERS))
    components: list[str] = Field(default_factory=list, description="components the cluster must have")
    steps: list[ScenarioStep]
    cleanup: list[ScenarioStep] = Field(default_factory=list)
    path: SkipJsonSchema[Path | None] = Field(None, exclude=True)


def check(path: Path, components: set[str]) -> tuple[Scenario | None, list[UserError]]:
    """A scenario file and every problem in it, each one line `file:line (key): what — fix`: the schema, then
    the components it names (`components`: the catalog's), the files its steps apply or build from, and the
    `${images.NAME}` they use (each built by an earlier step)."""
    try:
        data, origins = sourced.read(path, ProfileError)
    except ProfileError as e:
        return None, [e]
    except OSError as e:
        return None, [ProfileError(f"cannot read it ({e.strerror})", str(path), "name a readable scenario file")]
    s, errors = sourced.check(Scenario, data, origins, f"{path}:1", ProfileError)
    for e in errors:
        e.fix += f"; see {FORMAT}" if e.fix == "correct the value" else ""
    if s is None:
        return None, errors
    s.path = path
    named = [(("components", i), c) for i, c in enumerate(s.components)]
    built: set[str] = set()
    for phase in ("steps", "cleanup"):
        for n, step in enumerate(getattr(s, phase)):
            named += [((phase, n, "components", i), c) for i, c in enumerate(step.components)]
            if step.build:
                errors += _build_problems(step.build, path, (phase, n, "build"), origins)
                built.add(step.build.name)
            texts = [step.model_dump_json(by_alias=True)]
            for kind in ("apply", "delete"):
                spec = getattr(step, kind)
                if spec is not None and spec.file and not (path.parent / spec.file).is_file():
                    errors.append(ProfileError(f"no file '{spec.file}' beside the scenario", _at((phase, n, kind, "file"), origins, path),
                                               "paths are relative to the scenario file's folder"))
                elif spec is not None and spec.file:
                    texts.append((path.parent / spec.file).read_text(errors="replace"))
            if unknown := sorted({m for t in texts for m in IMAGE_REF.findall(t)} - built):
                errors.append(ProfileError(f"${{images.{unknown[0]}}}: no earlier step builds an image named '{unknown[0]}'",
                                           _at((phase, n, "name"), origins, path), "add a step `build: {name: ..., context: DIR}` before it"))
    for loc, name in named:
        if name not in components:
            close = difflib.get_close_matches(name, sorted(components), n=1)
            errors.append(ProfileError(f"unknown component '{name}'", _at(loc, origins, path),
                                       f"did you mean '{close[0]}'?" if close else f"one of: {', '.join(sorted(components))}"))
    return s, errors


def _build_problems(b: Build, path: Path, loc: tuple, origins: sourced.Origins) -> list[UserError]:
    """A build step's folder and requirements file exist; the file has requirements only (no pip options)."""
    def at(key: str) -> str:
        return _at((*loc, key), origins, path)

    context, req = path.parent / b.context, path.parent / b.context / b.requirements
    if not context.is_dir():
        return [ProfileError(f"no folder '{b.context}' beside the scenario", at("context"), "the context is relative to the scenario file's folder")]
    if not req.is_file():
        return [ProfileError(f"no file '{b.requirements}' in '{b.context}'", at("requirements"),
                             "the requirements file is relative to the context (an empty one: no packages)")]
    return [ProfileError(f"a pip option, not a requirement: '{text.strip()}'", f"{req}:{i}",
                         "one requirement a line (name==version); the index comes from the host's pip configuration")
            for i, text in enumerate(req.read_text(errors="replace").splitlines(), 1) if text.strip().startswith("-")]


def json_schema() -> dict:
    """The JSON Schema of a scenario file, keys as written (`as`, `assert`)."""
    return {**Scenario.model_json_schema(by_alias=True), "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "appliance e2e scenario"}


def _at(loc: tuple, origins: sourced.Origins, path: Path) -> str:
    return f"{sourced.where(loc, origins, str(path))} ({'.'.join(map(str, loc))})"


def load(path: Path) -> Scenario:
    """Parse and validate a scenario file; a bad one is its first problem, one line naming file:line and field."""
    from appliance.components import CATALOG

    s, errors = check(path, set(CATALOG))
    if errors:
        raise errors[0]
    return s
