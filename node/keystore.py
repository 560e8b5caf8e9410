"""Encrypted key files in the Ethereum v3 keystore format (what geth, clef and MetaMask import).

eth-account does the cryptography (scrypt + AES-128-CTR); this module only names, writes and
lists the files the way geth does: `UTC--<time>--<address>` with owner-only permissions.
"""
import datetime
import json
import os
import pathlib

from eth_account import Account
from eth_utils import to_checksum_address

LIGHT_SCRYPT_N = 4096  # geth's --lightkdf; the default is eth-account's (and geth's) 2**18


class KeystoreError(ValueError):
    """A key file or password that cannot be used; the message names the file."""


def new_key(keystore: str | os.PathLike, password: str, light_kdf: bool = False) -> tuple[str, pathlib.Path]:
    """Create a random key, encrypt it with `password`, and write it; returns (address, file)."""
    if not password:
        raise KeystoreError("refusing an empty password")
    directory = pathlib.Path(keystore)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    account = Account.create()
    encrypted = Account.encrypt(account.key, password, iterations=LIGHT_SCRYPT_N if light_kdf else None)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H-%M-%S.%fZ")
    path = directory / f"UTC--{stamp}--{account.address[2:].lower()}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(encrypted, f)
    return account.address, path


def list_keys(keystore: str | os.PathLike) -> list[tuple[str, pathlib.Path]]:
    """(checksum address, file) of each v3 key file in the directory, oldest first."""
    directory = pathlib.Path(keystore)
    if not directory.is_dir():
        return []
    out = []
    for path in sorted(directory.iterdir()):
        try:
            data = json.loads(path.read_text())
            out.append((to_checksum_address("0x" + data["address"]), path))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a key file (geth skips these too)
    return out


def load_key(path: str | os.PathLike, password: str) -> bytes:
    """Decrypt a key file; a wrong password or a damaged file is a KeystoreError."""
    p = pathlib.Path(path)
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise KeystoreError(f"cannot read key file {str(p)!r}: {e}") from None
    try:
        return bytes(Account.decrypt(data, password))
    except ValueError as e:
        raise KeystoreError(f"cannot decrypt {str(p)!r}: {e}") from None
