"""Public objects a validator's node lacks, fetched from other validators' nodes.

Each node keeps the bytes behind the chain's hashes in its own blob store: a prompt is stored on
the node its requester used, a result on its server's node, an adapter on the node it was trained
against. A services process that verifies or attributes on another validator reads them through
`PeerClient`: from its own node first, then from the JSON-RPC of each peer (`--peer-rpc`) in turn;
what a peer serves is checked against its hash (Client.get_object) and kept on the own node, so it
is fetched once and then served from there to the next validator that asks.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

from node.sdk import Client, SdkError

log = logging.getLogger("node.services")


class PeerClient(Client):
    """A Client of the own node whose `get_object` falls back on `peers` (JSON-RPC URLs)."""

    def __init__(self, url: str, peers: Sequence[str] = (), key: bytes | str | None = None) -> None:
        super().__init__(url, key)
        self.peers = [Client(p) for p in peers if p != url]

    def get_object(self, blob_hash: bytes) -> bytes:
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
                self.put_blob(data, public=True)
            except SdkError as e:  # served all the same; fetched again next time
                log.warning("object 0x%s from %s not kept on this node: %s", blob_hash.hex(), peer.url, e)
            log.info("object 0x%s fetched from %s", blob_hash.hex(), peer.url)
            return data
        raise missing
