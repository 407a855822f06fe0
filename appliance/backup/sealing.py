"""Credentials in a backup: sealed with AES-256-GCM under a key scrypt derives from the operator's passphrase
(a file given with --key-file); salt and nonce in front."""

from __future__ import annotations

import os
from pathlib import Path

from appliance.errors import UserError


def key(key_file: Path | None) -> bytes | None:
    if key_file is None:
        return None
    try:
        key = Path(key_file).read_bytes().strip()
    except OSError as e:
        raise UserError(f"cannot read the key file: {e.strerror}", str(key_file), "give a file holding a passphrase", code=2) from None
    if len(key) < 16:
        raise UserError("the key file holds fewer than 16 bytes", str(key_file), "put a long random passphrase in it (`openssl rand -hex 32`)", code=2)
    return key


def seal(data: bytes, key: bytes) -> bytes:
    """AES-256-GCM under a key derived from the passphrase by scrypt (salt and nonce in front)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    salt, nonce = os.urandom(16), os.urandom(12)
    return b"APB1" + salt + nonce + AESGCM(Scrypt(salt=salt, length=32, n=2**15, r=8, p=1).derive(key)).encrypt(nonce, data, None)


def unseal(blob: bytes, key: bytes, where: str) -> bytes:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    if blob[:4] != b"APB1":
        raise UserError("not sealed credentials", where, "restore from a folder `appliance backup` wrote", code=2)
    salt, nonce = blob[4:20], blob[20:32]
    try:
        return AESGCM(Scrypt(salt=salt, length=32, n=2**15, r=8, p=1).derive(key)).decrypt(nonce, blob[32:], None)
    except InvalidTag:
        raise UserError("the key does not open the backup's credentials", where, "give the key file the backup was made with", code=2) from None
