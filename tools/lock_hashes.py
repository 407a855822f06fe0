"""Write each wheel's sha256 into the images' lock files (`name==version --hash=sha256:...`), so that a build on
a new machine downloads with --require-hashes and gets exactly the wheels locked here. Run after changing a lock:

    .venv/bin/python tools/lock_hashes.py [images/notebook/requirements.lock ...]   (default: every images/*/requirements.lock)

The hashes are those of the wheels the image build downloads for its platform and Python (the suite its
component.yaml builds it on; taken from the build cache, downloaded first where it lacks them)."""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from appliance.images import builds  # noqa: E402
from appliance.util.files import sha256_file  # noqa: E402


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pythons() -> dict[Path, builds.Py]:
    """The Python of each image lock a component declares (`python.suite`); others are bookworm's."""
    from appliance.components.kit import discover

    return {(ROOT / img.python.requirements).resolve(): builds.PYTHONS[img.python.suite]
            for kit in discover() for img in kit.decl.images.values() if img.python}


def add_hashes(lock: Path, py: builds.Py = builds.PY) -> int:
    """Rewrite `lock` with a hash on every requirement line; returns how many lines got one."""
    reqs = builds.read_lock(lock)
    folder = builds.wheels(reqs, builds.wheels_key(reqs, py), py=py)
    found = {}
    for whl in folder.glob("*.whl"):
        name, version = whl.name.split("-")[:2]
        found[(_norm(name), version)] = sha256_file(whl)
    out, n = [], 0
    for line in lock.read_text().splitlines():
        body, hash_, comment = line.partition("#")
        req = body.split(builds.HASH, 1)[0].strip()
        if not req:
            out.append(line)
            continue
        name, _, version = req.partition("==")
        sha = found.get((_norm(name), version))
        if sha is None:
            raise SystemExit(f"{lock}: no downloaded wheel for {req} in {folder}")
        out.append(f"{req}{builds.HASH}sha256:{sha}" + (f"  #{comment}" if hash_ else ""))
        n += 1
    lock.write_text("\n".join(out) + "\n")
    return n


def main(argv: list[str]) -> int:
    declared = pythons()
    for lock in [Path(a) for a in argv] or sorted(ROOT.glob("images/*/requirements.lock")):
        print(f"{lock}: {add_hashes(lock, declared.get(lock.resolve(), builds.PY))} hashes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
