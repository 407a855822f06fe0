"""Find the binaries the images and the kind provider need, through the appliance toolchain."""

from __future__ import annotations

import os
from pathlib import Path

from appliance.toolchain import Toolchain


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
    return {k: Path(v) for k, v in Toolchain(source="auto", report=report).ensure(list(names)).items()}
