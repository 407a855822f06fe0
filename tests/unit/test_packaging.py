"""What the wheel carries and what the import contracts see, read from pyproject.toml and git (nothing is built)."""

import shutil
import subprocess
import tomllib
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _tracked(folder: str) -> list[PurePosixPath]:
    if not shutil.which("git") or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(["git", "-C", str(ROOT), "ls-files", folder], capture_output=True, text=True, check=True).stdout
    return [PurePosixPath(line) for line in out.splitlines()]


def _matches(path: PurePosixPath, package_dir: PurePosixPath, pattern: str) -> bool:
    """setuptools' glob: `pattern` relative to the package's folder, `*` within one path segment."""
    if not path.is_relative_to(package_dir):
        return False
    rel = path.relative_to(package_dir)
    return len(rel.parts) == len(PurePosixPath(pattern).parts) and rel.match(pattern)


def test_every_data_file_under_the_package_is_package_data():
    """A file components or providers read at run time (manifests, rules, Go sources, templates) is in the wheel."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = [(PurePosixPath(pkg.replace(".", "/")), p) for pkg, ps in data.items() for p in ps]
    missing = [str(f) for f in _tracked("appliance") if f.suffix != ".py" and not any(_matches(f, d, p) for d, p in patterns)]
    assert not missing, f"add patterns for these to [tool.setuptools.package-data] in pyproject.toml: {missing}"


def test_every_component_folder_is_a_package():
    """import-linter sees only packages: a folder without __init__.py would slip past pyproject.toml's contracts."""
    folders = {f.parent for f in _tracked("appliance/components") if f.name == "component.yaml"}
    assert folders and all((ROOT / d / "__init__.py").is_file() for d in folders), sorted(
        str(d) for d in folders if not (ROOT / d / "__init__.py").is_file())
