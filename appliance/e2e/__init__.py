"""End-to-end scenarios: declarative YAML steps run against any provider's cluster, reported as JUnit + HTML."""

from __future__ import annotations

import re
import time
from pathlib import Path

from appliance import paths, providers
from appliance.errors import UserError

SCENARIOS_DIR = paths.shipped("e2e", "scenarios")
#: the profile e2e brings up when neither --profile nor --provider is given
DEFAULT_PROFILE = "ci"
#: a Kubernetes manifest, not a scenario (a scenario has no such key)
MANIFEST = re.compile(r"^apiVersion:", re.MULTILINE)


def default_profile(provider: str | None) -> str:
    """The profile e2e brings up on `provider` when no --profile is given: the provider's e2e_profile."""
    return providers.get(provider).e2e_profile if provider else DEFAULT_PROFILE


def scenario_files(name: str | None = None) -> list[Path]:
    found = [p for p in sorted(SCENARIOS_DIR.glob("*.yaml")) if name in (None, p.stem)]
    if not found:
        known = ", ".join(p.stem for p in SCENARIOS_DIR.glob("*.yaml"))
        raise UserError(f"no scenario named '{name}'", str(SCENARIOS_DIR), f"known: {known}", code=2)
    return found


def files_in(targets: list[str]) -> list[Path]:
    """The scenario files `targets` name: a file each, or a folder's `*.yaml` but the Kubernetes manifests
    beside them (a top-level `apiVersion:`); no targets: the appliance's own."""
    found: list[Path] = []
    for t in targets or [str(SCENARIOS_DIR)]:
        p = Path(t)
        if p.is_dir():
            inside = [f for f in sorted(p.glob("*.yaml")) + sorted(p.glob("*.yml")) if not MANIFEST.search(f.read_text())]
            if not inside:
                raise UserError(f"no scenario files (*.yaml) in '{t}'", "e2e validate", "name a folder of scenarios", code=2)
            found += inside
        elif p.is_file():
            found.append(p)
        else:
            raise UserError(f"no scenario file or folder '{t}'", "e2e validate", "name scenario files or folders that exist", code=2)
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


def run(kubeconfig: str, provider: str, enabled: set[str], name: str | None, out_dir: Path, report=None):
    """Run the scenarios that fit this provider and these components; write junit.xml and report.html."""
    from appliance.e2e import reports, scenario
    from appliance.e2e.runner import Runner
    from appliance.kube import Kube

    chosen = [s for s in map(scenario.load, scenario_files(name)) if provider in s.providers and set(s.components) <= enabled]
    if not chosen:
        raise UserError(f"no scenario fits provider '{provider}' with components {sorted(enabled)}", str(SCENARIOS_DIR),
                        "pick another --scenario, --provider or --profile")
    runner = Runner(Kube(kubeconfig), enabled=enabled, artifacts=out_dir / "artifacts")
    results, plots = [], {}
    for s in chosen:
        start = time.time()
        results.append(runner.run(s, report))
        if "monitoring" in enabled:
            plots[s.name] = _plots(runner.kube, start, time.time())
    reports.junit(results, out_dir / "junit.xml")
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
