"""The component catalog: every folder under appliance/components/ (see kit.py and docs/components.md), its
dependencies, and the checks a profile's components must pass."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from appliance.components.decl import Decl
from appliance.errors import ProfileError, validation_what
from appliance.images.delivery import ComponentImage, Images
from appliance.runtime import IN_CLUSTER, Runtime
from appliance.schema import ImagesSpec, Profile


@dataclass(frozen=True)
class Resources:
    """Requested CPU (millicores) and memory (MiB)."""

    cpu_m: int = 0
    memory_mi: int = 0

    def __add__(self, other: "Resources") -> "Resources":
        return Resources(self.cpu_m + other.cpu_m, self.memory_mi + other.memory_mi)


class Options(BaseModel):
    """Base for a component's options (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid")


class Component:
    """The interface the planner, doctor and status use; the kit (kit.py) implements it from a folder.
    Talks only to the Kubernetes API (a `Kube`)."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    depends: ClassVar[tuple[str, ...]] = ()
    Opts: ClassVar[type[Options]] = Options
    #: its typed component.yaml (decl.py)
    decl: ClassVar[Decl]

    def __init__(self, options: dict[str, Any] | None = None, runtime: Runtime = IN_CLUSTER):
        self.options = self.Opts.model_validate(options or {})
        #: where its workloads run, the provider's choice (see providers.base.Provider.runtime)
        self.runtime = runtime
        #: where images come from; `enabled()` gives every component of a profile the profile's
        self.delivery = Images(ImagesSpec(source="local"), [])
        #: what the components it declares it depends on pass it (their `offers()`), from `enabled()`
        self.given: dict[str, Any] = {}

    @classmethod
    def check_options(cls, options: Options) -> None:
        """What a type cannot say about valid options (a file they name must parse): raise a UserError."""

    @classmethod
    def pins(cls) -> dict[str, list[str]]:
        """What this version of the component is made of (upstream images, Go modules, lock files); none by default."""
        return {}

    def offers(self) -> dict[str, Any]:
        """What it passes the components that declare they depend on it (user-profiles: the users); none by default."""
        return {}

    def images(self) -> list[ComponentImage]:
        """The images this component runs (pinned upstream reference + local build); none by default."""
        return []

    def go_programs(self) -> list[tuple[str, str, str]]:
        """(module, version, binary) of each Go program `up` builds for it (progress estimates)."""
        return []

    def prebuild(self) -> int:
        """Build, with no cluster, what `install` would build here (cached: instant when warm); returns how many
        things it made sure of."""
        for img in self.images():
            img.build()
        return len(self.images())

    def revision(self) -> str:
        """What this version of the component is (its declaration, manifests, image inputs): a change makes
        `up` apply it again on a cluster an older version made."""
        return ""

    def requests(self) -> Resources:
        """What the component's pods request once running."""
        return Resources()

    def install(self, kube) -> str:
        """Install or upgrade (idempotent); returns a short summary."""
        raise NotImplementedError

    def remove(self, kube) -> None:
        raise NotImplementedError

    def ready(self, kube) -> tuple[bool, str]:
        """(ready?, what is still missing)."""
        raise NotImplementedError

    def notes(self, kube) -> list[str]:
        """Lines `status` shows under a ready component (e.g. firing alerts); none by default."""
        return []

    def claims(self, kube) -> list[dict[str, str]]:
        """The volume claims holding its data (namespace, name, volume); none by default."""
        return []

    def dump(self, kube, kubectl) -> dict[str, bytes]:
        """Logical dumps of its data for a backup (name: bytes), taken with `kubectl(args) -> stdout`; none by default."""
        return {}

    def load(self, kube, kubectl, name: str, path) -> None:
        """Load dump `name` (the file `path`) back, with `kubectl(args, stdin=file)`."""


def _catalog() -> dict[str, type[Component]]:
    from appliance.components import kit

    return {cls.name: cls for cls in kit.discover()}


CATALOG: dict[str, type[Component]] = _catalog()


def enabled(profile: Profile, runtime: Runtime = IN_CLUSTER) -> dict[str, Component]:
    """The profile's enabled components, instantiated with their options and the provider's runtime, sharing
    one image delivery, each given what the components it declares it depends on offer."""
    comps = {n: CATALOG[n](s.options, runtime) for n, s in profile.components.items() if s.enabled}
    delivery = Images(profile.cluster.images, [i.upstream for c in comps.values() for i in c.images() if i.upstream])
    for c in comps.values():
        c.delivery = delivery
        c.given = {k: v for d in c.depends if d in comps for k, v in comps[d].offers().items()}
    return comps


def dependencies(profile: Profile) -> dict[str, list[str]]:
    """Each enabled component → the components it waits for (catalog + profile `depends_on`)."""
    return {
        n: list(dict.fromkeys(list(CATALOG[n].depends) + s.depends_on))
        for n, s in profile.components.items()
        if s.enabled
    }


def _cycle(deps: dict[str, list[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for d in deps.get(n, []):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state and (found := visit(d)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in deps:
        if n not in state and (found := visit(n)):
            return found
    return None


def check_profile(profile: Profile, origins: dict, default_where: str) -> None:
    """Catalog-level checks: unknown component, bad options, missing or disabled dependency, cycles."""

    def where(*loc) -> str:
        for n in range(len(loc), 0, -1):
            if loc[:n] in origins:
                return f"{origins[loc[:n]]} ({'.'.join(map(str, loc))})"
        return f"{default_where} ({'.'.join(map(str, loc))})"

    for name, spec in profile.components.items():
        if name not in CATALOG:
            close = difflib.get_close_matches(name, list(CATALOG), n=1)
            fix = f"did you mean '{close[0]}'?" if close else f"known components: {', '.join(sorted(CATALOG))}"
            raise ProfileError(f"unknown component '{name}'", where("components", name), fix)
        try:
            opts = CATALOG[name].Opts.model_validate(spec.options)
        except ValidationError as e:
            err = e.errors()[0]
            loc = ("components", name, "options") + tuple(err["loc"])
            raise ProfileError(validation_what(err), where(*loc), "see `appliance profiles show` for the component's options") from None
        if spec.enabled:
            CATALOG[name].check_options(opts)
    deps = dependencies(profile)
    for name, ds in deps.items():
        for d in ds:
            if d not in profile.components or not profile.components[d].enabled:
                state = "disabled" if d in profile.components else "not in the profile"
                raise ProfileError(f"component '{name}' needs '{d}', which is {state}", where("components", name), f"add `{d}: {{}}` under components (or disable '{name}')")
    cycle = _cycle(deps)
    if cycle:
        raise ProfileError(f"dependency cycle: {' -> '.join(cycle)}", where("components", cycle[0], "depends_on"), "remove one of these `depends_on` entries")
