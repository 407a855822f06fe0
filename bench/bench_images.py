#!/usr/bin/env python3
"""What a process start costs in the appliance's Python images: CPU seconds to import each image's main
modules with the bytecode built into the image, against the same image with Python pointed away from it
(PYTHONPYCACHEPREFIX: every module compiled, as before images carried bytecode), same run, read-only root
file system as in a pod; and each image's size, against its size without the bytecode. JSON to bench/results/images.json.

    python -m bench.bench_images                 # the ci profile's Python images, 3 rounds
    python -m bench.bench_images --rounds 1 --images notebook-hub

Needs Docker (the images are loaded into it) and the images built (`make prebuild`, or built here).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tarfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance import profiles  # noqa: E402
from appliance.components import CATALOG  # noqa: E402
from appliance.runtime import Runtime  # noqa: E402
from bench.common import write  # noqa: E402

#: image -> (its component, the modules its process imports at start)
IMPORTS = {
    "notebook-hub": ("notebooks", "jupyterhub.app, kubespawner"),
    "notebook": ("notebooks", "jupyter_server.serverapp, jupyterlab, ipykernel.kernelapp"),
    "model-server": ("kserve", "kserve, numpy"),
    "gpu-exporter": ("monitoring", "argparse, ssl, json, uuid, dataclasses, http.server, urllib.request"),  # the stdlib
}
TIMED = "import time; t = time.process_time(); import {}; print(time.process_time() - t)"


def _pyc_bytes(archive: Path) -> int:
    """Bytes of bytecode in a docker-archive's layers."""
    total = 0
    with tarfile.open(archive) as outer:
        for m in outer:
            if m.name.endswith(".tar"):
                with tarfile.open(fileobj=outer.extractfile(m)) as layer:
                    total += sum(x.size for x in layer if x.isreg() and x.name.endswith(".pyc"))
    return total


def _image(name: str) -> tuple[str, Path]:
    """Build (or take from the cache) image `name` of the ci profile, load it into Docker; (ref, archive)."""
    component = IMPORTS[name][0]
    profile = profiles.load("ci", [], "kind").profile
    kit = CATALOG[component](profile.components[component].options, Runtime(pods_run=True))
    (image,) = [i for i in kit.images() if i.name == name]
    ref, archive = image.build()
    subprocess.run(["docker", "load", "-i", str(archive)], check=True, capture_output=True, timeout=600)
    return ref, archive


def _import_cpu(ref: str, modules: str, compiled: bool) -> float:
    env = [] if compiled else ["-e", "PYTHONPYCACHEPREFIX=/nonexistent"]
    r = subprocess.run(["docker", "run", "--rm", "--read-only", "--network", "none", *env, "--entrypoint", "python3", ref, "-c",
                        TIMED.format(modules)], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        sys.exit(f"bench_images: {ref} could not import {modules}: {r.stderr.strip().splitlines()[-1:]}")
    return float(r.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--images", nargs="*", default=list(IMPORTS), choices=list(IMPORTS))
    a = ap.parse_args()
    rows = []
    for name in a.images:
        ref, archive = _image(name)
        modules = IMPORTS[name][1]
        # alternate which goes first, so neither always meets a cold page cache
        runs = {True: [], False: []}
        for i in range(a.rounds):
            for compiled in ((True, False) if i % 2 == 0 else (False, True)):
                runs[compiled].append(_import_cpu(ref, modules, compiled))
        built, compiling = statistics.mean(runs[True]), statistics.mean(runs[False])
        rows += [{"metric": f"{name}: import CPU, bytecode from the image", "value": round(built, 2), "unit": "s",
                  "baseline": round(compiling, 2), "ratio": round(built / compiling, 2)},
                 {"metric": f"{name}: image size", "value": round(archive.stat().st_size / 2**20), "unit": "MiB",
                  "baseline": round((archive.stat().st_size - (pyc := _pyc_bytes(archive))) / 2**20),
                  "ratio": round(archive.stat().st_size / (archive.stat().st_size - pyc), 2)}]
    write("images", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
