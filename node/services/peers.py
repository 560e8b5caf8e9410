"""Public objects for the services: kept in memory once read, and fetched from other validators'
nodes when the own node lacks them.

An object is named by its keccak256 and never changes, so `PeerClient` keeps the last few it read
or stored (OBJECT_CACHE_BYTES in all): the prompt a server read to serve a job and the result it
stored are at hand when it attributes the job, and so are those a verifier read when it re-checks
the job's proof, without asking the node again.

Each node keeps the bytes behind the chain's hashes in its own blob store: a prompt is stored on
the node its requester used, a result on its server's node, an adapter on the node it was trained
against. A services process that verifies or attributes on another validator reads them through
`PeerClient`: from its own node first, then from the JSON-RPC of each peer (`--peer-rpc`) in turn;
what a peer serves is checked against its hash (Client.get_object) and kept on the own node, so it
is fetched once and then served from there to the next validator that asks.
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence

from node.sdk import Client, SdkError

log = logging.getLogger("node.services")
OBJECT_CACHE_BYTES = 64 * 2**20
"""The most object bytes kept in memory (the least recently used go first)."""


class PeerClient(Client):
    """A Client of the own node that keeps the public objects it read or stored, and whose
    `get_object` falls back on `peers` (JSON-RPC URLs)."""

    def __init__(self, url: str, peers: Sequence[str] = (), key: bytes | str | None = None) -> None:
        super().__init__(url, key)
        self.peers = [Client(p) for p in peers if p != url]
        self._objects: OrderedDict[bytes, bytes] = OrderedDict()
        self._held = 0

    def _keep(self, blob_hash: bytes, data: bytes) -> bytes:
        """`data` (hash-checked by whoever read or stored it) kept under `blob_hash`."""
        if blob_hash not in self._objects and len(data) <= OBJECT_CACHE_BYTES:
            self._objects[blob_hash] = data
            self._held += len(data)
            while self._held > OBJECT_CACHE_BYTES:
                self._held -= len(self._objects.popitem(last=False)[1])
        return data

    def put_blob(self, data: bytes, public: bool = False) -> bytes:
        blob_hash = super().put_blob(data, public)
        if public:  # only public objects are read back by hash alone
            self._keep(blob_hash, bytes(data))
        return blob_hash

    def get_object(self, blob_hash: bytes) -> bytes:
        if blob_hash in self._objects:
            self._objects.move_to_end(blob_hash)
            return self._objects[blob_hash]
        return self._keep(blob_hash, self._fetch(blob_hash))

    def _fetch(self, blob_hash: bytes) -> bytes:
        try:
            return super().get_object(blob_hash)
        except SdkError as e:
            if e.code is None or not self.peers:  # the own node is away, or there is nowhere else to look
                raise
            missing = e
        for peer in self.peers:
            try:
                data = peer.get_object(blob_hash)  # checked against the hash
            except SdkError:
                continue  # not there, or that validator is down: the next one
            try:
                Client.put_blob(self, data, public=True)
            except SdkError as e:  # served all the same; fetched again next time
                log.warning("object 0x%s from %s not kept on this node: %s", blob_hash.hex(), peer.url, e)
            log.info("object 0x%s fetched from %s", blob_hash.hex(), peer.url)
            return data
        raise missing
