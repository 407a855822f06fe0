"""pipelines: what data cannot say — for the users user-profiles offers and the platform's store clients
(`clients`: tracking's artifacts), their artifact store credentials (kept from the cluster, else generated: never
a default) and each one's bucket, created by the store's root account and owned by its account; the executor image (argoexec with its Linux signal helpers
restored, /etc/mime.types and a writable /tmp)."""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
from pathlib import Path

from appliance import paths
from appliance.components.decl import Go
from appliance.components.pipelines import STORE, account, accounts, bucket_of
from appliance.errors import UserError
from appliance.images import builds
from appliance.images.archive import FileEntry
from appliance.kube import secret_data

MIME_TYPES = paths.shipped("images", "pipelines", "mime.types")
STORE_BIN = "/usr/local/bin/versitygw"


def _accounts(live: dict[str, str], names: list[str], token=secrets.token_hex) -> dict:
    """The store's credentials: the root account and one account per name (a user's access key is their name,
    a platform client's `svc.<name>`: no user name has a dot), kept from `live` (the store Secret's decoded
    data) where present, else generated. Returns {root, accounts, iam (the store's IAM file), digest (changes
    with the account list)}."""
    kept = accounts(live)
    root = {"access": live.get("root-access") or f"root-{token(4)}", "secret": live.get("root-secret") or token(20)}
    accts = {u: {"access": u, "secret": (kept.get(u) or {}).get("secret") or token(20)} for u in names}
    iam = json.dumps({"accessAccounts": {a["access"]: {**a, "role": "user", "userID": 0, "groupID": 0, "projectID": 0}
                                         for a in accts.values()}}, sort_keys=True)
    return {"root": root, "accounts": accts, "iam": iam, "digest": hashlib.sha256(iam.encode()).hexdigest()[:16]}


def context(options, kube, users=(), **_offered) -> dict:
    """The users (user-profiles' list) and the store's credentials: theirs and its platform clients'."""
    names = sorted(users)
    return {"users": names, "store": _accounts(secret_data(kube, STORE, options.namespace), names + [account(c) for c in options.clients])}


def _argoexec_binary(go: Go) -> Path:
    """argoexec (component.yaml's `go:`), built statically from a writable copy of the module: the module's
    zip lacks the Linux signal helpers (upstream, signal_linux.go is a symlink to signal_darwin.go; module
    zips drop symlinks), so the copy gets that file back first. Cached by version."""
    def restore_signals(src: Path) -> None:
        signals = src / "workflow" / "executor" / "osspecific"
        shutil.copy(signals / "signal_darwin.go", signals / "signal_linux.go")

    binary = paths.cache_dir("components", "go", go.module.replace("/", "_"), f"{go.version}-linux-signals") / "argoexec"
    return builds.patched_go_binary(go.module, go.version, go.package, binary, restore_signals,
                                    detail=f"{go.version} from {go.module} (go build, Linux signal helpers restored)")


def argoexec_image(go: Go) -> tuple[str, Path]:
    """(ref, docker-archive): argoexec at /bin (pods run `argoexec init|wait` through PATH), the media types
    it reads, and a /tmp anyone may write (mode 1777, as in the upstream image): the executor writes a resource
    step's manifest there as the unprivileged user."""
    import tarfile

    from appliance.images.archive import ImageSpec, write_docker_archive, write_layer

    binary = _argoexec_binary(go)
    tag = hashlib.sha256(f"{builds.file_hash(binary, MIME_TYPES)} /tmp 1777".encode()).hexdigest()[:16]
    out = paths.cache_dir("components", "images", "argoexec", tag)
    ref, archive = f"appliance.local/argoexec:{tag}", out / "image.tar"
    if archive.is_file():
        return ref, archive
    out.mkdir(parents=True, exist_ok=True)
    files, tmp = out / "files.tar", out / "tmp.tar"
    write_layer([FileEntry("bin/argoexec", src=binary, mode=0o755), FileEntry("etc/mime.types", src=MIME_TYPES, mode=0o644),
                 FileEntry("etc/passwd", data=b"root:x:0:0:root:/:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/:/sbin/nologin\n", mode=0o644)],
                files)
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        entry = tarfile.TarInfo("tmp")
        entry.type, entry.mode, entry.mtime = tarfile.DIRTYPE, 0o1777, 0
        tar.addfile(entry)
    write_docker_archive(ImageSpec(ref=ref, layers=[files, tmp], entrypoint=["/bin/argoexec"], user="65532"), archive)
    files.unlink()
    tmp.unlink()
    return ref, archive


def after_apply(options, kube, users=(), **_offered) -> str:
    """Each user's bucket `user-<name>` and each platform client's `svc-<name>`, owned by its account: `versitygw admin create-bucket` run in the
    store's container (its admin API listens on loopback only). Nothing where no store runs (simulator)."""
    from appliance.util import wait

    ns = options.namespace
    if kube.get("apps/v1", "Deployment", STORE, ns) is None:
        return ""
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": STORE, "namespace": ns}}
    wait.until(lambda: (not (m := kube.missing([dep])), ", ".join(m)), 300, f"{ns}/{STORE}")
    pod = _ready_pod(kube, ns)
    made = []
    for owner, bucket in [(u, f"user-{u}") for u in sorted(users)] + [(account(c), bucket_of(c)) for c in options.clients]:
        code, out = _exec(kube, ns, pod, [STORE_BIN, "admin", "create-bucket", "--owner", owner, "--bucket", bucket])
        if code != 0 and "BucketAlreadyOwnedByYou" not in out:
            raise UserError(f"the artifact store did not create bucket {bucket}: {' '.join(out.split())[:300]}", f"{ns}/{STORE}",
                            f"read `kubectl -n {ns} logs deploy/{STORE}`, then run `appliance up` again")
        made += [bucket] if code == 0 else []
    return f"buckets created: {', '.join(made)}" if made else ""


def _ready_pod(kube, ns: str) -> str:
    from kubernetes import client

    pods = client.CoreV1Api(kube.api).list_namespaced_pod(ns, label_selector=f"app.kubernetes.io/name={STORE}").items
    ready = [p.metadata.name for p in pods if p.metadata.deletion_timestamp is None
             and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])]
    if not ready:
        raise UserError("no ready pod of the artifact store", f"{ns}/{STORE}", "see `appliance status` and the pod's events; `appliance up` resumes here")
    return ready[0]


def _exec(kube, ns: str, pod: str, argv: list[str]) -> tuple[int, str]:
    """Run `argv` in the store container; (exit code, stdout + stderr)."""
    from kubernetes import client
    from kubernetes.stream import stream

    # an ApiClient of its own: `stream` swaps its client's request function while it connects, and `up` installs
    # other components on the shared client from other threads meanwhile
    own = client.CoreV1Api(client.ApiClient(kube.api.configuration))
    ws = stream(own.connect_get_namespaced_pod_exec, pod, ns, container="store", command=argv,
                stdout=True, stderr=True, stdin=False, tty=False, _preload_content=False)
    ws.run_forever(timeout=60)
    out = ws.read_stdout(timeout=1) + ws.read_stderr(timeout=1)
    code = ws.returncode
    ws.close()
    return (code if code is not None else 1), out
