"""The trainer image: Debian + python3 + numpy (wheels fetched on the host, installed offline) + the
stub model's training script (e2e/models/stub_train.py at /app/stub_train.py)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REPO = "appliance.local/trainer"
#: a stable alias scenarios can name (re-pointed at every load)
STABLE_REF = f"{REPO}:stub"
LOCK = ROOT / "images" / "trainer" / "requirements.lock"


def files() -> dict[str, Path]:
    return {"/app/stub_train.py": ROOT / "e2e" / "models" / "stub_train.py"}


def trainer_ref() -> str:
    from appliance.components import builds

    return builds.python_image_ref(REPO, builds.read_lock(LOCK), files())


def trainer_image(report=print) -> tuple[str, Path]:
    from appliance.components import builds

    return builds.python_image(REPO, builds.read_lock(LOCK), files(), ["python3", "/app/stub_train.py"], report=report)


if __name__ == "__main__":
    import time

    t0 = time.monotonic()
    ref, archive = trainer_image()
    print(ref, archive, archive.stat().st_size, f"{time.monotonic() - t0:.1f}s")
