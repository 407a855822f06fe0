"""Bundle signatures. `appliance bundle keygen` makes an Ed25519 key pair; `bundle create --sign KEY` signs
the manifest — which holds every file's size and sha256, so the signature covers the whole bundle — and
`bundle verify` and `up --bundle` check it against the trusted public keys: the files in
`~/.config/appliance/trusted-keys/` (`$APPLIANCE_CONFIG` moves the folder) and any given with `--trust`.
Where a key is trusted, an unsigned bundle or one signed by another key is refused; where none is, a bundle
is taken with a warning that its signature is not checked (its hashes still are)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

from appliance import paths
from appliance.errors import UserError
from appliance.util.files import atomic_write


def _canonical(manifest: dict) -> bytes:
    return json.dumps({k: v for k, v in manifest.items() if k != "signature"}, sort_keys=True, separators=(",", ":")).encode()


def fingerprint(public: bytes) -> str:
    """A public key's name: the first 16 hex digits of the sha256 of its raw bytes."""
    return hashlib.sha256(public).hexdigest()[:16]


def keygen(out: Path) -> tuple[Path, Path, str]:
    """A new key pair: `out` (the private key, PEM, mode 0600) and `out.pub` (raw public key, base64), and
    the key's fingerprint."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    out = Path(out)
    if out.exists():
        raise UserError("the key file exists", str(out), "give a new path (a key is never written over)", code=2)
    key = Ed25519PrivateKey.generate()
    atomic_write(out, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()), mode=0o600)
    pub = out.with_name(out.name + ".pub")
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    atomic_write(pub, base64.b64encode(raw).decode() + "\n")
    return out, pub, fingerprint(raw)


def sign(manifest: dict, key_file: Path) -> dict:
    """`manifest` with its signature by the private key in `key_file`."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_pem_private_key(Path(key_file).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as e:
        raise UserError(f"not a private key made by `appliance bundle keygen` ({e})", str(key_file), "give the key file keygen wrote", code=2) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UserError("not an Ed25519 private key", str(key_file), "make one with `appliance bundle keygen`", code=2)
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {**manifest, "signature": {"key": fingerprint(public), "ed25519": base64.b64encode(key.sign(_canonical(manifest))).decode()}}


def _public(path: Path) -> bytes:
    try:
        raw = base64.b64decode(Path(path).read_text().strip(), validate=True)
    except (OSError, ValueError) as e:
        raise UserError(f"not a public key made by `appliance bundle keygen` ({e})", str(path), "give the .pub file keygen wrote", code=2) from None
    if len(raw) != 32:
        raise UserError("not an Ed25519 public key (32 bytes)", str(path), "give the .pub file keygen wrote", code=2)
    return raw


def trusted(extra: tuple[Path, ...] = ()) -> dict[str, bytes]:
    """The trusted public keys by fingerprint: the trusted-keys folder's `*.pub` files and `extra`."""
    folder = paths.config_dir("trusted-keys")
    files = [*sorted(folder.glob("*.pub")), *extra] if folder.is_dir() else list(extra)
    return {fingerprint(k): k for k in map(_public, files)}


def check(manifest: dict, keys: dict[str, bytes], where: str) -> str | None:
    """The signer's fingerprint when the manifest is signed by one of `keys`; None when no key is trusted here
    (its signature, if any, unchecked); else one line saying why it is refused."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    sig = manifest.get("signature")
    fix = f"use a bundle signed by a trusted key, or trust its signer's public key (copy it into {paths.config_dir('trusted-keys')})"
    if not keys:
        return None
    if not sig:
        raise UserError(f"the bundle is not signed, and keys are trusted here ({', '.join(sorted(keys))})", where, fix, code=2)
    if sig.get("key") not in keys:
        raise UserError(f"the bundle is signed by key {sig.get('key')}, which is not trusted here", where, fix, code=2)
    try:
        Ed25519PublicKey.from_public_bytes(keys[sig["key"]]).verify(base64.b64decode(sig["ed25519"]), _canonical(manifest))
    except (InvalidSignature, ValueError):
        raise UserError(f"the bundle's signature by key {sig['key']} does not match its manifest (forged or altered)", where, fix, code=2) from None
    return sig["key"]
