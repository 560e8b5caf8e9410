"""The libp2p host: a persisted ed25519 identity, Noise only, Yamux, one connection per peer,
and gossipsub with the settings and fixes NOTES.md measured (its defaults lose most traffic)."""
from __future__ import annotations

import os
import time
import weakref
from collections.abc import Sequence
from pathlib import Path

import multiaddr
import trio
from libp2p import new_host
from libp2p.abc import IHost, INetStream
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519_key_pair
from libp2p.network.config import ConnectionConfig
from libp2p.pubsub import pubsub as pubsub_module
from libp2p.pubsub import rpc_queue
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11, GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux

KEY_FILE = "p2p_key"
QUEUE_SLOTS = 4096

# py-libp2p's Yamux sends a WINDOW_UPDATE frame for every read that its hysteresis defers, and
# pubsub reads each message's varint length one byte at a time: a window update per byte read,
# which queued behind data on the connection's write lock. With 4 hosts, vote latency grew
# without bound from 10-25 votes/s per host at 12% CPU (docs/p2p.md); with updates batched as
# go-yamux does (PY_YAMUX_RELEASE_ON_READ=0, read per call by py-libp2p), 3-6 ms at 50 votes/s.
# An operator's explicit setting wins.
os.environ.setdefault("PY_YAMUX_RELEASE_ON_READ", "0")

# Subscription and per-peer send queues hold 32 messages by default and drop the rest silently
# (NOTES.md: 4,096 slots lost nothing through a 10 s SIGSTOP). Both are module-level values in
# py-libp2p 0.8.1, not constructor arguments, so they are set here, once, for the process.
pubsub_module.SUBSCRIPTION_CHANNEL_SIZE = QUEUE_SLOTS
pubsub_module.RpcQueue.__init__.__defaults__ = (QUEUE_SLOTS, rpc_queue.DefaultMaxMessageSize)


def load_or_create_key(data_dir: Path) -> KeyPair:
    """The node's peer identity: a 32-byte ed25519 seed in `data_dir/p2p_key`, made once (0600)."""
    path = Path(data_dir) / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(32))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    seed = path.read_bytes()
    if len(seed) != 32:
        raise ValueError(f"{path}: expected a 32-byte ed25519 seed, found {len(seed)} bytes")
    return create_new_key_pair(seed)


def make_host(key_pair: KeyPair, announce: Sequence[str] = ()) -> IHost:
    """A host that speaks Noise only (py-libp2p also offers plaintext, SECIO and TLS by default),
    Yamux, and keeps one connection per peer (which also skips the 250 ms happy-eyeballs wait).
    Its auto-connector is off (watermarks 0): by default it dials every known peer, banned ones
    included, to reach 50 connections; we dial only the peers the node names (`P2P`).
    `announce`: the addresses peers learn from identify instead of the listening ones (a node
    behind NAT or a proxy: peers store what identify tells them and re-dial it)."""
    noise = NoiseTransport(key_pair, noise_privkey=create_x25519_key_pair().private_key)
    return new_host(key_pair=key_pair, sec_opt={NOISE_PROTOCOL_ID: noise},
                    muxer_opt={YAMUX_PROTOCOL_ID: Yamux},
                    connection_config=ConnectionConfig(max_connections_per_peer=1, min_connections=0,
                                                      low_watermark=0),
                    announce_addrs=[multiaddr.Multiaddr(a) for a in announce] or None)


class SafePubsub(Pubsub):
    """Pubsub with two py-libp2p 0.8.1 bugs worked around (NOTES.md):

    - its replay to a joining peer and its send loop write to one stream at once, and Yamux
      interleaves their 64 KiB frames, corrupting the stream: writes are serialised per stream;
    - sequence numbers restart at `int(time.time())`, so peers drop ~10 s of a restarted node's
      messages as already seen: the counter starts from nanoseconds instead.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.counter = time.time_ns()
        self._write_locks: weakref.WeakKeyDictionary[INetStream, trio.Lock] = weakref.WeakKeyDictionary()

    async def write_msg(self, stream: INetStream, rpc_msg: rpc_pb2.RPC) -> bool:
        lock = self._write_locks.setdefault(stream, trio.Lock())
        async with lock:
            return await super().write_msg(stream, rpc_msg)


def make_gossip(host: IHost, max_frame: int) -> tuple[SafePubsub, GossipSub]:
    """Gossipsub without its silent drops and stalls: the 10 messages/s/topic cap lifted; a 1 s
    heartbeat (the default 120 s leaves meshes unrepaired after a peer leaves); adaptive gossip
    off (with fewer peers than the mesh degree, 6, it judges the network unhealthy and stretches the
    heartbeat to 60 s after 30 s: with 10 votes/s per host, p50 latency went from 16 ms to 2.7 s
    and 60% of blocks were lost, bench/bench_p2p.py)."""
    router = GossipSub([PROTOCOL_ID_V11], degree=6, degree_low=4, degree_high=12,
                       heartbeat_interval=1, max_messages_per_topic_per_second=float("inf"),
                       adaptive_gossip_enabled=False)
    return SafePubsub(host, router, max_inbound_rpc_size=max_frame), router


def listen_addr(host: IHost) -> multiaddr.Multiaddr:
    """The host's first address with its /p2p/ peer id (what peers bootstrap from): the first
    announced one if it announces any. IndexError if it listens nowhere (py-libp2p logs a bind
    error and carries on)."""
    if not host.get_transport_addrs():  # announced addresses alone would hide that
        raise IndexError("the host listens nowhere")
    return host.get_addrs()[0]
