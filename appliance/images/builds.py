"""Shared build helpers for components: static Go binaries from modules, controller-gen CRDs, and
scratch-like images from a directory tree. Everything is cached under `cache_dir("components", ...)`
keyed by module version (and content hash for images)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from appliance import paths, progress
from appliance.images.archive import FileEntry
from appliance.toolchain.sources import find_go
from appliance.util import offline, yamls
from appliance.util.files import atomic_write, sha256_file

CONTROLLER_TOOLS = ("sigs.k8s.io/controller-tools", "v0.16.5")


class BuildError(RuntimeError):
    pass


def _go_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("CGO_ENABLED", "0")
    env["CGO_ENABLED"] = "0"
    env.setdefault("GOFLAGS", "-mod=mod")
    # GOPROXY is honoured from the caller's environment; never set here.
    env.update(extra or {})
    return env


def _run(cmd: list[str], cwd: str | Path | None = None, env: dict | None = None, log: Path | None = None) -> str:
    p = subprocess.run(cmd, cwd=cwd, env=env, text=True, capture_output=True)
    if log:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"$ {' '.join(cmd)}\n{p.stdout}\n{p.stderr}")
    if p.returncode != 0:
        raise BuildError(f"{' '.join(cmd[:3])}... failed ({p.returncode}): {p.stderr.strip()[-1500:]}")
    return p.stdout


def go_binary_path(module: str, version: str, name: str) -> Path:
    """Where `go_binary` caches the binary `name` of module@version."""
    return paths.cache_dir("components", "go", module.replace("/", "_"), version) / name


def go_binary_name(name: str, main: Path | None = None) -> str:
    """The cached binary's name: with our own `main`, keyed by its content."""
    return f"{name}-{file_hash(main)[:12]}" if main else name


def go_binary(module: str, version: str, package: str, name: str, ldflags: str = "-s -w", report=None,
              tags: str = "", env: dict[str, str] | None = None, main: Path | None = None) -> Path:
    """`go install module/package@version` statically (CGO_ENABLED=0, -trimpath, build `tags`, extra `env`
    such as GOWORK=off) into the cache; cached by (module, version, package). `main`: our own main.go for
    the package (upstream's library, our program), cached by its content too. Returns the binary's path."""
    name = go_binary_name(name, main)
    binary = go_binary_path(module, version, name)
    out = binary.parent
    if binary.is_file() and os.access(binary, os.X_OK):
        return binary
    offline.refuse(f"{name} ({module} {version})")
    go = find_go()
    if not go:
        raise BuildError("`go` is needed to build " + module + " (install Go >= 1.22)")
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="gobin-", dir=out))
    pkg = f"{module}/{package}".rstrip("/") if package else module
    t0 = time.monotonic()
    flags = ["-trimpath", f"-ldflags={ldflags}", *([f"-tags={tags}"] if tags else [])]
    with progress.build(name, report, f"{version} from {module} (go install)"):
        def in_copy() -> None:
            """Build inside a writable copy of the module source, where its go.mod applies in full."""
            src = _writable_copy(module_dir(module, version), tmp / "src")
            if main:
                shutil.copyfile(main, src / package / "main.go")
            _run(["nice", "-n", "10", go, "build", *flags, "-o", str(tmp / "bin" / name), f"./{package}"],
                 cwd=src, env=_go_env(env), log=out / f"{name}.build.log")
            shutil.rmtree(src, ignore_errors=True)
            os.replace(tmp / "bin" / name, tmp / name)
            shutil.rmtree(tmp / "bin", ignore_errors=True)

        try:
            try:
                if main:
                    in_copy()
                else:
                    _run(["nice", "-n", "10", go, "install", *flags, f"{pkg}@{version}"],
                         env=_go_env({**(env or {}), "GOBIN": str(tmp)}), log=out / f"{name}.build.log")
            except BuildError as e:
                if main or not any(m in str(e) for m in ("@v/list", "deprecation", "replace directives", "exclude directives")):
                    raise
                # `go install pkg@version` refused (the proxy serves the version but not the module's
                # version list, or the module's go.mod has replace lines)
                in_copy()
            built = [p for p in tmp.iterdir() if p.is_file()]
            if len(built) != 1:
                raise BuildError(f"go install {pkg}@{version} produced {[p.name for p in built]}")
            os.replace(built[0], binary)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    (out / f"{name}.json").write_text(json.dumps({"module": module, "version": version, "package": package,
                                                  "seconds": round(time.monotonic() - t0, 1)}))
    return binary


def patched_go_binary(module: str, version: str, package: str, binary: Path, patch: Callable[[Path], None],
                      detail: str | None = None) -> Path:
    """`package` of module@version built statically (`go build` with the kit's Go environment) from a writable
    copy of the module source that `patch(src)` changes first, into `binary`: a cache path the caller keys by
    what its patch adds (its build log beside it). `detail`: shown as an uncounted build line while it builds."""
    if binary.is_file():
        return binary
    binary.parent.mkdir(parents=True, exist_ok=True)
    shown = progress.build(binary.name, detail=detail, counted=False) if detail is not None else contextlib.nullcontext()
    with shown, tempfile.TemporaryDirectory(prefix=f"{binary.name}-", dir=binary.parent) as tmp:
        src = _writable_copy(module_dir(module, version), Path(tmp, "src"))
        patch(src)
        _run(["nice", "-n", "10", find_go() or "go", "build", "-trimpath", "-ldflags=-s -w", "-o", str(Path(tmp, binary.name)),
              f"./{package}"], cwd=src, env=_go_env(), log=binary.parent / f"{binary.name}.build.log")
        os.replace(Path(tmp, binary.name), binary)
    return binary


def _writable_copy(src: Path, dest: Path, ignore=None) -> Path:
    shutil.copytree(src, dest, ignore=ignore)
    for p in dest.rglob("*"):
        if not p.is_symlink():
            p.chmod(0o755 if p.is_dir() else 0o644)
    dest.chmod(0o755)
    return dest


def module_dir(module: str, version: str) -> Path:
    """Source directory of a module version in the Go module cache (downloaded through GOPROXY)."""
    offline.refuse(f"a build from {module} {version}")
    out = _run([find_go() or "go", "mod", "download", "-json", f"{module}@{version}"], env=_go_env())
    return Path(json.loads(out)["Dir"])


def controller_gen() -> Path:
    return go_binary(CONTROLLER_TOOLS[0], CONTROLLER_TOOLS[1], "cmd/controller-gen", "controller-gen")


def crds_cached(module: str, version: str, key: str) -> bool:
    """Whether generate_crds of these inputs is cached (no controller-gen needed)."""
    out = paths.cache_dir("components", "crds", module.replace("/", "_"), version, key)
    return out.is_dir() and any(out.glob("*.yaml"))


def generate_crds(module: str, version: str, api_paths: list[str], key: str, crd_options: str = "crd") -> Path:
    """Run controller-gen over the module's Go API types (`api_paths` relative to the module root);
    CRD YAMLs are cached under cache_dir/components/crds/<module>/<version>/<key>/. Returns that folder."""
    out = paths.cache_dir("components", "crds", module.replace("/", "_"), version, key)
    if crds_cached(module, version, key):
        return out
    offline.refuse(f"the CRDs of {module} {version}")
    gen = controller_gen()
    with progress.build(f"CRDs of {module.rsplit('/', 1)[-1]} {version}", counted=False, detail="controller-gen"):
        src = module_dir(module, version)
        # The module cache is read-only and may lack a go.sum entry set for controller-gen's loader: work
        # on a writable copy of the module source.
        work = Path(tempfile.mkdtemp(prefix="crdgen-"))
        t0 = time.monotonic()
        try:
            _writable_copy(src, work / "src", shutil.ignore_patterns(".git", "test", "docs", "hack", "manifests", "config", "charts", "python", "sdk", "examples"))
            tmp_out = work / "out"
            _run(["nice", "-n", "10", str(gen), crd_options, *[f"paths=./{p}/..." for p in api_paths], f"output:crd:artifacts:config={tmp_out}"],
                 cwd=work / "src", env=_go_env(), log=out.parent / f"{key}.gen.log")
            out.mkdir(parents=True, exist_ok=True)
            for f in tmp_out.glob("*.yaml"):
                shutil.copy(f, out / f.name)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    (out / "build.json").write_text(json.dumps({"seconds": round(time.monotonic() - t0, 1)}))
    return out


def load_crds(folder: Path, keep: set[str] | None = None) -> list[dict]:
    """CRD objects from generated YAMLs; `keep` filters by `spec.names.kind`."""
    import copy

    key = (str(folder), tuple(sorted(keep)) if keep is not None else None)
    if key not in _CRD_CACHE:
        _CRD_CACHE[key] = _parse_crds(folder, keep)
    return copy.deepcopy(_CRD_CACHE[key])


_CRD_CACHE: dict = {}


def _parse_crds(folder: Path, keep: set[str] | None) -> list[dict]:
    """Parse once into crds.json next to the YAMLs (a 1 MB CRD takes seconds through PyYAML)."""
    parsed = folder / "crds.json"
    if parsed.exists():
        docs = json.loads(parsed.read_text())
    else:
        docs = [d for f in sorted(folder.glob("*.yaml")) for d in yamls.load_all(f.read_text()) if d]
        atomic_write(parsed, json.dumps(docs))
    crds = []
    for doc in docs:
        if doc.get("kind") == "CustomResourceDefinition" and (keep is None or doc["spec"]["names"]["kind"] in keep):
            doc.setdefault("metadata", {}).pop("annotations", None)
            doc["metadata"].pop("creationTimestamp", None)
            crds.append(doc)
    return crds


def file_hash(*files: Path) -> str:
    """A short content hash of files (image tags, cache keys)."""
    return sha256_file(*files)[:16]


# ----------------------------------------------------------------------------- images (no registry)

def binary_image(binary: Path, repo: str, path: str, extra: list | None = None) -> tuple[str, Path]:
    """A scratch-like image holding one static binary at `path` (plus a /tmp), tagged by a hash of its contents,
    written as a docker-archive under the cache. Returns (ref, archive)."""
    from appliance.images.archive import FileEntry, ImageSpec, write_docker_archive, write_layer

    h = hashlib.sha256(f"{file_hash(binary)}\0{path}".encode())
    for e in extra or []:
        h.update(e.path.encode() + (e.data if e.data is not None else e.src.read_bytes()) + str(e.mode).encode())
    tag = h.hexdigest()[:16]
    out = paths.cache_dir("components", "images", repo.rsplit("/", 1)[-1], tag)
    archive = out / "image.tar"
    ref = f"{repo}:{tag}"
    if archive.is_file():
        return ref, archive
    out.mkdir(parents=True, exist_ok=True)
    layer = out / "layer.tar"
    entries = [FileEntry(path.lstrip("/"), src=binary, mode=0o755),
               FileEntry("etc/passwd", data=b"root:x:0:0:root:/:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/:/sbin/nologin\n", mode=0o644),
               FileEntry("tmp/.keep", data=b"", mode=0o644)] + list(extra or [])
    write_layer(entries, layer)
    write_docker_archive(ImageSpec(ref=ref, layers=[layer], entrypoint=[path], user="65532"), archive)
    layer.unlink(missing_ok=True)
    return ref, archive


# ----------------------------------------------------------------------------- Python images (air-gap)

PYTHON_IMAGE_BUILDER = "4"
#: dropped from the Debian rootfs and the wheels: nothing a python3 service needs at run time (and each Python's
#: own unused parts, `Py.drop`)
SLIM_DROP = ("usr/share/locale/", "usr/share/i18n/", "usr/share/zoneinfo/", "usr/lib/x86_64-linux-gnu/gconv/",
             "usr/lib/x86_64-linux-gnu/perl-base/", "var/cache/debconf/", "var/lib/apt/", "usr/share/doc/", "usr/share/man/")
WHEEL_PLATFORMS = ["manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64", "linux_x86_64"]
BASE_PACKAGES = ["python3", "ca-certificates"]


@dataclass(frozen=True)
class Py:
    """The python3 of a Debian suite, which a Python image runs: its wheels' tag and where its modules live."""

    suite: str
    tag: str  # "311": CPython 3.11

    @property
    def lib(self) -> str:
        return f"usr/lib/python3.{self.tag[1:]}/"

    @property
    def compiles(self) -> bool:
        """Whether our Python compiles the image's modules (the bytecode format is a minor version's)."""
        return f"{sys.version_info.major}{sys.version_info.minor}" == self.tag

    @property
    def dirs(self) -> tuple[str, ...]:
        """Where the image keeps the modules compiled at build (the stdlib, Debian's Python packages, the wheels)."""
        return (self.lib, "usr/lib/python3/dist-packages/")

    @property
    def drop(self) -> tuple[str, ...]:
        return SLIM_DROP + tuple(self.lib + d for d in ("test/", "lib2to3/", "idlelib/", "tkinter/", "ensurepip/", "pydoc_data/"))


#: the suites a Python image may be built on (component.yaml's `python.suite`)
PYTHONS = {"bookworm": Py("bookworm", "311"), "trixie": Py("trixie", "313")}
#: the default: the suite of every other image
PY = PYTHONS["bookworm"]


HASH = " --hash="


def read_lock(path: Path) -> list[str]:
    """Requirement lines of a lock file (`name==version`; comments and `--hash=` options left out)."""
    lines = [ln.split("#", 1)[0].strip() for ln in path.read_text().splitlines()]
    return [ln.split(HASH, 1)[0].strip() for ln in lines if ln]


def hashed(path: Path) -> bool:
    """Whether every requirement of a lock file carries its wheel's sha256 (pip then checks each download)."""
    lines = [ln.split("#", 1)[0].strip() for ln in path.read_text().splitlines()]
    return all(f"{HASH}sha256:" in f" {ln}" for ln in lines if ln) and any(lines)


def wheels_key(requirements: list[str], py: Py = PY) -> str:
    """The wheels cache folder's name for these requirements (their hashes aside: the same wheels) for `py`."""
    tagged = sorted(requirements) + ([] if py == PY else [f"cp{py.tag}"])
    return hashlib.sha256("\n".join(tagged).encode()).hexdigest()[:16]


def wheels(requirements: list[str], key: str, resolve: bool = False, lock: Path | None = None, py: Py = PY) -> Path:
    """`pip download` the requirements as wheels for `py` (cp311 by default, manylinux) into a cached folder: the only step that
    needs the package index; the image build itself is offline. A fully pinned list (a lock file, every
    line `==`) is fetched with --no-deps, so the same wheels come every time, unless `resolve` (a user's
    requirements: pinned, yet not a closure). A `lock` whose every line has its hash is downloaded from the file
    with --require-hashes: a wheel that is not the one locked fails the build."""
    out = paths.cache_dir("components", "wheels", key)
    if (out / ".complete").exists():
        return out
    offline.refuse(f"the wheels of {key}")
    out.mkdir(parents=True, exist_ok=True)
    if not requirements:  # an image of Debian packages alone
        (out / ".complete").write_text("")
        return out
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--dest", str(out), "--only-binary=:all:",
           "--python-version", py.tag, "--implementation", "cp", "--abi", f"cp{py.tag}", "--abi", "abi3", "--abi", "none"]
    for p in WHEEL_PLATFORMS:
        cmd += ["--platform", p]
    if lock and hashed(lock):
        cmd += ["--no-deps", "--require-hashes", "-r", str(lock)]
    elif not resolve and all("==" in r for r in requirements) and len(requirements) > 3:
        cmd += ["--no-deps", *requirements]
    else:
        cmd += requirements
    _run(cmd, log=out / "download.log")
    (out / ".complete").write_text("\n".join(requirements))
    return out


def bytecode(path: str, source: bytes, py: Py = PY) -> tuple[str, bytes] | None:
    """(where, what) of module `path`'s bytecode in an image: a checked-hash .pyc (PEP 552, the same bytes
    at every build) in its __pycache__. The images' file systems are read-only, so without it every process
    compiles every module it imports at every start. None where our Python is not `py`, or the module does
    not compile."""
    import importlib.util
    import marshal
    import warnings

    if not py.compiles:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the packages' own (invalid escapes and the like): Python says them at run time
            code = compile(source, "/" + path.lstrip("/"), "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return None
    folder, name = path.rsplit("/", 1)
    pyc = importlib.util.MAGIC_NUMBER + (0b11).to_bytes(4, "little") + importlib.util.source_hash(source) + marshal.dumps(code)
    return f"{folder}/__pycache__/{name[:-3]}.cpython-{py.tag}.pyc", pyc


def _compiled(entries: list[FileEntry], py: Py) -> list[FileEntry]:
    """The bytecode of the modules among `entries`."""
    out = []
    for e in entries:
        if e.path.endswith(".py") and (made := bytecode(e.path, e.src.read_bytes() if e.src else e.data or b"", py)):
            out.append(FileEntry(made[0], data=made[1], mode=0o644))
    return out


def _dropped(name: str, py: Py) -> bool:
    n = name.lstrip("./")
    return "/__pycache__/" in f"/{n}" or any(n.startswith(d) or n + "/" == d for d in py.drop)


def slim_rootfs(src: Path, out: Path, py: Py = PY) -> None:
    """Copy a rootfs tarball as a layer without the paths `py` drops, its Python modules' bytecode made anew
    (Debian's is checked against the sources' times, which the tarball does not keep)."""
    made: dict[str, bytes] = {}
    with tarfile.open(src) as tin, tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tout:
        folders = set()
        for m in tin:
            if _dropped(m.name, py):
                continue
            name = m.name.lstrip("./")
            if m.isdir():
                folders.add(name.rstrip("/"))
            if not (m.isreg() and name.endswith(".py") and name.startswith(py.dirs)):
                tout.addfile(m, tin.extractfile(m) if m.isreg() else None)  # streamed: only modules are read whole
                continue
            data = tin.extractfile(m).read()
            tout.addfile(m, io.BytesIO(data))
            if pyc := bytecode(name, data, py):
                made[pyc[0]] = pyc[1]
        for path, data in sorted(made.items()):
            if (folder := path.rsplit("/", 1)[0]) not in folders:
                folders.add(folder)
                d = tarfile.TarInfo(f"./{folder}")
                d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o755, 0
                tout.addfile(d)
            ti = tarfile.TarInfo(f"./{path}")
            ti.size, ti.mode, ti.mtime = len(data), 0o644, 0
            tout.addfile(ti, io.BytesIO(data))


def wheel_layer(wheel_dir: Path, out: Path, site: str = "usr/lib/python3/dist-packages", prefix: str = "usr", py: Py = PY) -> None:
    """Unpack every wheel of `wheel_dir` into `site` as one deterministic layer (an offline install:
    purelib/platlib, data files under `prefix` (sys.prefix: JupyterLab's built UI, server config), no
    console scripts — run modules with `python3 -m`)."""
    import zipfile

    from appliance.images.archive import FileEntry, write_layer

    entries: dict[str, FileEntry] = {}
    for whl in sorted(wheel_dir.glob("*.whl")):
        with zipfile.ZipFile(whl) as z:
            for info in z.infolist():
                if info.is_dir():
                    continue
                name = info.filename
                if "/__pycache__/" in f"/{name}" or "/tests/" in f"/{name}":
                    continue  # bytecode and the packages' own test suites
                parts = name.split("/")
                dest = site
                if parts[0].endswith(".data"):
                    if len(parts) < 3 or parts[1] not in ("purelib", "platlib", "data"):
                        continue
                    dest, name = (prefix if parts[1] == "data" else site), "/".join(parts[2:])
                mode = (info.external_attr >> 16) & 0o777 or 0o644
                entries[f"{dest}/{name}"] = FileEntry(f"{dest}/{name}", data=z.read(info), mode=mode | 0o644)
    write_layer([*entries.values(), *_compiled(list(entries.values()), py)], out)


def _npm_dir(package_dir: Path) -> Path:
    return paths.cache_dir("components", "npm", file_hash(package_dir / "package.json", package_dir / "package-lock.json"))


def npm_cached(package_dir: Path) -> bool:
    """Whether `npm_modules` of this folder is in the cache (no npm needed)."""
    return (_npm_dir(package_dir) / ".complete").exists()


def npm_modules(package_dir: Path, report=print) -> Path:
    """`npm ci` of a package.json + package-lock.json folder (registry from the host's npm config) into a
    cached folder keyed by both files; returns its node_modules."""
    from appliance.errors import UserError

    files = [package_dir / "package.json", package_dir / "package-lock.json"]
    out = _npm_dir(package_dir)
    if npm_cached(package_dir):
        return out / "node_modules"
    offline.refuse(f"the npm packages of {package_dir.name}")
    npm = shutil.which("npm")
    if not npm:
        raise UserError("npm is not installed", f"building {package_dir.name}", "make host-setup (as root), or apt-get install -y npm")
    out.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copy(f, out / f.name)
    with progress.build(f"npm packages of {package_dir.name}", report, "npm ci", counted=False):
        _run([npm, "ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=out, log=out / "npm.log")
    (out / ".complete").write_text("")
    return out / "node_modules"


def tree_files(src: Path, dest: str) -> dict[str, Path]:
    """Every regular file below `src`, keyed by its path under `dest` in an image."""
    return {f"{dest}/{p.relative_to(src)}": p for p in sorted(src.rglob("*")) if p.is_file() and not p.is_symlink()}


def python_image(repo: str, requirements: list[str], files: dict[str, Path], entrypoint: list[str],
                 packages: tuple[str, ...] = (), ref: str = "", report=print, resolve: bool = False,
                 lock: Path | None = None, py: Py = PY) -> tuple[str, Path]:
    """Debian `py.suite` rootfs (python3 + `packages`, debootstrapped once and cached) + wheels (`resolve`: see `wheels`)
    + `files` (image path → host file), written as a docker-archive; tagged by a hash of all inputs (or `ref`).
    Returns (ref, archive)."""
    ref = ref or python_image_ref(repo, requirements, files, packages, py)
    tag = ref.rsplit(":", 1)[1]
    out = paths.cache_dir("components", "images", repo.rsplit("/", 1)[-1], tag)
    archive = out / "image.tar"
    if archive.is_file():
        return ref, archive
    from appliance.images.archive import FileEntry, ImageSpec, write_docker_archive, write_layer
    from appliance.images.debian import rootfs_tarball

    t0 = time.monotonic()
    with progress.build(f"image {repo}", report, f"Debian {py.suite} python3 + wheels", counted=False):
        base = rootfs_tarball("python", [*BASE_PACKAGES, *packages], suite=py.suite, report=report)
        whl = wheels(requirements, wheels_key(requirements, py), resolve, lock, py)
        out.mkdir(parents=True, exist_ok=True)
        l1, l2, l3 = out / "base.tar", out / "wheels.tar", out / "app.tar"
        slim_rootfs(base, l1, py)
        wheel_layer(whl, l2, py=py)
        app = [FileEntry(dst.lstrip("/"), src=src, mode=0o755 if src.suffix in ("", ".sh") and "node_modules" not in dst else 0o644)
               for dst, src in files.items()]
        write_layer([*app, *_compiled(app, py)], l3)
        write_docker_archive(ImageSpec(ref=ref, layers=[l1, l2, l3], entrypoint=entrypoint, workdir="/app",
                                       env=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                            "PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1"]), archive)
        for layer in (l1, l2, l3):
            layer.unlink(missing_ok=True)
    (out / "build.json").write_text(json.dumps({"ref": ref, "seconds": round(time.monotonic() - t0, 1),
                                                "bytes": archive.stat().st_size}))
    return ref, archive


@dataclass(frozen=True)
class PythonImage:
    """A Python service image: Debian python3 (+ `packages`; of `suite`) + the wheels of a lock file (`resolve`: a
    requirements file, its dependencies fetched too) + `files` (image path → host file)."""

    repo: str
    lock: Path
    files: tuple[tuple[str, Path], ...]
    entrypoint: tuple[str, ...]
    packages: tuple[str, ...] = ()
    npm: tuple[str, Path] | None = None  # (image folder, host folder of package.json + package-lock.json)
    resolve: bool = False
    suite: str = PY.suite

    def ref(self) -> str:
        """Known without building (a hash of every input; npm packages by their lock file)."""
        return python_image_ref(self.repo, read_lock(self.lock), self._files(), self.packages, PYTHONS[self.suite])

    def _files(self, modules: Path | None = None) -> dict[str, Path]:
        files = dict(self.files)
        if self.npm:
            dest, pkg = self.npm
            files |= {f"{dest}/package-lock.json": pkg / "package-lock.json"}
            files |= tree_files(modules, f"{dest}/node_modules") if modules else {}
        return files

    def build(self, report=print) -> tuple[str, Path]:
        modules = npm_modules(self.npm[1], report) if self.npm else None
        return python_image(self.repo, read_lock(self.lock), self._files(modules), list(self.entrypoint), self.packages,
                            ref=self.ref(), report=report, resolve=self.resolve, lock=self.lock, py=PYTHONS[self.suite])


def python_image_ref(repo: str, requirements: list[str], files: dict[str, Path], packages: tuple[str, ...] = (), py: Py = PY) -> str:
    """The tag is a hash of every input, so it is known without building."""
    from appliance.images.debian import rootfs_key

    h = hashlib.sha256()
    h.update(json.dumps([PYTHON_IMAGE_BUILDER, py.compiles, rootfs_key([*BASE_PACKAGES, *packages], py.suite), sorted(requirements), ""]).encode())
    for dst in sorted(files):
        h.update(dst.encode())
        h.update(files[dst].read_bytes())
    return f"{repo}:{h.hexdigest()[:16]}"
