"""Checks of the journey scenario, run on the host with the scenario's KUBECONFIG.

  journey_check.py trained NS            (as the user) the experiment succeeded; its best parameters trained both PyTorchJobs
  journey_check.py story NS [EXPERIMENT WORKFLOW...]
                                         (as the user) the pipelines' steps (state, time) and the trials (parameters vs loss)
                                         as SVG in $E2E_ARTIFACTS (the report shows them); default: the journey's
  journey_check.py purge NS PREFIX       (admin) delete the objects under PREFIX in the user's bucket, with the user's keys
  journey_check.py leftovers NS [PREFIX] (admin) wait until nothing the scenario made is left in NS but the home claim
                                         (and, with PREFIX, nothing under it in the user's bucket)
"""

from __future__ import annotations

import html
import os
import re
import sys
import time
from datetime import datetime
from pathlib import Path

from appliance.e2e.plots import svg_frame

sys.path.insert(0, str(Path(__file__).resolve().parent))

EXPERIMENT, WORKFLOWS = "journey-tune", ("journey", "journey-update")
#: (group, version, plural) the scenario makes in the user's namespace; none may be left after cleanup
KINDS = [("argoproj.io", "v1alpha1", "workflows"), ("kubeflow.org", "v1beta1", "experiments"), ("kubeflow.org", "v1beta1", "trials"),
         ("kubeflow.org", "v1beta1", "suggestions"), ("kubeflow.org", "v1", "pytorchjobs"),
         ("serving.kserve.io", "v1beta1", "inferenceservices")]
PHASE_COLOURS = {"Succeeded": "#1a7f37", "Failed": "#cf222e", "Error": "#cf222e", "Skipped": "#9a6700", "Omitted": "#9a6700"}


def _crd():
    from kubernetes import client, config

    config.load_kube_config()
    return client.CustomObjectsApi()


def _params(assignments: list[dict]) -> dict[str, str]:
    return {p["name"]: p["value"] for p in assignments}


def _loss(trial: dict) -> float | None:
    for m in ((trial.get("status") or {}).get("observation") or {}).get("metrics") or []:
        if m["name"] == "loss" and m.get("latest") not in (None, "unavailable"):
            return float(m["latest"])
    return None


def _arg(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def trained(ns: str) -> None:
    crd = _crd()
    exp = crd.get_namespaced_custom_object("kubeflow.org", "v1beta1", ns, "experiments", EXPERIMENT)
    conds = {c["type"]: c["status"] for c in exp["status"].get("conditions") or []}
    assert conds.get("Succeeded") == "True", f"experiment {EXPERIMENT}: {conds}"
    best = _params(exp["status"]["currentOptimalTrial"]["parameterAssignments"])
    for wf, extra in zip(WORKFLOWS, (0, 20), strict=True):
        job = crd.get_namespaced_custom_object("kubeflow.org", "v1", ns, "pytorchjobs", f"{wf}-train")
        args = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["args"]
        used = {"lr": float(_arg(args, "--lr")), "epochs": int(_arg(args, "--epochs"))}
        assert used == {"lr": float(best["lr"]), "epochs": int(best["epochs"]) + extra}, (wf, used, best)
        done = {c["type"]: c["status"] for c in job["status"].get("conditions") or []}
        assert done.get("Succeeded") == "True", (wf, done)
        print(f"{wf}-train: {used} Succeeded")
    print(f"trained with the best parameters {best} of {exp['status'].get('trialsSucceeded')} trials")


def _t(stamp: str | None) -> float | None:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() if stamp else None


def gantt_svg(title: str, rows: list[tuple[str, float, float | None, str, str]], width: int = 720) -> str:
    """A timeline: a bar per row (label, start, end or None, text after the bar, colour), in start order."""
    rows = sorted(rows, key=lambda r: (r[1], r[0]))
    left, top, bar = 220, 28, 18
    height = top + bar * len(rows) + 24
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' font-family='sans-serif' font-size='11'>",
           f"<text x='4' y='14' font-weight='bold'>{html.escape(title)}</text>"]
    if not rows:
        return "".join(out) + "<text x='4' y='40'>nothing</text></svg>"
    t0 = min(r[1] for r in rows)
    t1 = max((r[2] or r[1]) for r in rows)
    scale = (width - left - 130) / ((t1 - t0) or 1)
    for i, (label, start, end, text, colour) in enumerate(rows):
        y, w = top + i * bar, max(((end or start) - start) * scale, 2)
        x = left + (start - t0) * scale
        out.append(f"<text x='4' y='{y + 12}'>{html.escape(label[:34])}</text>"
                   f"<rect x='{x:.1f}' y='{y + 2}' width='{w:.1f}' height='{bar - 5}' fill='{colour}'><title>{html.escape(label)}</title></rect>"
                   f"<text x='{x + w + 4:.1f}' y='{y + 12}'>{html.escape(text)}</text>")
    out.append(f"<text x='{left}' y='{height - 6}'>0 s</text><text x='{width - 130}' y='{height - 6}' text-anchor='end'>{t1 - t0:.0f} s</text></svg>")
    return "".join(out)


def steps_svg(workflows: list[dict], width: int = 720) -> str:
    """The pipelines' steps as a timeline: a bar per step from its start to its end, coloured by state."""
    rows = []
    for wf in workflows:
        for n in (wf.get("status") or {}).get("nodes", {}).values():
            start, end = _t(n.get("startedAt")), _t(n.get("finishedAt"))
            if n["type"] in ("Pod", "Skipped") and start is not None:
                rows.append((f"{wf['metadata']['name']}/{n['displayName']}", start, end,
                             f"{n['phase']} {(end or start) - start:.0f}s", PHASE_COLOURS.get(n["phase"], "#0969da")))
    return gantt_svg("pipeline steps (state, seconds)", rows, width)


def trials_svg(trials: list[dict], best: str, width: int = 520, height: int = 240) -> str:
    """The trials: learning rate (x) against loss (y, log scale), each labelled with its epochs; the best one ringed."""
    import math

    pts = [(float(_params(t["spec"]["parameterAssignments"])["lr"]), loss, _params(t["spec"]["parameterAssignments"])["epochs"],
            t["metadata"]["name"]) for t in trials if (loss := _loss(t)) is not None and loss > 0]
    left, right, top, bottom = 60, 20, 24, 32
    out, w, h = svg_frame("Katib trials: loss by learning rate (labels: epochs)", width, height, (left, right, top, bottom))
    if not pts:
        return "".join(out) + f"<text x='{left + 8}' y='{top + h / 2}'>no trial reported a loss</text></svg>"
    xs, ys = [p[0] for p in pts], [math.log10(p[1]) for p in pts]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    for lr, loss, epochs, name in pts:
        x = left + (lr - x0) / ((x1 - x0) or 1) * w
        y = top + h - (math.log10(loss) - y0) / ((y1 - y0) or 1) * h
        ring = f"<circle cx='{x:.1f}' cy='{y:.1f}' r='7' fill='none' stroke='#1a7f37'/>" if name == best else ""
        out.append(f"<circle cx='{x:.1f}' cy='{y:.1f}' r='3.5' fill='#0969da'><title>{html.escape(name)}: lr={lr:.4g} "
                   f"epochs={epochs} loss={loss:.4g}</title></circle>{ring}<text x='{x + 6:.1f}' y='{max(y - 4, top + 10):.1f}'>{html.escape(str(epochs))}</text>")
    out.append(f"<text x='{left - 4}' y='{top + 8}' text-anchor='end'>{10 ** y1:.2g}</text>"
               f"<text x='{left - 4}' y='{top + h}' text-anchor='end'>{10 ** y0:.2g}</text>"
               f"<text x='{left}' y='{height - 8}'>lr {x0:.3g}</text><text x='{left + w}' y='{height - 8}' text-anchor='end'>lr {x1:.3g}</text></svg>")
    return "".join(out)


def story(ns: str, experiment: str = EXPERIMENT, *workflows: str) -> None:
    crd = _crd()
    wfs = [crd.get_namespaced_custom_object("argoproj.io", "v1alpha1", ns, "workflows", name) for name in workflows or WORKFLOWS]
    exp = crd.get_namespaced_custom_object("kubeflow.org", "v1beta1", ns, "experiments", experiment)
    trials = crd.list_namespaced_custom_object("kubeflow.org", "v1beta1", ns, "trials",
                                               label_selector=f"katib.kubeflow.org/experiment={experiment}")["items"]
    best = exp["status"]["currentOptimalTrial"].get("bestTrialName", "")
    out = Path(os.environ.get("E2E_ARTIFACTS", "."))
    out.mkdir(parents=True, exist_ok=True)
    (out / "journey-1-steps.svg").write_text(steps_svg(wfs))
    (out / "journey-2-trials.svg").write_text(trials_svg(trials, best))
    from submit import report

    for wf in wfs:
        print(report(wf))
    for t in sorted(trials, key=lambda t: t["metadata"]["name"]):
        print(f"  {t['metadata']['name']}: {_params(t['spec']['parameterAssignments'])} loss={_loss(t)}{' (best)' if t['metadata']['name'] == best else ''}")
    print(f"{len(trials)} trials; steps and trials drawn in {out}")


def _bucket_keys(creds: dict, prefix: str) -> list[str]:
    from store import request

    status, body = request(creds, "GET", creds["bucket"], query={"list-type": "2", "prefix": prefix})
    if status != 200:
        raise SystemExit(f"listing {creds['bucket']}/{prefix}: {status} {body[:200]!r}")
    return [k.decode() for k in re.findall(rb"<Key>([^<]+)</Key>", body)]


def purge(ns: str, prefix: str) -> None:
    from store import keys, request

    creds = keys(ns)
    found = _bucket_keys(creds, prefix)
    for key in found:
        status, body = request(creds, "DELETE", creds["bucket"], key)
        if status not in (200, 204):
            raise SystemExit(f"deleting {creds['bucket']}/{key}: {status} {body[:200]!r}")
    print(f"removed {len(found)} objects under {creds['bucket']}/{prefix}")


def left(ns: str, prefix: str = "") -> list[str]:
    """What the scenario made that is still in `ns` (pods, claims but the home, objects of KINDS, bucket objects
    under `prefix` when given)."""
    from kubernetes import client, config
    from store import keys

    config.load_kube_config()
    core, crd = client.CoreV1Api(), client.CustomObjectsApi()
    user = ns.removeprefix("user-")
    found = [f"pod {p.metadata.name}" for p in core.list_namespaced_pod(ns).items]
    found += [f"claim {c.metadata.name}" for c in core.list_namespaced_persistent_volume_claim(ns).items if c.metadata.name != f"home-{user}"]
    for group, version, plural in KINDS:
        found += [f"{plural} {o['metadata']['name']}" for o in crd.list_namespaced_custom_object(group, version, ns, plural)["items"]]
    found += [f"object {k}" for k in _bucket_keys(keys(ns), prefix)] if prefix else []
    return found


def leftovers(ns: str, prefix: str = "", timeout: float = 280) -> None:
    deadline = time.monotonic() + timeout
    while (found := left(ns, prefix)) and time.monotonic() < deadline:
        time.sleep(3)
    if found:
        raise SystemExit(f"left in {ns}: {', '.join(found)}")
    print(f"nothing left in {ns} but home-{ns.removeprefix('user-')}")


def cli(doc: str, commands: dict, argv: list[str]) -> int:
    """Run the command named first in `argv` with the rest as its arguments; else print `doc` (exit 2)."""
    if not argv or argv[0] not in commands:
        print(doc)
        return 2
    commands[argv[0]](*argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(cli(__doc__, {"trained": trained, "story": story, "purge": purge, "leftovers": leftovers}, sys.argv[1:]))
