"""Build the kind node image locally: Debian bookworm + systemd + containerd + our kubelet,
with every image kubeadm and our manifests need pre-loaded (no registry is ever contacted).

Same inputs give the same tag: `appliance/node:<k8s version>-<12 hex of the input hash>`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from appliance import paths, progress
from appliance.errors import UserError
from appliance.images import archive, debian
from appliance.images.archive import FileEntry, ImageSpec
from appliance.images.tools import ensure_tools
from appliance.paths import cache_dir
from appliance.util.files import Memo, file_key, file_lock, sha256_file

#: Bump when the build recipe changes in a way the file hashes don't see.
RECIPE = "4"  # 4: containers start from a runtime spec without NET_RAW
REPO = "appliance/node"
BASE_REPO = "appliance/node-base"
LABEL = "io.appliance.image"
CONTROL_PLANE = ["kube-apiserver", "kube-controller-manager", "kube-scheduler"]
NODE_BINARIES = ["kubelet", "kubeadm", "kubectl"]
TOOLS = NODE_BINARIES + CONTROL_PLANE + ["kube-proxy", "etcd", "coredns"]
CNI_PLUGINS = ["loopback", "ptp", "host-local", "portmap", "bridge", "bandwidth", "tuning", "firewall"]


def context_dir() -> Path:
    """Our build contexts: the appliance's `images/`."""
    d = paths.shipped("images")
    if not (d / "node" / "files").is_dir():
        raise UserError("image build context not found", str(d), "reinstall the appliance")
    return d


@dataclass
class NodeImage:
    """A built node image and what it holds."""

    tag: str
    kubernetes: str
    key: str
    images: dict[str, str] = field(default_factory=dict)  # role -> ref
    built: bool = False  # False = found in the cache
    seconds: float = 0.0


def sha_memo() -> Memo:
    """The host's memo of file and image hashes (node image keys, bundles)."""
    return Memo(cache_dir("images", "sha-memo.json"))


def _sha_cached(p: Path) -> str:
    """sha256 of a file, memoised on (path, size, mtime) so warm builds stay fast."""
    memo = sha_memo()
    sha = memo.get(file_key(p), lambda: sha256_file(p))
    memo.save()
    return sha


def _tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(oct(p.stat().st_mode & 0o777).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def _docker(*args: str, check: bool = True, capture: bool = True, **kw) -> subprocess.CompletedProcess:
    if not shutil.which("docker"):
        raise UserError("docker is not installed", "images build", "install Docker (docker.io)")
    r = subprocess.run(["docker", *args], capture_output=capture, text=True, **kw)
    if check and r.returncode != 0:
        msg = (r.stderr or r.stdout or "").strip().splitlines()
        raise UserError(f"docker {args[0]} failed: {msg[-1] if msg else r.returncode}", "docker", "check `docker info`")
    return r


def image_id(ref: str) -> str:
    """The id of the image `ref` names in the Docker daemon; "" when it holds none."""
    r = _docker("image", "inspect", "--format", "{{.Id}}", ref, check=False)
    return r.stdout.strip() if r.returncode == 0 else ""


def image_exists(ref: str) -> bool:
    return bool(image_id(ref))


def kubeadm_images(kubeadm: Path, version: str) -> dict[str, str]:
    """The refs `kubeadm config images list` prints, keyed by short name (etcd, coredns, pause, ...)."""
    r = subprocess.run(
        [str(kubeadm), "config", "images", "list", "--kubernetes-version", version],
        capture_output=True, text=True,
    )  # fmt: skip
    if r.returncode != 0:
        raise UserError(f"kubeadm config images list failed: {r.stderr.strip()[-200:]}", str(kubeadm))
    out = {}
    for line in r.stdout.split():
        name = line.rsplit("/", 1)[-1].split(":")[0]
        out[name] = line
    return out


def _pause_binary(ctx: Path, work: Path) -> Path:
    out = work / "pause"
    if out.exists():
        return out
    cc = shutil.which("gcc") or shutil.which("cc")
    if not cc:
        raise UserError("no C compiler for the pause image", "images build", "apt-get install gcc libc6-dev")
    r = subprocess.run([cc, "-static", "-Os", "-s", "-o", str(out), str(ctx / "pause" / "pause.c")], capture_output=True, text=True)
    if r.returncode != 0:
        raise UserError(f"compiling pause failed: {r.stderr.strip()[-200:]}", "images/pause/pause.c", "apt-get install gcc libc6-dev")
    return out


def cni_ref(ctx: Path, bins: dict[str, Path]) -> str:
    """The tag of the appliance's CNI agent image (images/cni: its script and kubectl on the slim root filesystem)."""
    key = hashlib.sha256(
        (_tree_hash(ctx / "cni") + _sha_cached(bins["kubectl"]) + debian.rootfs_key(debian.SLIM_PACKAGES)).encode()
    ).hexdigest()[:12]
    return f"appliance.local/cni-agent:{key}"


def cni_manifest(ref: str, pod_subnet: str = "{{ .PodSubnet }}") -> str:
    """The appliance's CNI (its agent's DaemonSet and rights) with image `ref`; the pod subnet is left for kind
    to fill unless given (bare metal's manifest, applied by the `cni` role)."""
    text = (context_dir() / "cni" / "default-cni.yaml.in").read_text().replace("@CNI_IMAGE@", ref)
    return text.replace("{{ .PodSubnet }}", pod_subnet)


def node_image_key(version: str, bins: dict[str, Path], ctx: Path, refs: dict[str, str]) -> str:
    blob = {
        "recipe": RECIPE,
        "k8s": version,
        "node_rootfs": debian.rootfs_key(debian.NODE_PACKAGES),
        "slim_rootfs": debian.rootfs_key(debian.SLIM_PACKAGES),
        "bins": {n: _sha_cached(p) for n, p in sorted(bins.items())},
        "ctx": {d: _tree_hash(ctx / d) for d in ("node", "cni", "pause", "kube-proxy", "storage")},
        "refs": refs,
        "setup": hashlib.sha256(SETUP_SCRIPT.encode()).hexdigest(),
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()


def build_node_image(
    version: str = "",
    *,
    mirror: str = "",
    rebuild: bool = False,
    report=print,
    keep_workdir: bool = False,
    storage: bool | None = None,
) -> NodeImage:
    """Build (or find cached) the node image for Kubernetes `version`; returns its tag."""
    t0 = time.monotonic()
    from appliance.toolchain.pins import KUBERNETES

    version = version or KUBERNETES
    if version != KUBERNETES:
        raise UserError(f"only Kubernetes {KUBERNETES} is pinned", "--kubernetes-version", f"use {KUBERNETES}", code=2)
    ctx = context_dir()
    bins = ensure_tools(TOOLS, report=report)
    refs = {**kubeadm_images(bins["kubeadm"], version), "appliance-cni": cni_ref(ctx, bins)}
    if storage is None:
        storage = os.environ.get("APPLIANCE_NODE_STORAGE", "1") != "0"
    from appliance.images.gobuild import PROGRAMS, go_program

    if storage:
        lpp = go_program("local-path-provisioner", report=report, retry=rebuild)
        if lpp is not None:
            bins = {**bins, "local-path-provisioner": lpp}
            lpp_key = hashlib.sha256(
                (_sha_cached(lpp) + _tree_hash(ctx / "storage") + debian.rootfs_key(debian.SLIM_PACKAGES)).encode()
            ).hexdigest()[:12]
            refs["local-path-provisioner"] = f"appliance.local/local-path-provisioner:{PROGRAMS['local-path-provisioner'][1]}-{lpp_key}"
        else:
            report("no local-path-provisioner: kind falls back to its in-tree host-path StorageClass")
    crictl = go_program("crictl", report=report, retry=rebuild)  # optional: `kind export logs` and debugging use it
    if crictl is not None:
        bins = {**bins, "crictl": crictl}
    key = node_image_key(version, bins, ctx, refs)
    tag = f"{REPO}:{version}-{key[:12]}"
    result = NodeImage(tag=tag, kubernetes=version, key=key, images=refs)
    if not rebuild and image_exists(tag):
        paths.note("docker", tag)
        paths.note("paths", _record(tag))  # and what it holds: `up` reads it to know the image was built
        result.seconds = time.monotonic() - t0
        return result

    with _build_lock(key):
        if not rebuild and image_exists(tag):  # another process built it while we waited
            result.seconds = time.monotonic() - t0
            return result
        return _build(result, version, bins, ctx, refs, key, tag, mirror, report, keep_workdir, t0)


@contextlib.contextmanager
def _build_lock(key: str):
    """One builder per input hash on this host (two `up`s at once must not share a work dir)."""
    with file_lock(cache_dir("images", "locks", f"node-{key[:16]}.lock")):
        yield


def _build(result: NodeImage, version, bins, ctx, refs, key, tag, mirror, report, keep_workdir, t0) -> NodeImage:
    with progress.build("node image", report, f"{tag}: debootstrap, component images, containerd import"):
        node_tar = debian.rootfs_tarball("node", debian.NODE_PACKAGES, mirror=mirror, report=report)
        slim_tar = debian.rootfs_tarball("slim", debian.SLIM_PACKAGES, mirror=mirror, report=report)
        work = cache_dir("images", "build", key[:16])
        if work.exists():
            shutil.rmtree(work)
        (work / "images").mkdir(parents=True)
        (work / "layers").mkdir()
        try:
            _component_archives(version, bins, ctx, refs, slim_tar, work, report)
            base = _base_image(node_tar, report)
            _stage_overlay(version, bins, ctx, refs, work)
            spec = json.loads(_docker("run", "--rm", "--entrypoint", "ctr", base, "oci", "spec").stdout)
            (work / "overlay/etc/containerd/cri-base.json").write_text(json.dumps(runtime_base_spec(spec), indent=2) + "\n")
            _assemble(base, tag, key, version, refs, work, report)
        finally:
            if not keep_workdir:
                shutil.rmtree(work, ignore_errors=True)
    record = _record(tag)
    record.parent.mkdir(parents=True, exist_ok=True)
    result.built, result.seconds = True, time.monotonic() - t0
    record.write_text(json.dumps(asdict(result), indent=2))
    report(f"built {tag} in {result.seconds:.0f}s")
    return result


#: capabilities no container gets unless it adds them (raw sockets forge source addresses and sniff)
DROPPED_CAPABILITIES = ("CAP_NET_RAW",)


def runtime_base_spec(spec: dict) -> dict:
    """containerd's default OCI spec (`ctr oci spec`) as the one every CRI container starts from: without
    DROPPED_CAPABILITIES, and without its 1024-file rlimit (containers inherit containerd's, as without a base
    spec). A pod that needs a dropped capability adds it (Pod Security baseline refuses that in user namespaces)."""
    process = dict(spec["process"])
    process.pop("rlimits", None)
    process["capabilities"] = {k: [c for c in v if c not in DROPPED_CAPABILITIES] for k, v in process["capabilities"].items()}
    return {**spec, "process": process}


def _component_archives(version, bins, ctx: Path, refs, slim_tar: Path, work: Path, report) -> None:
    """One docker-archive per pre-loaded image under work/images/."""
    layers = work / "layers"
    report("writing component images")

    def image(name: str, layer: str, entries: list[FileEntry], entrypoint: str, base: list[Path] = ()) -> None:
        if name not in refs:
            return
        lt = layers / f"{layer}.tar"
        archive.write_layer(entries, lt)
        archive.write_docker_archive(ImageSpec(refs[name], [*base, lt], entrypoint=[entrypoint]), work / "images" / f"{name}.tar")

    for name in CONTROL_PLANE:
        image(name, name, [FileEntry(f"usr/local/bin/{name}", src=bins[name])], f"/usr/local/bin/{name}")
    image("etcd", "etcd", [FileEntry("usr/local/bin/etcd", src=bins["etcd"]), FileEntry("var/lib/etcd/.keep", data=b"", mode=0o644)],
          "/usr/local/bin/etcd")
    image("coredns", "coredns", [FileEntry("coredns", src=bins["coredns"])], "/coredns")
    image("pause", "pause", [FileEntry("pause", src=_pause_binary(ctx, work))], "/pause")
    image("kube-proxy", "kube-proxy",
          [FileEntry("usr/local/bin/kube-proxy.real", src=bins["kube-proxy"]),
           FileEntry("usr/local/bin/kube-proxy", src=ctx / "kube-proxy" / "kube-proxy")],
          "/usr/local/bin/kube-proxy", [slim_tar])
    image("appliance-cni", "cni",
          [FileEntry("usr/local/bin/kubectl", src=bins["kubectl"]),
           FileEntry("usr/local/bin/appliance-cni", src=ctx / "cni" / "appliance-cni")],
          "/usr/local/bin/appliance-cni", [slim_tar])
    if "local-path-provisioner" in refs:  # also the helper image of its volume pods (needs only sh, mkdir, rm)
        image("local-path-provisioner", "local-path",
              [FileEntry("usr/local/bin/local-path-provisioner", src=bins["local-path-provisioner"])],
              "/usr/local/bin/local-path-provisioner", [slim_tar])


def control_plane_archives(mirror: str = "", report=print) -> Path:
    """A folder of docker-archives of the images `kubeadm init` needs (API server, controller-manager,
    scheduler, kube-proxy, etcd, CoreDNS, pause) under the tags kubeadm expects, and the appliance CNI's agent
    (more than one host), made exactly as the node image pre-loads them; cached by their inputs. For offline
    hosts: `ctr images import` each."""
    from appliance.toolchain.pins import KUBERNETES

    ctx = context_dir()
    bins = ensure_tools(TOOLS, report=report)
    refs = {**kubeadm_images(bins["kubeadm"], KUBERNETES), "appliance-cni": cni_ref(ctx, bins)}
    key = hashlib.sha256(json.dumps({
        "recipe": RECIPE, "refs": refs, "slim": debian.rootfs_key(debian.SLIM_PACKAGES),
        "bins": {n: _sha_cached(bins[n]) for n in CONTROL_PLANE + ["kube-proxy", "etcd", "coredns"]},
        "ctx": {d: _tree_hash(ctx / d) for d in ("pause", "kube-proxy", "cni")},
    }, sort_keys=True).encode()).hexdigest()[:16]
    dest = cache_dir("images", "control-plane", f"{KUBERNETES}-{key}")
    if (dest / ".complete").exists():
        return dest
    slim_tar = debian.rootfs_tarball("slim", debian.SLIM_PACKAGES, mirror=mirror, report=report)
    with _build_lock(f"cp-{key}"):
        if (dest / ".complete").exists():
            return dest
        work = cache_dir("images", "build", f"cp-{key}")
        shutil.rmtree(work, ignore_errors=True)
        (work / "images").mkdir(parents=True)
        (work / "layers").mkdir()
        try:
            _component_archives(KUBERNETES, bins, ctx, refs, slim_tar, work, report)
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(work / "images", dest)
            (dest / ".complete").write_text(json.dumps(refs, indent=2))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return dest


def _base_image(node_tar: Path, report) -> str:
    ref = f"{BASE_REPO}:{node_tar.stem.rsplit('-', 1)[-1]}"
    if not image_exists(ref):
        report(f"importing root filesystem as {ref}")
        _docker("import", "--change", "ENV container=docker", str(node_tar), ref)
    return ref


def _stage_overlay(version, bins, ctx: Path, refs, work: Path) -> None:
    """work/overlay mirrors what is copied onto / of the node."""
    ov = work / "overlay"
    shutil.copytree(ctx / "node" / "files", ov, symlinks=True)
    conf_in = ov / "etc/containerd/config.toml.in"
    conf_in.with_suffix("").write_text(conf_in.read_text().replace("@PAUSE_IMAGE@", refs["pause"]))
    conf_in.unlink()
    (ov / "usr/bin").mkdir(parents=True, exist_ok=True)
    extra = ["crictl"] if "crictl" in bins else []
    for n in NODE_BINARIES + extra:
        dst = ov / "usr/bin" / n
        try:
            os.link(bins[n], dst)
        except OSError:
            shutil.copy2(bins[n], dst)
        os.chmod(dst, 0o755)
    kind = ov / "kind"
    (kind / "manifests").mkdir(parents=True)
    (kind / "version").write_text(version + "\n")
    (kind / "manifests" / "default-cni.yaml").write_text(cni_manifest(refs["appliance-cni"]))
    if "local-path-provisioner" in refs:
        sto = (ctx / "storage" / "default-storage.yaml.in").read_text().replace("@STORAGE_IMAGE@", refs["local-path-provisioner"])
        (kind / "manifests" / "default-storage.yaml").write_text(sto)
    (kind / "images.json").write_text(json.dumps(refs, indent=2, sort_keys=True) + "\n")
    (work / "setup.sh").write_text(SETUP_SCRIPT.replace("@CNI_PLUGINS@", " ".join(CNI_PLUGINS)))


SETUP_SCRIPT = r"""#!/bin/bash
# Runs once inside the build container; the result is committed as the node image.
set -o errexit -o nounset -o pipefail -o xtrace
cp -a /build/overlay/. /
chmod 0755 /usr/local/bin/entrypoint
mkdir -p /opt/cni/bin /etc/cni/net.d /etc/kubernetes/manifests /var/lib/kubelet /var/log/journal
for p in @CNI_PLUGINS@; do ln -f /usr/lib/cni/$p /opt/cni/bin/$p; done
# systemd for a container: only what a kubelet node needs.
systemctl set-default multi-user.target
systemctl enable containerd.service kubelet.service
systemctl mask \
  systemd-udevd.service systemd-udev-trigger.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
  getty.target console-getty.service getty@tty1.service systemd-logind.service systemd-modules-load.service \
  systemd-remount-fs.service systemd-firstboot.service systemd-tmpfiles-setup.service \
  sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount sys-fs-fuse-connections.mount \
  apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
  systemd-hwdb-update.service systemd-journal-catalog-update.service systemd-update-done.service
mkdir -p /etc/systemd/journald.conf.d
printf '[Journal]\nReadKMsg=no\nStorage=persistent\n' > /etc/systemd/journald.conf.d/10-appliance.conf
# Pre-load the images into containerd (content only; CRI unpacks on first use).
containerd --config /etc/containerd/config.toml > /tmp/containerd.log 2>&1 &
cpid=$!
for _ in $(seq 1 100); do ctr version >/dev/null 2>&1 && break; sleep 0.1; done
shopt -s nullglob
for t in /build/images/*.tar; do
  ctr -n k8s.io images import --no-unpack --all-platforms "$t"
done
for ref in $(ctr -n k8s.io images ls -q); do
  ctr -n k8s.io images label "$ref" io.cri-containerd.pinned=pinned >/dev/null
done
ctr -n k8s.io images ls
kill "$cpid"; wait "$cpid" || true
rm -rf /run/containerd /tmp/* /var/log/*.log
rm -f /etc/machine-id && touch /etc/machine-id
"""


def _assemble(base: str, tag: str, key: str, version: str, refs, work: Path, report) -> None:
    name = f"appliance-nodebuild-{key[:12]}"
    _docker("rm", "-f", name, check=False)
    report("assembling node image (containerd import)")
    r = _docker(
        "run", "--name", name, "--privileged", "--entrypoint", "/bin/bash",
        "-v", f"{work}:/build:ro", base, "/build/setup.sh", check=False,
    )  # fmt: skip
    if r.returncode != 0:
        log = cache_dir("images", "node-build.log")
        log.write_text(r.stdout + r.stderr)
        _docker("rm", "-f", name, check=False)
        raise UserError(f"node image setup failed (exit {r.returncode})", str(log), "read the log")
    # `docker commit` can't set STOPSIGNAL: commit, then a metadata-only build FROM the local
    # commit (the classic builder never pulls a local base).
    tmp = f"{REPO}-build:{key[:12]}"
    _docker("commit", name, tmp)
    _docker("rm", "-f", name, check=False)
    dockerfile = (
        "\n".join(
            [
                f"FROM {tmp}",
                'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]',
                "CMD []",
                "ENV container=docker",
                "STOPSIGNAL SIGRTMIN+3",
                f'LABEL {LABEL}="node" io.appliance.kubernetes="{version}" io.appliance.key="{key}"',
            ]
        )
        + "\n"
    )
    r = subprocess.run(
        ["docker", "build", "--pull=false", "-t", tag, "-"],
        input=dockerfile,
        capture_output=True,
        text=True,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
    )
    _docker("rmi", tmp, check=False)
    # a --rebuild leaves the previous image of this tag dangling: drop it
    _docker("image", "prune", "-f", "--filter", f"label={LABEL}=node", check=False)
    if r.returncode != 0:
        raise UserError(f"docker build (metadata) failed: {(r.stderr or r.stdout).strip()[-200:]}", "docker")


def _record(tag: str) -> Path:
    """What a build of `tag` held (written when it was built)."""
    return cache_dir("images", "node", f"{tag.replace('/', '_').replace(':', '_')}.json")


def built_before(version: str = "") -> bool:
    """A node image for Kubernetes `version` (default: the pinned one) was built on this host before."""
    from appliance.toolchain.pins import KUBERNETES

    return any(_record(REPO).parent.glob(_record(f"{REPO}:{version or KUBERNETES}-*").name))


def list_images() -> list[dict]:
    """Node images this host holds (newest first), with what each pre-loads."""
    r = _docker("images", "--filter", f"label={LABEL}=node", "--format", "{{json .}}", check=False)
    out = []
    for line in r.stdout.splitlines():
        try:
            d = json.loads(line)
        except ValueError:
            continue
        tag = f"{d.get('Repository')}:{d.get('Tag')}"
        rec = _record(tag)
        images = json.loads(rec.read_text()).get("images", {}) if rec.exists() else {}
        out.append({"tag": tag, "id": d.get("ID", ""), "size": d.get("Size", ""), "created": d.get("CreatedSince", ""), "images": images})
    return out
