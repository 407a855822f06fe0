"""monitoring: the shipped alert rules with the options filled in (plus a user's rules file, refused with its
line when it does not parse), Prometheus' size limit, and the firing alerts for `status`."""

from __future__ import annotations

import hashlib
import json
import string
from pathlib import Path

import yaml

from appliance.components.kit import quantity_mi
from appliance.errors import ProfileError

RULES = Path(__file__).resolve().parent / "rules" / "alerts.yml"
#: samples are dropped above this share of the volume, so a full disk is an alert, not a crash loop
RETENTION_SHARE = 0.8


def _check_rules(text: str, where: str) -> dict:
    """Parse a Prometheus rules file; a bad one is one line naming the file and line."""
    fix = "see https://prometheus.io/docs/prometheus/latest/configuration/recording_rules/ for the format"
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise ProfileError(f"rules do not parse: {getattr(e, 'problem', None) or e}", f"{where}{line}", fix) from None
    groups = doc.get("groups") if isinstance(doc, dict) else None
    if not isinstance(groups, list):
        raise ProfileError("rules file has no `groups:` list", where, fix)
    for g in groups:
        rules = g.get("rules") if isinstance(g, dict) else None
        if not isinstance(g, dict) or not g.get("name") or not isinstance(rules, list):
            raise ProfileError(f"rule group {g!r:.60} needs `name` and a `rules` list", where, fix)
        for r in rules:
            if not isinstance(r, dict) or not (r.get("alert") or r.get("record")) or not str(r.get("expr") or "").strip():
                raise ProfileError(f"rule {r!r:.60} in group {g['name']} needs `alert` (or `record`) and `expr`", where, fix)
    return doc


def _rules_text(options) -> str:
    """The shipped rules with the options filled in, plus the groups of `extra_rules`."""
    text = string.Template(RULES.read_text()).safe_substitute(
        gpu_idle_minutes=options.gpu_idle_minutes, pvc_full_percent=options.pvc_full_percent)
    doc = _check_rules(text, str(RULES))
    if options.extra_rules:
        path = Path(options.extra_rules).expanduser()
        if not path.is_file():
            raise ProfileError(f"rules file {path} not found", "components.monitoring.options.extra_rules", "give the path of a Prometheus rules file")
        doc["groups"] += _check_rules(path.read_text(), str(path))["groups"]
        text = yaml.safe_dump(doc, sort_keys=False)
    return text


def check(options) -> None:
    """With the profile's checks: the rules (a user's `extra_rules` above all) parse."""
    _rules_text(options)


def context(options, kube) -> dict:
    rules = _rules_text(options)
    return {
        "rules": rules,
        "retention_size": f"{int(quantity_mi(options.storage_size) * RETENTION_SHARE)}MB",
        "memory_limit": f"{quantity_mi(options.memory) * 4}Mi",
        "config_hash": hashlib.sha256((rules + json.dumps(options.model_dump(), sort_keys=True)).encode()).hexdigest()[:16],
    }


def notes(options, kube) -> list[str]:
    """The firing alerts, one line each (or why they cannot be read)."""
    from appliance.components.prom import Prometheus, PrometheusError

    try:
        alerts = Prometheus(kube, options.namespace).alerts()
    except PrometheusError as e:
        return [f"alerts unknown: {e}"]
    firing = [a for a in alerts if a.get("state") == "firing"]
    if not firing:
        return ["no alerts firing"]
    return [f"FIRING {a['labels'].get('alertname')}: {(a.get('annotations') or {}).get('summary', '')}" for a in firing]
