"""End-to-end scenarios: declarative YAML steps run against any provider's cluster, reported as JUnit + HTML."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from appliance import paths, providers
from appliance.errors import UserError

if TYPE_CHECKING:
    from appliance.e2e.scenario import Scenario

SCENARIOS_DIR = paths.shipped("e2e", "scenarios")
#: what `appliance e2e init` writes: a scenario of the user's own and the manifests it applies
TEMPLATE_DIR = paths.shipped("e2e", "template")
#: the profile e2e brings up when neither --profile nor --provider is given
DEFAULT_PROFILE = "ci"
#: a Kubernetes manifest, not a scenario (a scenario has no such key)
MANIFEST = re.compile(r"^apiVersion:", re.MULTILINE)


def default_profile(provider: str | None) -> str:
    """The profile e2e brings up on `provider` when no --profile is given: the provider's e2e_profile."""
    return providers.get(provider).e2e_profile if provider else DEFAULT_PROFILE


def scenario_files() -> list[Path]:
    """The appliance's own scenario files."""
    return sorted(SCENARIOS_DIR.glob("*.yaml"))


def files_in(targets: list[str]) -> list[Path]:
    """The scenario files `targets` name: a file each, or a folder's `*.yaml` but the Kubernetes manifests
    beside them (a top-level `apiVersion:`); no targets: the appliance's own."""
    found: list[Path] = []
    for t in targets or [str(SCENARIOS_DIR)]:
        p = Path(t)
        if p.is_dir():
            inside = [f for f in sorted(p.glob("*.yaml")) + sorted(p.glob("*.yml")) if not MANIFEST.search(f.read_text(errors="replace"))]
            if not inside:
                raise UserError("no scenario files (*.yaml) in this folder", t, "name a folder of scenarios", code=2)
            found += inside
        elif p.is_file():
            found.append(p)
        else:
            raise UserError("no such scenario file or folder", t, "name scenario files or folders that exist", code=2)
    return found


def validate(files: list[Path]) -> list[UserError]:
    """Every problem in these scenario files (one line each, file:line first), no cluster: the schema, the
    components and files they name, and scenario names used twice."""
    from appliance.components import CATALOG
    from appliance.e2e import scenario

    problems, first = [], {}
    for path in files:
        s, errors = scenario.check(path, set(CATALOG))
        problems += errors
        if s is not None and first.setdefault(s.name, path) != path:
            line = next((i for i, text in enumerate(path.read_text().splitlines(), 1) if text.startswith("name:")), 1)
            problems.append(UserError(f"scenario name '{s.name}' is taken by {first[s.name]}", f"{path}:{line} (name)",
                                      "give each scenario its own name (--scenario picks by name)", code=2))
    return problems


def init(folder: Path) -> list[Path]:
    """Write the template scenario, its manifests, its trainer project (a folder) and the scenarios' JSON
    Schema (for editors) into `folder`; refuses to overwrite any of them."""
    from appliance.e2e import scenario

    files = {str(p.relative_to(TEMPLATE_DIR)): p.read_text() for p in sorted(TEMPLATE_DIR.rglob("*"))
             if p.is_file() and "__pycache__" not in p.parts}
    files["scenario.schema.json"] = json.dumps(scenario.json_schema(), indent=2) + "\n"
    if folder.exists() and not folder.is_dir():
        raise UserError("not a folder", str(folder), "name a new folder, or one to add a scenario to", code=2)
    if taken := [n for n in files if (folder / n).exists()]:
        raise UserError(f"would overwrite {', '.join(taken)}", str(folder), "name a new folder, or move those files away", code=2)
    try:
        for name, text in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)
    except OSError as e:
        raise UserError(f"cannot write there ({e.strerror})", str(folder), "name a folder you may write to", code=2) from None
    return [folder / n for n in files]


def select(names: Sequence[str] = (), folders: Sequence[str] = ()) -> list[Scenario]:
    """The scenarios to run: the named ones (each from `folders` by its `name:`, else the appliance's own
    of that name) or, with no names, every scenario of `folders` (none given: all the appliance's own).
    Each file is validated first: a problem stops the run before any cluster work (exit 2)."""
    from appliance.e2e import scenario

    files = files_in(list(folders)) if folders else []
    if problems := validate(files):
        first = problems[0]
        more = f" ({len(problems) - 1} more: `appliance e2e validate {' '.join(folders)}` lists them)" if len(problems) > 1 else ""
        raise UserError(first.what, first.where, first.fix + more, code=2)
    theirs = {s.name: s for s in map(scenario.load, files)}
    if not names:
        return list(theirs.values()) or [scenario.load(p) for p in scenario_files()]
    own = {p.stem: p for p in scenario_files()}
    if unknown := [n for n in names if n not in theirs and n not in own]:
        raise UserError(f"no scenario named '{unknown[0]}'", ", ".join(folders) or str(SCENARIOS_DIR),
                        f"known: {', '.join([*theirs, *own])}", code=2)
    return [theirs[n] if n in theirs else scenario.load(own[n]) for n in dict.fromkeys(names)]


def run(kubeconfig: str, provider: str, enabled: set[str], name: str | Sequence[str] | None, out_dir: Path, report=None,
        folders: Sequence[str] = (), junit: Path | None = None, registry: str = ""):
    """Run the scenarios `select` picks (`name`: one name or several) that fit this provider and these
    components; write `junit` (default out_dir/junit.xml) and out_dir/report.html. `registry`: the profile's
    `cluster.images.registry`, where a scenario's built images go for the nodes to pull."""
    from appliance.e2e import reports
    from appliance.e2e.runner import Runner
    from appliance.kube import Kube

    chosen = []
    for s in select([name] if isinstance(name, str) else list(name or ()), folders):
        if provider in s.providers and set(s.components) <= enabled:
            chosen.append(s)
        elif report:
            report.message(f"scenario '{s.name}' left out: it needs provider {'/'.join(s.providers)} and components {sorted(s.components)}")
    if not chosen:
        raise UserError(f"no scenario fits provider '{provider}' with components {sorted(enabled)}", ", ".join(folders) or str(SCENARIOS_DIR),
                        "pick another --scenario, --provider or --profile", code=2)
    runner = Runner(Kube(kubeconfig), enabled=enabled, artifacts=out_dir / "artifacts", pods_run=providers.get(provider).pods_run,
                    registry=registry, provider=provider)
    results, plots = [], {}
    for s in chosen:
        start = time.time()
        results.append(runner.run(s, report))
        if "monitoring" in enabled:
            plots[s.name] = _plots(runner.kube, start, time.time())
    reports.junit(results, junit or out_dir / "junit.xml")
    reports.html_report(results, out_dir / "report.html", f"appliance e2e on {provider}", plots)
    return results


def _plots(kube, start: float, end: float) -> list[str]:
    """GPU allocation, utilization and the stack's memory over a scenario's time (none when Prometheus is away)."""
    from appliance.components.prom import Prometheus, PrometheusError
    from appliance.e2e.plots import scenario_plots

    try:
        return scenario_plots(Prometheus(kube), start, end)
    except PrometheusError:
        return []
