"""Keccak-256 for every Ethereum library in the process, on safe-pysha3's C code.

py-evm, trie, rlp and eth-utils all hash through one shared `eth_hash.auto.keccak`, whose
automatic choice is pycryptodome: about 6.6 us per call through cffi, against 1.0 us for
safe-pysha3. State reads hash every account and storage key and every trie node, so the
choice shows in block import, tracing and every state read. Importing `vm` points the shared
hasher at pysha3 when it is installed (it is a dependency; other platforms keep pycryptodome).
"""
from __future__ import annotations

from eth_hash.auto import keccak


def use_fastest_backend() -> str:
    """Point the shared hasher at the fastest installed backend; its name."""
    try:
        from eth_hash.backends.pysha3 import backend
    except ImportError:  # no safe-pysha3 wheel for this platform: pycryptodome stays
        return "pycryptodome"
    keccak.hasher = backend.keccak256
    keccak.preimage = backend.preimage
    return "pysha3"
