"""The last release as a program to run (for the upgrade test and benchmark): the release CHANGELOG.md names
(its section names the commit it was cut from), checked out as a git worktree with a virtualenv of its own
(the build caches are shared with this tree, so only what changed builds)."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]


def last_release() -> tuple[str, str]:
    """(version, commit) of the newest release in CHANGELOG.md."""
    m = re.search(r"^## (\d+\.\d+\.\d+) — [^\n]*\n+[^\n]*\(commit ([0-9a-f]{7,40})\)", (ROOT / "CHANGELOG.md").read_text(), re.M)
    if not m:
        raise SystemExit("CHANGELOG.md names no release commit")
    return m.group(1), m.group(2)


def _run(argv: list[str], **kw) -> None:
    p = subprocess.run(argv, capture_output=True, text=True, timeout=900, **kw)
    if p.returncode:
        raise SystemExit(f"{' '.join(argv)} failed: {(p.stdout + p.stderr)[-3000:]}")


@contextlib.contextmanager
def released(work: Path) -> Iterator[tuple[str, Path]]:
    """(version, its `appliance` program) of the last release, installed under the folder `work`; the worktree
    removed after."""
    version, commit = last_release()
    tree = Path(work) / f"v{version}"
    _run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), commit])
    try:
        _run([sys.executable, "-m", "venv", str(tree / ".venv")])
        _run([str(tree / ".venv/bin/pip"), "install", "-q", "uv>=0.5,<1"])
        _run([str(tree / ".venv/bin/python"), "tools/venv_install.py", "-e", "."], cwd=tree)
        yield version, tree / ".venv/bin/appliance"
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True, timeout=120)
