"""Where binaries come from: official pinned downloads, or a build from Go modules.

Both sources produce the same thing: a static binary written to a path the
cache chooses. Verification (sha256) and bookkeeping live in `core.py`.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Iterable

from appliance import progress
from appliance.errors import UserError
from appliance.paths import cache_dir
from appliance.toolchain.pins import K8S_STAGING_FALLBACK, TOOLS, Tool, staging_version

Report = Callable[[str], None]

GO_HINT = (
    "install Go >= 1.22 (apt-get install golang-go, or unpack https://go.dev/dl into /usr/local/go) "
    "or use a host that can reach dl.k8s.io and github.com"
)


class SourceError(Exception):
    """A source could not produce a tool (the caller may try another source)."""


class Source:
    """Produces tool binaries. `name` keys the cache folder."""

    name = ""

    def available(self) -> tuple[bool, str]:
        return True, ""

    def fetch(self, tools: list[Tool], dest: Path, report: Report) -> dict[str, float]:
        """Write each tool to dest/<name>; return seconds spent per tool. Raise SourceError."""
        raise NotImplementedError


# --------------------------------------------------------------------------- download


def parse_checksum(text: str, filename: str) -> str:
    """A digest from a '.sha256' file (just the hex) or a SHA256SUMS list ('<hex>  <file>')."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in lines:
        parts = ln.split()
        if len(parts) >= 2 and parts[-1].lstrip("*").rsplit("/", 1)[-1] == filename and re.fullmatch(r"[0-9a-f]{64}", parts[0]):
            return parts[0]
    if len(lines) == 1 and re.fullmatch(r"[0-9a-f]{64}", lines[0].split()[0]):
        return lines[0].split()[0]
    raise SourceError(f"no sha256 for {filename} in checksum file")


class ReleaseSource(Source):
    """Official release binaries (dl.k8s.io, GitHub releases), each checked against its sha256."""

    name = "download"
    probe_url = "https://dl.k8s.io/"

    def __init__(self, connect_timeout: float = 3.0, timeout: float = 120.0):
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self._reachable: bool | None = None

    def _get(self, url: str, timeout: float) -> bytes:
        req = urllib.request.Request(url, headers={"User-Agent": "appliance-toolchain"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.read()
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise SourceError(f"{url}: {getattr(e, 'reason', e)}") from e

    def available(self) -> tuple[bool, str]:
        if self._reachable is None:
            try:
                self._get(self.probe_url, self.connect_timeout)
                self._reachable, self._why = True, ""
            except SourceError as e:
                # an HTTP error status still means the host answered
                cause = e.__cause__
                self._reachable = isinstance(cause, urllib.error.HTTPError)
                self._why = "" if self._reachable else f"downloads unreachable ({e})"
        return self._reachable, self._why

    def fetch(self, tools: list[Tool], dest: Path, report: Report) -> dict[str, float]:
        ok, why = self.available()
        if not ok:
            raise SourceError(why)
        took = {}
        for tool in tools:
            t0 = time.monotonic()
            url = tool.fmt(tool.url)
            report(f"downloading {tool.name} {tool.version} from {url}")
            blob = self._get(url, self.timeout)
            filename = url.rsplit("/", 1)[-1]
            want = tool.sha256.get(tool.fmt("{arch}"))
            if not want:
                if not tool.checksum_url:
                    raise SourceError(f"{tool.name}: no published sha256 to verify against")
                want = parse_checksum(self._get(tool.fmt(tool.checksum_url), self.timeout).decode(), filename)
            got = hashlib.sha256(blob).hexdigest()
            if got != want:
                raise SourceError(f"{tool.name}: sha256 mismatch for {url} (got {got}, want {want})")
            if tool.archive_member:
                member = tool.fmt(tool.archive_member)
                with tarfile.open(fileobj=io.BytesIO(blob)) as tf:
                    f = tf.extractfile(member)
                    if f is None:
                        raise SourceError(f"{tool.name}: {member} missing from {filename}")
                    blob = f.read()
            out = dest / tool.name
            out.write_bytes(blob)
            out.chmod(0o755)
            took[tool.name] = time.monotonic() - t0
        return took


# --------------------------------------------------------------------------- build


def find_go() -> str | None:
    for cand in (shutil.which("go"), "/usr/local/go/bin/go", "/usr/lib/go/bin/go"):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


def wrapper_gomod(module_name: str, requires: dict[str, str], replaces: dict[str, str] | None = None, go: str = "1.22.0") -> str:
    """The go.mod of a throwaway module whose only job is to build someone else's commands."""
    lines = [f"module {module_name}", "", f"go {go}", ""]
    lines.append("require (")
    lines += [f"\t{m} {v}" for m, v in sorted(requires.items())]
    lines.append(")")
    if replaces:
        lines += ["", "replace ("]
        lines += [f"\t{m} => {m} {v}" for m, v in sorted(replaces.items())]
        lines.append(")")
    return "\n".join(lines) + "\n"


def staging_modules(kubernetes_gomod: str) -> list[str]:
    """k8s.io/<staging> modules that k8s.io/kubernetes' go.mod replaces with ./staging/src/..."""
    found = re.findall(r"^\s*(k8s\.io/[\w.-]+)\s*=>\s*\./staging/src/", kubernetes_gomod, re.M)
    return sorted(set(found))


def kubernetes_wrapper_gomod(version: str, staging: Iterable[str] | None = None) -> str:
    """go.mod requiring k8s.io/kubernetes@version with every staging module pinned to v0.<minor>.<patch>.

    k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with
    local paths; replace directives of a dependency are ignored, so the wrapper
    has to say which published version each staging module is.
    """
    mods = list(staging) if staging else [f"k8s.io/{m}" for m in K8S_STAGING_FALLBACK]
    sv = staging_version(version)
    return wrapper_gomod(
        "appliance.local/toolchain/kubernetes",
        {"k8s.io/kubernetes": version},
        {m: sv for m in mods},
    )


def go_cache_env() -> dict[str, str]:
    """Shared Go caches under the appliance cache: rebuilds of any version reuse them."""
    return {
        "GOMODCACHE": str(cache_dir("toolchain", "go", "mod")),
        "GOCACHE": str(cache_dir("toolchain", "go", "build")),
    }


class GoBuildSource(Source):
    """Build each tool from its Go module (module proxy only), CGO off, static, trimmed."""

    name = "build"

    def __init__(self, workdir: Path | None = None, go: str | None = None, jobs: int | None = None):
        self.go = go or find_go()
        self.workdir = workdir
        self.jobs = jobs

    def available(self) -> tuple[bool, str]:
        if not self.go:
            return False, "Go is not installed"
        return True, ""

    def env(self) -> dict[str, str]:
        env = dict(os.environ)  # keeps GOPROXY / GONOSUMDB / proxies the host set
        env.update(go_cache_env())
        env.update({"CGO_ENABLED": "0", "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod", "GOWORK": "off"})
        return env

    def _run(self, args: list[str], cwd: Path, log: Path, timeout: float = 3600) -> str:
        with open(log, "ab") as lf:
            lf.write(("$ " + " ".join(args) + "\n").encode())
            lf.flush()
            p = subprocess.run(args, cwd=cwd, env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
            lf.write(p.stdout)
        if p.returncode != 0:
            tail = p.stdout.decode(errors="replace").strip().splitlines()[-3:]
            raise SourceError(f"{' '.join(args[:3])} failed: {' | '.join(tail)} (log: {log})")
        return p.stdout.decode(errors="replace")

    def prepare(self, group: str, tools: list[Tool], src: Path, log: Path) -> None:
        """Write the wrapper module for one group."""
        src.mkdir(parents=True, exist_ok=True)
        tool = tools[0]
        if group == "kubernetes":
            staging = None
            try:
                out = self._run([self.go, "mod", "download", "-json", f"{tool.module}@{tool.version}"], src, log)
                import json

                gomod = Path(json.loads(out)["GoMod"]).read_text()
                staging = staging_modules(gomod) or None
            except (SourceError, ValueError, KeyError, OSError):
                staging = None
            text = kubernetes_wrapper_gomod(tool.version, staging)
        else:
            text = wrapper_gomod(f"appliance.local/toolchain/{group}", {tool.module: tool.version})
        gm = src / "go.mod"
        if not gm.exists() or gm.read_text() != text:
            gm.write_text(text)
            (src / "go.sum").unlink(missing_ok=True)

    def fetch(self, tools: list[Tool], dest: Path, report: Report) -> dict[str, float]:
        ok, why = self.available()
        if not ok:
            raise SourceError(why)
        work = self.workdir or dest.parent / "src"
        log = dest.parent / "build.log"
        took: dict[str, float] = {}
        groups: dict[str, list[Tool]] = {}
        for t in tools:
            groups.setdefault(t.group, []).append(t)
        for group, members in groups.items():
            src = work / group
            t0 = time.monotonic()
            with progress.build(", ".join(t.name for t in members), report,
                                f"from {members[0].module}@{members[0].version} (go build, CGO off)"):
                self.prepare(group, members, src, log)
                ldflags = ["-s", "-w", "-extldflags=-static", *members[0].ldflags]
                with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".build-") as tmp:
                    args = [self.go, "build", "-trimpath", "-ldflags", " ".join(ldflags)]
                    if self.jobs:
                        args += ["-p", str(self.jobs)]
                    args += ["-o", tmp + "/"]
                    args += [t.package for t in members]
                    self._run(args, src, log)
                    for t in members:
                        # `go build -o dir/` names the binary after the package's last element
                        produced = Path(tmp, t.package.rsplit("/", 1)[-1])
                        if t.package.endswith("/v3"):  # go.etcd.io/etcd/server/v3 -> "server"
                            produced = Path(tmp, t.package.split("/")[-2])
                        if not produced.exists():
                            cands = list(Path(tmp).iterdir())
                            raise SourceError(f"{t.name}: build produced {[c.name for c in cands]}, not {produced.name}")
                        os.replace(produced, dest / t.name)
            per = (time.monotonic() - t0) / len(members)
            for t in members:
                took[t.name] = per
        return took


def make_source(name: str) -> Source:
    if name == "download":
        return ReleaseSource()
    if name == "build":
        return GoBuildSource()
    raise UserError(f"unknown toolchain source '{name}'", "--source", "use auto, download or build", code=2)


__all__ = [
    "Source",
    "SourceError",
    "ReleaseSource",
    "GoBuildSource",
    "wrapper_gomod",
    "kubernetes_wrapper_gomod",
    "staging_modules",
    "parse_checksum",
    "find_go",
    "TOOLS",
    "GO_HINT",
]
