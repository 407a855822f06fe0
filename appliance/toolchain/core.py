"""The toolchain: pinned binaries in a verified cache, fetched or built on demand.

    tc = Toolchain(source="auto")
    paths = tc.ensure(["etcd", "kube-apiserver"])   # {name: Path}
    tc.path("kubectl")                              # Path, or UserError if not there
    tc.status()                                      # [ToolStatus(...)]

Cache: cache_dir("toolchain", "<set version>-<source>")/{bin/, manifest.json, build.log}.
The manifest holds each binary's sha256; a binary that no longer matches is
reported as corrupted by status() and rebuilt by ensure().
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable

from appliance.errors import UserError
from appliance.paths import cache_dir, note
from appliance.toolchain.pins import ORDER, SET_VERSION, TOOLS, Tool
from appliance.toolchain.sources import GO_HINT, GoBuildSource, ReleaseSource, Source, SourceError
from appliance.util import offline
from appliance.util.files import atomic_write, file_lock, sha256_file

SOURCES = ("auto", "download", "build")
MANIFEST = "manifest.json"


@dataclass
class ToolStatus:
    tool: str
    version: str
    source: str  # "download" / "build" / "" when missing
    path: str
    ok: bool
    state: str  # "ok", "missing", "corrupted"
    seconds: float = 0.0  # how long fetching/building took


class Cache:
    """One cache folder (one set version, one source) with its manifest."""

    def __init__(self, source: str, root: Path | None = None, set_version: str = SET_VERSION):
        self.source = source
        self.root = Path(root) if root else cache_dir("toolchain", f"{set_version}-{source}")
        self.bin = self.root / "bin"

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def manifest(self) -> dict:
        try:
            data = json.loads(self.manifest_path.read_text())
            return data if isinstance(data, dict) and isinstance(data.get("tools"), dict) else {"tools": {}}
        except (OSError, ValueError):
            return {"tools": {}}

    def _write_manifest(self, data: dict) -> None:
        atomic_write(self.manifest_path, json.dumps(data, indent=2, sort_keys=True) + "\n")

    def record(self, tool: Tool, seconds: float) -> None:
        data = self.manifest()
        p = self.bin / tool.name
        data["tools"][tool.name] = {
            "version": tool.version,
            "source": self.source,
            "sha256": sha256_file(p),
            "size": p.stat().st_size,
            "seconds": round(seconds, 1),
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        self._write_manifest(data)

    def forget(self, name: str) -> None:
        data = self.manifest()
        if data["tools"].pop(name, None) is not None:
            self._write_manifest(data)

    def check(self, tool: Tool, deep: bool = True) -> str:
        """'ok', 'missing' or 'corrupted' (checksum or version differs from the manifest)."""
        entry = self.manifest()["tools"].get(tool.name)
        p = self.bin / tool.name
        if not entry or not p.exists():
            return "missing"
        if entry.get("version") != tool.version:
            return "missing"  # an older pin: treat as absent
        if p.stat().st_size != entry.get("size"):
            return "corrupted"
        if deep and sha256_file(p) != entry.get("sha256"):
            return "corrupted"
        return "ok"

    @contextlib.contextmanager
    def lock(self):
        """One writer per cache folder (two `appliance up` at once must not race)."""
        with file_lock(self.root / ".lock"):
            yield


class Toolchain:
    """Pinned binaries, from official downloads or built from Go modules.

    source: "auto" (download, fall back to build within a few seconds when the
    download hosts don't answer), "download", or "build".
    """

    def __init__(self, source: str = "auto", report: Callable[[str], None] | None = None, root: Path | None = None,
                 sources: dict[str, Source] | None = None):
        if source not in SOURCES:
            raise UserError(f"unknown toolchain source '{source}'", "--source", "use auto, download or build", code=2)
        self.source = source
        self.report = report or (lambda msg: None)
        base = Path(root) if root else None
        self.caches = {s: Cache(s, base / f"{SET_VERSION}-{s}" if base else None) for s in ("download", "build")}
        self.sources: dict[str, Source] = sources or {"download": ReleaseSource(), "build": GoBuildSource()}

    # -- lookup

    def _tool(self, name: str) -> Tool:
        if name not in TOOLS:
            raise UserError(f"unknown tool '{name}'", "toolchain", f"known tools: {', '.join(ORDER)}", code=2)
        return TOOLS[name]

    def _order(self) -> list[str]:
        """Caches to look in: the chosen source only, or download then build for auto."""
        return ["download", "build"] if self.source == "auto" else [self.source]

    def _found(self, name: str, deep: bool = True) -> tuple[Cache | None, str]:
        tool = self._tool(name)
        worst = "missing"
        for s in self._order():
            state = self.caches[s].check(tool, deep=deep)
            if state == "ok":
                note("paths", self.caches[s].bin / name)
                return self.caches[s], "ok"
            if state == "corrupted":
                worst = "corrupted"
        return None, worst

    def path(self, name: str) -> Path:
        """Where `name` is, without fetching (cheap size check). UserError if absent."""
        cache, state = self._found(name, deep=False)
        if cache is None:
            raise UserError(f"{name} is {state} in the toolchain cache", "toolchain", f"run: appliance toolchain fetch {name}")
        return cache.bin / name

    def status(self, tools: Iterable[str] | None = None) -> list[ToolStatus]:
        out = []
        for name in tools or ORDER:
            tool = self._tool(name)
            cache, state = self._found(name)
            if cache:
                entry = cache.manifest()["tools"][name]
                out.append(ToolStatus(name, tool.version, cache.source, str(cache.bin / name), True, "ok", entry.get("seconds", 0.0)))
            else:
                cand = self.caches[self._order()[-1]]
                out.append(ToolStatus(name, tool.version, "", str(cand.bin / name), False, state))
        return out

    # -- fetch

    def ensure(self, tools: Iterable[str] | None = None, force: bool = False) -> dict[str, Path]:
        """Make sure each tool is in the cache and verified; fetch or build what isn't. {name: Path}."""
        names = list(tools) if tools is not None else list(ORDER)
        names = [n for n in ORDER if n in names] + [n for n in names if n not in ORDER]
        for n in names:
            self._tool(n)
        result: dict[str, Path] = {}
        todo: list[str] = []
        for n in names:
            cache, state = (None, "missing") if force else self._found(n)
            if cache:
                result[n] = cache.bin / n
            else:
                if state == "corrupted":
                    self.report(f"{n}: checksum mismatch in the cache, fetching it again")
                todo.append(n)
        if not todo:
            return result
        offline.refuse(f"the toolchain's {', '.join(todo)}")

        errors: list[str] = []
        for s in self._order():
            if not todo:
                break
            src = self.sources[s]
            ok, why = src.available()
            if not ok:
                errors.append(f"{s}: {why}")
                if s == "download" and self.source == "auto":
                    self.report(f"{why}; building from Go modules instead")
                continue
            cache = self.caches[s]
            with cache.lock():
                # another process may have finished while we waited for the lock
                still = [n for n in todo if force or cache.check(TOOLS[n]) != "ok"]
                for n in todo:
                    if n not in still:
                        result[n] = cache.bin / n
                cache.bin.mkdir(parents=True, exist_ok=True)
                for n in still:
                    cache.forget(n)
                    (cache.bin / n).unlink(missing_ok=True)
                done: list[str] = []
                try:
                    # one tool at a time for downloads; builds group by module inside the source
                    batches = [still] if s == "build" else [[n] for n in still]
                    for batch in batches:
                        took = src.fetch([TOOLS[n] for n in batch], cache.bin, self.report)
                        for n in batch:
                            cache.record(TOOLS[n], took.get(n, 0.0))
                            result[n] = note("paths", cache.bin / n)
                            done.append(n)
                except SourceError as e:
                    errors.append(f"{s}: {e}")
                    self.report(f"{s} failed: {e}")
            todo = [n for n in todo if n not in result]

        if todo:
            build_ok, _ = self.sources["build"].available()
            if not build_ok and "build" in self._order():
                raise UserError(
                    f"cannot get {', '.join(todo)}: no Go toolchain and the downloads failed",
                    "toolchain",
                    GO_HINT,
                )
            if self.source == "download":
                fix = "check access to dl.k8s.io and github.com, or use --source build (needs Go and the module proxy)"
            else:
                fix = f"check access to the Go module proxy ($GOPROXY); build log: {self.caches['build'].root / 'build.log'}"
            raise UserError(f"cannot get {', '.join(todo)}: {errors[-1] if errors else 'unknown error'}", "toolchain", fix)
        return {n: result[n] for n in names}


def status_json(statuses: list[ToolStatus]) -> list[dict]:
    return [asdict(s) for s in statuses]
