"""The simulator's state folder: the record of ports and processes (sim.json) and the files it owns."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from appliance import procs as P
from appliance.errors import UserError
from appliance.util.files import atomic_write

STATE_FILE = "sim.json"
#: everything in the state folder that is ours (`remove()` deletes it)
OURS = [STATE_FILE, "kubeconfig", "pki", "etc", "etcd", "logs"]


class SimRecord:
    """sim.json under `root`: {"cluster", "ports", "procs": {name: Proc}, "created"}."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.path = self.root / STATE_FILE

    def load(self) -> dict | None:
        """The record, or None when there is none."""
        try:
            st = json.loads(self.path.read_text())
            st["procs"] = {k: P.Proc(**v) for k, v in st.get("procs", {}).items()}
            return st
        except FileNotFoundError:
            return None
        except (ValueError, TypeError, KeyError) as e:
            raise UserError(f"simulator state file is unreadable ({e})", str(self.path),
                            f"run: appliance down (or delete {self.root})") from e

    def save(self, st: dict) -> None:
        out = dict(st)
        out["procs"] = {k: v.to_dict() for k, v in st["procs"].items()}
        atomic_write(self.path, json.dumps(out, indent=2))

    def leftovers(self) -> bool:
        """Files of ours without a state record (an interrupted create)."""
        return self.root.exists() and any((self.root / x).exists() for x in OURS[1:])

    def remove(self) -> None:
        """Delete what is ours, then the folder if nothing else lives there."""
        for name in OURS:
            p = self.root / name
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            elif p.exists() or p.is_symlink():
                p.unlink(missing_ok=True)
        try:
            self.root.rmdir()
        except OSError:
            pass
