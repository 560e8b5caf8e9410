"""A hostile peer: a bare libp2p host that writes whatever it likes on our protocols."""
from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import multiaddr
from libp2p.abc import IHost, INetStream
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.validators import PUBSUB_SIGNING_PREFIX
from libp2p.utils.varint import encode_varint_prefixed

from node.p2p.host import make_host


@contextlib.asynccontextmanager
async def hostile_host() -> AsyncIterator[IHost]:
    host = make_host(create_new_key_pair())
    async with host.run([multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        yield host


async def connect(host: IHost, address: multiaddr.Multiaddr) -> None:
    await host.connect(info_from_p2p_addr(address))


def pubsub_frame(host: IHost, topic: str, data: bytes, seqno: int) -> bytes:
    """One pubsub RPC publishing `data`, signed by `host` as py-libp2p signs (so only the data
    is wrong), with its varint length prefix."""
    msg = rpc_pb2.Message(data=data, topicIDs=[topic], from_id=host.get_id().to_bytes(),
                          seqno=seqno.to_bytes(8, "big"))
    msg.signature = host.get_private_key().sign(PUBSUB_SIGNING_PREFIX.encode() + msg.SerializeToString())
    msg.key = host.get_public_key().serialize()
    return encode_varint_prefixed(rpc_pb2.RPC(publish=[msg]).SerializeToString())


async def gossip_stream(host: IHost, peer) -> INetStream:
    return await host.new_stream(peer, [PROTOCOL_ID_V11])
