"""What the wheel carries and what the import contracts see, read from pyproject.toml and git (nothing is built)."""

import re
import shutil
import subprocess
import sys
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


def _declared_files(decl) -> list[str]:
    """The checkout paths a component declaration names: its images' Python files, requirements, npm
    packages and Go mains, its host modules."""
    out = [h.module.replace(".", "/") + ".py" for h in decl.host if h.module]
    for image in decl.images.values():
        if p := image.python:
            out += [p.requirements, *p.files.values()] + ([p.npm.package] if p.npm else [])
        if image.go and image.go.main:
            out.append(image.go.main)
    return out


def test_every_file_a_component_names_is_in_the_wheel():
    """A component's checkout paths lie in the package or in a folder setup.py copies into the wheel."""
    from appliance import paths
    from appliance.components import kit

    named = [(c.name, f) for c in kit.discover() for f in _declared_files(c.decl)]
    assert named
    outside = [(c, f) for c, f in named if PurePosixPath(f).parts[0] not in (*paths.SHIPPED, "appliance")]
    assert not outside, f"add their folders to appliance/paths.py SHIPPED (and MANIFEST.in): {outside}"
    missing = [(c, f) for c, f in named if not paths.shipped(f).exists()]
    assert not missing, missing


def test_the_sdist_holds_every_shipped_folder():
    """setup.py copies paths.SHIPPED from the source it builds, so a wheel built from the sdist needs them in it."""
    from appliance import paths

    grafted = {line.split()[1] for line in (ROOT / "MANIFEST.in").read_text().splitlines() if line.startswith("graft ")}
    assert grafted == set(paths.SHIPPED)


def test_nothing_outside_paths_reaches_beside_the_package():
    """Modules find the checkout's folders through paths.shipped (which knows the wheel's copy), never by
    walking up from their own file."""
    pattern = re.compile(r"""(parents\[\d\]|\.parent\.parent)\s*/\s*["'](images|profiles|playbooks|e2e)""")
    offenders = [str(f) for f in _tracked("appliance") if f.suffix == ".py" and pattern.search((ROOT / f).read_text())]
    assert not offenders, offenders


def test_version_is_the_package_metadata():
    """`appliance --version` says pyproject.toml's version, as installed."""
    r = subprocess.run([sys.executable, "-c", "from appliance.cli import run; run()", "--version"], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "appliance, version " + tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_every_dependency_is_bounded_above():
    """A fresh install takes no major version nobody tested (supply chain: what goes into a bundle was pinned)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = [*project["dependencies"], *(d for extra in project["optional-dependencies"].values() for d in extra)]
    unbounded = [d for d in deps if not re.search(r"(<|==)", d)]
    assert not unbounded, unbounded
