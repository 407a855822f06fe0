"""Find the binaries the images and the kind provider need, through the appliance toolchain."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from appliance.errors import UserError
from appliance.paths import cache_dir


def ensure_tools(names: list[str], report=print) -> dict[str, Path]:
    """{name: path} for each tool: the toolchain builds what is missing.

    $APPLIANCE_TOOLCHAIN_BIN (a folder) wins when set, so a CI job can hand in
    prebuilt binaries.
    """
    override = os.environ.get("APPLIANCE_TOOLCHAIN_BIN")
    if override:
        found = {n: Path(override, n) for n in names if Path(override, n).is_file()}
        if len(found) == len(names):
            return found
    try:
        from appliance.toolchain import Toolchain  # type: ignore[attr-defined]
    except ImportError:
        Toolchain = None  # noqa: N806
    if Toolchain is not None:
        return {k: Path(v) for k, v in Toolchain(source="auto", report=report).ensure(list(names)).items()}
    # Toolchain package not importable: use whatever its cache already holds, then PATH.
    out: dict[str, Path] = {}
    for n in names:
        hits = sorted(cache_dir("toolchain").glob(f"*/bin/{n}"))
        p = hits[-1] if hits else (Path(shutil.which(n)) if shutil.which(n) else None)
        if p is None:
            raise UserError(f"'{n}' is not built yet", "toolchain", "run: appliance toolchain build")
        out[n] = p
    return out
