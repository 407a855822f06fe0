"""A scenario's `build:` step: the user's Python project as an image, made by the appliance's own Python image
builder (`images.builds.PythonImage`: Debian python3, the requirements' wheels downloaded here through the
host's pip configuration and installed offline, the project's files under /app), then put where the
cluster's nodes find it without a registry, as component images are (`images.delivery`)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from appliance.e2e.scenario import Build
from appliance.images import builds, delivery

#: the repository of users' images: a host the nodes never resolve (loaded, or pushed to the profile's registry)
REPO = f"{delivery.LOCAL_HOST}/e2e"
#: never copied into the image: hidden files and folders (.git, .venv), bytecode caches
SKIPPED = re.compile(r"(^|/)(\.[^/]+|__pycache__)(/|$)")


def image(spec: Build, base: Path) -> builds.PythonImage:
    """The image of `spec` (its paths relative to `base`, the scenario's folder); its ref is known unbuilt."""
    context = base / spec.context
    files = tuple((dst, src) for dst, src in builds.tree_files(context, "/app").items() if not SKIPPED.search(dst.removeprefix("/app/")))
    return builds.PythonImage(f"{REPO}/{spec.name}", context / spec.requirements, files, tuple(spec.entrypoint), resolve=True)


def build_and_deliver(spec: Build, base: Path, kube, pods_run: bool, registry: str = "") -> tuple[str, str]:
    """Build the image (cached by its inputs) and make it available to the nodes: pushed to `registry` when the
    profile names one, else loaded into each node container (kind); where pods run no containers (the
    simulator) the reference is all they need. Returns (ref, how it reached the nodes)."""
    ref, archive = image(spec, base).build(report=lambda m: print(m, file=sys.stderr, flush=True))
    if not pods_run:
        return ref, "pods here run no containers (the simulator): they need only its reference"
    if registry:
        delivery.push(archive, ref, registry)
        return ref, f"pushed to {registry}"
    loaded = delivery.load_image_into_nodes(kube, archive, ref)
    return ref, f"loaded into {len(loaded)} node(s)" if loaded else "the nodes hold it already"
