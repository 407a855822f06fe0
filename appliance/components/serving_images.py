"""The model-server image: Debian + python3 + the `kserve` package and numpy (wheels fetched on the host,
installed offline) + images/model-server/stub_server.py."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REPO = "appliance.local/model-server"
LOCK = ROOT / "images" / "model-server" / "requirements.lock"


def files() -> dict[str, Path]:
    return {"/app/stub_server.py": ROOT / "images" / "model-server" / "stub_server.py"}


def server_ref() -> str:
    from appliance.components import builds

    return builds.python_image_ref(REPO, builds.read_lock(LOCK), files())


def server_image(report=print) -> tuple[str, Path]:
    from appliance.components import builds

    return builds.python_image(REPO, builds.read_lock(LOCK), files(), ["python3", "/app/stub_server.py"], report=report)


if __name__ == "__main__":
    import time

    t0 = time.monotonic()
    ref, archive = server_image()
    print(ref, archive, archive.stat().st_size, f"{time.monotonic() - t0:.1f}s")
