"""The wheel carries the checkout's folders the package reads at run time (`paths.SHIPPED`) in appliance/_data;
everything else is in pyproject.toml."""

import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

sys.path.insert(0, str(Path(__file__).resolve().parent))
from appliance.paths import SHIPPED  # noqa: E402 — the package's own list, read from this checkout

#: built or local leftovers that a checkout may hold beside the shipped files
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "reports", "node_modules", ".ipynb_checkpoints")


class BuildWithData(build_py):
    """build_py, then the shipped folders under appliance/_data (an editable install reads the checkout instead)."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for name in SHIPPED:
            dest = Path(self.build_lib, "appliance", "_data", name)
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(name, dest, ignore=IGNORED)


setup(cmdclass={"build_py": BuildWithData})
