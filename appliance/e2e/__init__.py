"""End-to-end scenarios: declarative YAML steps run against a cluster's kubeconfig."""

from __future__ import annotations

from pathlib import Path

from appliance.errors import UserError

SCENARIOS_DIR = Path(__file__).resolve().parents[2] / "e2e" / "scenarios"


def scenarios() -> list[Path]:
    return sorted(SCENARIOS_DIR.glob("*.yaml"))


def run_cli(scenario: str | None, provider: str | None) -> None:
    """Entry for `appliance e2e`; the scenario runner lands with the ML stack (issue 7)."""
    found = [p for p in scenarios() if scenario in (None, p.stem)]
    if not found:
        raise UserError(f"no scenario{' ' + repr(scenario) if scenario else 's'} found", str(SCENARIOS_DIR),
                        "add scenario files there (the runner and first scenarios arrive with the ML stack)")
    raise UserError("the scenario runner is not built yet", str(SCENARIOS_DIR), "track issue 7")
