"""The p2p service the node runs: gossip of transactions, proposals, votes and evidence, fetches
of what gossip lost, peer scoring, bans and re-dialling.

    async with open_p2p(config, handlers) as p2p:
        await p2p.publish_vote(signed_vote)
        async for message in p2p.inbound: ...
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import multiaddr
import rlp
import trio
from google.protobuf.message import DecodeError
from libp2p.abc import IHost, INetConn, INetStream, INetwork, INotifee
from libp2p.io.exceptions import MessageTooLarge
from libp2p.io.msgio import VarIntLengthMsgReadWriter
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr
from libp2p.pubsub.pb import rpc_pb2
from libp2p.request_response import BytesCodec, RequestResponse, RequestResponseConfig
from libp2p.request_response.exceptions import MessageTooLargeError, RequestResponseError
from libp2p.tools.anyio_service import background_trio_service

from consensus.evidence import DuplicateVoteEvidence
from consensus.messages import SignedProposal, SignedVote
from node.p2p import wire
from node.p2p.host import listen_addr, load_or_create_key, make_gossip, make_host
from node.p2p.scoring import PeerScores, ScoreConfig
from node.p2p.wire import Fault, Kind, Limits, PeerFault

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class P2PConfig:
    data_dir: Path                                 # holds the peer key (`p2p_key`)
    chain_id: int
    listen: str = "/ip4/127.0.0.1/tcp/0"
    bootstrap: Sequence[str] = ()                  # multiaddrs with /p2p/<peer id>; re-dialled
    announce: Sequence[str] = ()                   # what identify tells peers instead of `listen`
    limits: Limits = Limits()
    scores: ScoreConfig = ScoreConfig()
    request_timeout_s: float = 5.0
    redial_interval_s: float = 1.0
    inbound_slots: int = 4096


@dataclasses.dataclass(frozen=True)
class Handlers:
    """What the node supplies. `block` answers a block fetch with the node's bytes for that
    height (block and commit, RLP, the node's business) or None; `blocks(first, count,
    max_bytes)`, the bytes of consecutive blocks from `first` (fewer when it lacks one, or once
    they pass `max_bytes`), answers a range fetch (without it, `block` is asked per height);
    `check_block` / `check_tx` raise ValueError on bytes the node refuses (the sender is
    scored down)."""
    block: Callable[[int], Awaitable[bytes | None]]
    proposal: Callable[[int, int], Awaitable[tuple[SignedProposal, bytes] | None]]
    votes: Callable[[int, int], Awaitable[Sequence[SignedVote]]]
    check_block: Callable[[bytes], None]
    check_tx: Callable[[bytes], None]
    blocks: Callable[[int, int, int], Awaitable[Sequence[bytes]]] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Inbound:
    """A gossip message that passed validation: a SignedVote, (SignedProposal, block bytes),
    DuplicateVoteEvidence, transaction bytes or an OutputSignature, and the peer that published
    it (never us)."""
    kind: Kind
    message: object
    peer: ID


class FetchFailed(Exception):
    """A fetch got no usable answer (timeout, transport error, or a faulty peer, scored down)."""


class P2P:
    def __init__(self, config: P2PConfig, handlers: Handlers, host: IHost, nursery: trio.Nursery) -> None:
        self.config = config
        self.handlers = handlers
        self.host = host
        self.scores = PeerScores(config.scores)
        self.pubsub, self.router = make_gossip(host, config.limits.gossip_frame)
        self._requests = RequestResponse(host)
        self._nursery = nursery
        self._persistent: dict[ID, PeerInfo] = {}
        self._dialling: set[ID] = set()
        self._inbound_send, self.inbound = trio.open_memory_channel[Inbound](config.inbound_slots)
        self._own_id = host.get_id().to_bytes()
        self.dropped_inbound = 0     # messages validated but not taken by the node in time
        # Gossip traffic by topic, [messages, bytes] per direction: plain ints on the hot path,
        # read by --metrics at scrape time (node/metrics.py ConsensusMetrics).
        self.traffic: dict[str, dict[Kind, list[int]]] = {d: {k: [0, 0] for k in Kind} for d in ("in", "out")}
        for protocol in self.router.get_protocols():
            host.set_stream_handler(protocol, self._isolated(self.pubsub.stream_handler))
        for protocol, answer in ((wire.BLOCK_PROTOCOL, self._answer_block),
                                 (wire.BLOCKS_PROTOCOL, self._answer_blocks),
                                 (wire.PROPOSAL_PROTOCOL, self._answer_proposal),
                                 (wire.VOTES_PROTOCOL, self._answer_votes)):
            host.set_stream_handler(protocol, self._isolated(self._serve_request(protocol, answer)))
        for kind in Kind:
            self.pubsub.set_topic_validator(self.topic(kind), self._validator(kind), False)
        host.get_network().register_notifee(_BanGate(self))

    # --- identity and peers ---------------------------------------------------------------------

    @property
    def peer_id(self) -> ID:
        return self.host.get_id()

    @property
    def address(self) -> multiaddr.Multiaddr:
        return listen_addr(self.host)

    def topic(self, kind: Kind) -> str:
        return wire.topic(self.config.chain_id, kind)

    def connected_peers(self) -> list[ID]:
        return self.host.get_connected_peers()

    def add_persistent_peer(self, address: str | multiaddr.Multiaddr) -> ID:
        """Keep a connection to this peer (validators, bootstrap nodes): py-libp2p never re-dials."""
        info = info_from_p2p_addr(multiaddr.Multiaddr(str(address)))
        self._persistent[info.peer_id] = info
        return info.peer_id

    async def _keep_connected(self) -> None:
        while True:
            for peer in self.scores.expire_bans():
                self.pubsub.remove_from_blacklist(peer)
            connected = set(self.connected_peers())
            for peer, info in self._persistent.items():
                if peer not in connected and peer not in self._dialling and not self.scores.is_banned(peer):
                    self._dialling.add(peer)
                    self._nursery.start_soon(self._dial, info)
            await trio.sleep(self.config.redial_interval_s)

    async def _dial(self, info: PeerInfo) -> None:
        # py-libp2p refuses to dial a peer for 60 s after all its addresses failed once: two
        # validators cut apart for a moment would stay apart for a minute after the network healed.
        self.host.get_network().unblock_peer(info.peer_id)
        try:
            with trio.fail_after(self.config.request_timeout_s):
                await self.host.connect(info)
        except Exception as exc:  # any dial failure: the next round retries
            logger.debug("dial %s failed: %s", info.peer_id, exc)
        finally:
            self._dialling.discard(info.peer_id)

    # --- scoring ----------------------------------------------------------------------------------

    def penalise(self, peer: ID, fault: Fault = Fault.REPORTED) -> None:
        """Score `peer` down; below the threshold it is banned and disconnected."""
        if peer == self.peer_id:
            return
        logger.info("peer %s: %s (score %.0f)", peer, fault.name, self.scores.score(peer) - fault.value)
        if self.scores.penalise(peer, fault):
            logger.warning("peer %s banned for %.0f s", peer, self.config.scores.ban_seconds)
            self.pubsub.add_to_blacklist(peer)
            self._nursery.start_soon(self._disconnect, peer)

    async def _disconnect(self, peer: ID) -> None:
        try:
            await self.host.disconnect(peer)
        except Exception as exc:  # already gone
            logger.debug("disconnect %s: %r", peer, exc)

    def _isolated(self, handler: Callable[[INetStream], Awaitable[None]]) -> Callable[[INetStream], Awaitable[None]]:
        """Every stream handler runs in here: a peer's fault stays with the peer. py-libp2p runs
        handlers in the host's nursery, so one exception escaping (an undecodable pubsub frame
        raises protobuf's DecodeError) would end the whole host (NOTES.md, bug 1)."""
        async def serve(stream: INetStream) -> None:
            peer = stream.muxed_conn.peer_id
            try:
                await handler(stream)
            except (PeerFault, DecodeError, MessageTooLarge) as exc:
                self.penalise(peer, _fault_of(exc))
                await _reset(stream)
            except Exception as exc:
                logger.debug("stream %s from %s ended: %r", stream.get_protocol(), peer, exc)
                await _reset(stream)
        return serve

    # --- gossip -----------------------------------------------------------------------------------

    def _validator(self, kind: Kind) -> Callable[[ID, rpc_pb2.Message], bool]:
        def validate(forwarder: ID, msg: rpc_pb2.Message) -> bool:
            try:
                self._decode(kind, msg.data)
            except PeerFault as exc:
                logger.debug("%s from %s refused: %s", kind.value, forwarder, exc)
                self.penalise(forwarder, exc.fault)
                return False
            return True
        return validate

    def _decode(self, kind: Kind, data: bytes) -> object:
        h = self.handlers
        return wire.decode_gossip(kind, data, self.config.chain_id, self.config.limits, h.check_block, h.check_tx)

    async def _deliver(self, kind: Kind, subscription) -> None:
        while True:
            msg = await subscription.get()
            if msg.from_id == self._own_id:
                continue    # pubsub hands our own publications back; the node has them already
            # Validated already (pubsub ran `_validator`); decoding again is cheap RLP work.
            item = Inbound(kind, self._decode(kind, msg.data), ID(msg.from_id))
            counts = self.traffic["in"][kind]
            counts[0] += 1
            counts[1] += len(msg.data)
            try:
                self._inbound_send.send_nowait(item)
            except trio.WouldBlock:
                self.dropped_inbound += 1   # the node lags; fetches recover what it needs

    async def _publish(self, kind: Kind, data: bytes) -> None:
        """Publish, refusing (ValueError) what peers would drop and score us down for."""
        limit = self.config.limits.of(kind)
        if len(data) > limit:
            raise ValueError(f"{kind.value} message of {len(data)} bytes is over the limit {limit}")
        await self.pubsub.publish(self.topic(kind), data)
        counts = self.traffic["out"][kind]
        counts[0] += 1
        counts[1] += len(data)

    async def publish_vote(self, vote: SignedVote) -> None:
        await self._publish(Kind.VOTE, vote.encode())

    async def publish_proposal(self, proposal: SignedProposal, block: bytes) -> None:
        await self._publish(Kind.PROPOSAL, wire.encode_proposal(proposal, block))

    async def publish_evidence(self, evidence: DuplicateVoteEvidence) -> None:
        await self._publish(Kind.EVIDENCE, evidence.encode())

    async def publish_tx(self, raw_tx: bytes) -> None:
        await self._publish(Kind.TX, raw_tx)

    async def publish_output_signature(self, signature: wire.OutputSignature) -> None:
        await self._publish(Kind.OUTPUT, signature.encode())

    # --- request / response -----------------------------------------------------------------------
    # The client side is py-libp2p's RequestResponse (framing, limits, timeouts). The serving side
    # is ours because the library's swallows oversized and undecodable requests without telling
    # us who sent them, and the sender must be scored down.

    def _serve_request(self, protocol: str,
                       answer: Callable[[bytes], Awaitable[bytes]]) -> Callable[[INetStream], Awaitable[None]]:
        limit = self.config.limits.response(protocol)

        async def serve(stream: INetStream) -> None:
            with trio.fail_after(self.config.request_timeout_s):
                request = await VarIntLengthMsgReadWriter(stream, wire.MAX_REQUEST_BYTES).read_msg()
                response = await answer(request)
                if len(response) > limit:   # the asker would score us down for it
                    logger.error("%s: our answer of %d bytes is over the limit %d", protocol, len(response), limit)
                    await stream.reset()
                    return
                await VarIntLengthMsgReadWriter(stream, limit).write_msg(response)
            await stream.close()
        return serve

    async def _answer_block(self, request: bytes) -> bytes:
        (height,) = wire.decode_request(request, 1)
        block = await self.handlers.block(height)
        return rlp.encode([] if block is None else [block])

    async def _answer_blocks(self, request: bytes) -> bytes:
        """Consecutive blocks from the first asked for, as many as were asked and fit the
        response limit (the first always does: `Limits.response` leaves room for the largest)."""
        first, count = wire.decode_blocks_request(request)
        budget = self.config.limits.response(wire.BLOCKS_PROTOCOL) - 16
        if self.handlers.blocks is not None:
            found = await self.handlers.blocks(first, count, budget)
        else:
            found = []
            for height in range(first, first + count):
                block = await self.handlers.block(height)
                if block is None:
                    break
                found.append(block)
                if sum(len(b) + 8 for b in found) > budget:
                    break
        kept, size = [], 0
        for block in list(found)[:count]:
            size += len(block) + 8      # 8 bounds an item's RLP header
            if kept and size > budget:
                break
            kept.append(block)
        return rlp.encode(kept)

    async def _answer_proposal(self, request: bytes) -> bytes:
        found = await self.handlers.proposal(*wire.decode_request(request, 2))
        return rlp.encode([] if found is None else [found[0].encode(), found[1]])

    async def _answer_votes(self, request: bytes) -> bytes:
        votes = await self.handlers.votes(*wire.decode_request(request, 2))
        return rlp.encode([vote.encode() for vote in votes])

    async def _request(self, peer: ID, protocol: str, request: bytes) -> list[bytes]:
        config = RequestResponseConfig(timeout=self.config.request_timeout_s, max_request_size=wire.MAX_REQUEST_BYTES,
                                       max_response_size=self.config.limits.response(protocol))
        try:
            response = await self._requests.send_request(peer, [protocol], request, BytesCodec(), config)
        except MessageTooLargeError as exc:
            self.penalise(peer, Fault.OVERSIZED)
            raise FetchFailed(f"{protocol} from {peer}: {exc}") from None
        except RequestResponseError as exc:
            raise FetchFailed(f"{protocol} from {peer}: {exc}") from None
        return self._checked(peer, lambda: wire.decode_response_list(response))

    def _checked(self, peer: ID, read: Callable[[], object]):
        try:
            return read()
        except PeerFault as exc:
            self.penalise(peer, exc.fault)
            raise FetchFailed(f"{peer}: {exc}") from None

    async def fetch_block(self, peer: ID, height: int) -> bytes | None:
        """The node's bytes for block `height` (checked by `check_block`), None if `peer` lacks it."""
        items = await self._request(peer, wire.BLOCK_PROTOCOL, wire.encode_request(height))
        if not items:
            return None
        return self._checked(peer, lambda: wire.block_from(items, self.handlers.check_block))

    async def fetch_blocks(self, peer: ID, first: int, count: int) -> list[bytes]:
        """The node's bytes for blocks `first`, `first` + 1, ... (at most `count`, each checked by
        `check_block`); fewer when `peer` lacks the rest or they fill a response, none when it
        lacks `first`."""
        items = await self._request(peer, wire.BLOCKS_PROTOCOL, wire.encode_request(first, count))
        return self._checked(peer, lambda: wire.blocks_from(items, count, self.handlers.check_block))

    async def fetch_proposal(self, peer: ID, height: int, round_: int) -> tuple[SignedProposal, bytes] | None:
        items = await self._request(peer, wire.PROPOSAL_PROTOCOL, wire.encode_request(height, round_))
        if not items:
            return None
        return self._checked(peer, lambda: wire.proposal_from(items, self.config.chain_id, self.handlers.check_block))

    async def fetch_votes(self, peer: ID, height: int, round_: int) -> list[SignedVote]:
        items = await self._request(peer, wire.VOTES_PROTOCOL, wire.encode_request(height, round_))
        return self._checked(peer, lambda: [wire.decode_vote(item, self.config.chain_id) for item in items])


def _fault_of(exc: Exception) -> Fault:
    if isinstance(exc, PeerFault):
        return exc.fault
    return Fault.OVERSIZED if isinstance(exc, MessageTooLarge) else Fault.MALFORMED   # DecodeError


async def _reset(stream: INetStream) -> None:
    try:
        await stream.reset()
    except Exception as exc:  # the stream may already be gone with its connection
        logger.debug("reset failed: %r", exc)


class _BanGate(INotifee):
    """Drops connections from banned peers as they arrive (py-libp2p has no peer-id gater)."""

    def __init__(self, p2p: P2P) -> None:
        self.p2p = p2p

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        peer = conn.muxed_conn.peer_id
        if self.p2p.scores.is_banned(peer):
            self.p2p._nursery.start_soon(self.p2p._disconnect, peer)

    async def disconnected(self, network: INetwork, conn: INetConn) -> None: ...
    async def opened_stream(self, network: INetwork, stream: INetStream) -> None: ...
    async def closed_stream(self, network: INetwork, stream: INetStream) -> None: ...
    async def listen(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None: ...
    async def listen_close(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None: ...


@asynccontextmanager
async def open_p2p(config: P2PConfig, handlers: Handlers) -> AsyncIterator[P2P]:
    """Start the host (listening on `config.listen`), gossip and the re-dialler; yield the
    service once its topics are subscribed; stop everything on exit."""
    host = make_host(load_or_create_key(config.data_dir), config.announce)
    async with host.run([multiaddr.Multiaddr(config.listen)]), trio.open_nursery() as nursery:
        p2p = P2P(config, handlers, host, nursery)
        try:
            async with background_trio_service(p2p.pubsub), background_trio_service(p2p.router):
                await p2p.pubsub.wait_until_ready()
                for kind in Kind:
                    nursery.start_soon(p2p._deliver, kind, await p2p.pubsub.subscribe(p2p.topic(kind)))
                for address in config.bootstrap:
                    p2p.add_persistent_peer(address)
                nursery.start_soon(p2p._keep_connected)
                yield p2p
        finally:
            nursery.cancel_scope.cancel()
            # Close connections explicitly, even when cancelled: leaving host.run alone leaves the
            # sockets open, and peers then keep a dead connection (and never re-dial) until GC.
            with trio.CancelScope(shield=True), trio.move_on_after(2):
                await host.close()
