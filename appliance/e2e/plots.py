"""Plots of a scenario's time in the e2e report: the cluster's GPU allocation and utilization and the stack's
memory, from Prometheus' query_range where the monitoring component runs; drawn as inline SVG line plots
(no plotting library)."""

from __future__ import annotations

import html

#: (title, unit, PromQL: one line per series, its legend from the label `name` or the first label)
PANELS = [
    ("GPUs allocated of capacity", "GPUs",
     'label_replace(sum(kube_pod_container_resource_requests{resource="nvidia_com_gpu"}) or vector(0), "name", "allocated", "", "")'
     ' or label_replace(sum(kube_node_status_capacity{resource="nvidia_com_gpu"}), "name", "capacity", "", "")'),
    ("GPU utilization", "%",
     'label_replace(avg(DCGM_FI_DEV_GPU_UTIL{pod!=""}), "name", "allocated GPUs", "", "")'
     ' or label_replace(avg(DCGM_FI_DEV_GPU_UTIL), "name", "all GPUs", "", "")'),
    ("memory of the stack", "MiB",
     'sum by (namespace) (container_memory_working_set_bytes{container!="",namespace!~"user-.*"}) / 2^20'
     ' or label_replace(process_resident_memory_bytes{job="prometheus"} / 2^20, "namespace", "prometheus", "", "")'),
]
COLOURS = ["#0969da", "#cf222e", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#1b7c83", "#57606a"]


def svg_frame(title: str, width: int, height: int, margins: tuple[int, int, int, int]) -> tuple[list[str], int, int]:
    """An SVG's opening, its title and the plot area's frame; returns (parts, plot width, plot height)."""
    left, right, top, bottom = margins
    w, h = width - left - right, height - top - bottom
    return [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' font-family='sans-serif' font-size='11'>",
            f"<text x='{left}' y='14' font-weight='bold'>{html.escape(title)}</text>",
            f"<rect x='{left}' y='{top}' width='{w}' height='{h}' fill='none' stroke='#d0d7de'/>"], w, h


def svg_lines(title: str, unit: str, series: dict[str, list[tuple[float, float]]], width: int = 560, height: int = 200) -> str:
    """A line plot of `series` (legend → [(unix time, value)]): seconds since the first sample on x, 0..max on y."""
    pts = [p for s in series.values() for p in s]
    left, right, top, bottom = 56, 150, 24, 28
    out, w, h = svg_frame(title, width, height, (left, right, top, bottom))
    if not pts:
        out.append(f"<text x='{left + 8}' y='{top + h / 2}' fill='#57606a'>no samples</text></svg>")
        return "".join(out)
    t0, t1 = min(t for t, _ in pts), max(t for t, _ in pts)
    vmax = max(v for _, v in pts) or 1.0
    span = (t1 - t0) or 1.0

    def xy(t: float, v: float) -> str:
        return f"{left + (t - t0) / span * w:.1f},{top + h - v / vmax * h:.1f}"

    out.append(f"<text x='{left - 4}' y='{top + 4}' text-anchor='end'>{vmax:.4g}</text>"
               f"<text x='{left - 4}' y='{top + h}' text-anchor='end'>0</text>"
               f"<text x='{left - 4}' y='{top + h / 2}' text-anchor='end' fill='#57606a'>{html.escape(unit)}</text>"
               f"<text x='{left}' y='{height - 8}'>0 s</text>"
               f"<text x='{left + w}' y='{height - 8}' text-anchor='end'>{span:.0f} s</text>")
    for i, (name, s) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        if len(s) == 1:
            out.append(f"<circle cx='{xy(*s[0]).split(',')[0]}' cy='{xy(*s[0]).split(',')[1]}' r='2' fill='{colour}'/>")
        else:
            out.append(f"<polyline fill='none' stroke='{colour}' stroke-width='1.5' points='{' '.join(xy(t, v) for t, v in s)}'/>")
        out.append(f"<text x='{left + w + 8}' y='{top + 10 + 14 * i}' fill='{colour}'>{html.escape(name[:24])}</text>")
    out.append("</svg>")
    return "".join(out)


def _legend(metric: dict) -> str:
    return metric.get("name") or metric.get("namespace") or next(iter(metric.values()), "") or "value"


def scenario_plots(prom, start: float, end: float) -> list[str]:
    """The PANELS over [start, end] as SVG (a panel without samples says so); `prom` is a monitoring Prometheus."""
    step = max(5.0, (end - start) / 120)
    out = []
    for title, unit, expr in PANELS:
        rows = prom.query_range(expr, start - step, end + step, step)
        out.append(svg_lines(title, unit, {_legend(r["metric"]): [(float(t), float(v)) for t, v in r["values"]] for r in rows}))
    return out
