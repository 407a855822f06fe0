"""Scenario results as JUnit XML (for CI) and one readable HTML page."""

from __future__ import annotations

import base64
import html
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from appliance.e2e.runner import ScenarioResult

#: terminal colours (a notebook's traceback has them) and what XML 1.0 cannot hold
_UNPRINTABLE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def plain(text: str) -> str:
    """TEXT without terminal colour codes and characters XML cannot carry (a JUnit file must parse)."""
    return _UNPRINTABLE.sub("", text)


def junit(results: list[ScenarioResult], path: Path) -> Path:
    suites = ET.Element("testsuites")
    for r in results:
        suite = ET.SubElement(suites, "testsuite", name=r.name, tests=str(len(r.steps)),
                              failures=str(sum(s.status == "failed" for s in r.steps)),
                              skipped=str(sum(s.status == "skipped" for s in r.steps)), time=str(r.seconds))
        for s in r.steps:
            case = ET.SubElement(suite, "testcase", classname=r.name, name=s.name, time=str(s.seconds))
            if s.status == "failed":
                ET.SubElement(case, "failure", message=plain(s.message)[:500]).text = plain(s.diagnostics)
            elif s.status == "skipped":
                ET.SubElement(case, "skipped", message=plain(s.message))
            else:
                ET.SubElement(case, "system-out").text = plain(s.message)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)
    return path


def html_report(results: list[ScenarioResult], path: Path, title: str = "appliance e2e",
                plots: dict[str, list[str]] | None = None) -> Path:
    """`plots`: inline SVGs per scenario name (its time in Prometheus), shown under its steps."""
    colour = {"passed": "#1a7f37", "failed": "#cf222e", "skipped": "#9a6700"}
    parts = [f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>",
             "<style>body{font:14px sans-serif;margin:2em}td,th{padding:4px 8px;border-bottom:1px solid #ddd;vertical-align:top}"
             "pre{background:#f6f8fa;padding:8px;white-space:pre-wrap;max-width:110ch}</style>",
             f"<h1>{html.escape(title)}</h1>"]
    for r in results:
        verdict = "passed" if r.passed else "failed"
        parts.append(f"<h2 style='color:{colour[verdict]}'>{html.escape(r.name)} — {verdict} in {r.seconds}s</h2>")
        parts.append("<table><tr><th>step</th><th>kind</th><th>status</th><th>seconds</th><th>detail</th></tr>")
        for s in r.steps:
            detail = html.escape(plain(s.message))
            if s.diagnostics:
                detail += f"<pre>{html.escape(plain(s.diagnostics))}</pre>"
            parts.append(f"<tr><td>{html.escape(s.name)}</td><td>{s.kind}</td><td style='color:{colour[s.status]}'>{s.status}</td>"
                         f"<td>{s.seconds}</td><td>{detail}</td></tr>")
        parts.append("</table>")
        parts += [f"<figure style='display:inline-block;margin:8px'>{svg}</figure>" for svg in (plots or {}).get(r.name, [])]
        for art in r.artifacts:  # what the scenario drew (SVG) or saw (a browser's screenshot), inline so the page stands alone
            if art.suffix == ".svg":
                parts.append(f"<figure style='display:inline-block;margin:8px'>{art.read_text()}</figure>")
                continue
            data = base64.b64encode(art.read_bytes()).decode()
            parts.append(f"<figure><img style='max-width:100%;border:1px solid #ddd' alt='{html.escape(art.stem)}' "
                         f"src='data:image/png;base64,{data}'><figcaption>{html.escape(art.stem)}</figcaption></figure>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts))
    return path
