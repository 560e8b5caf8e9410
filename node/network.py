"""The validator network: the consensus driver (node/validator.py) over node/p2p.

`P2PNetwork` is the driver's `Network`: it publishes proposals, votes, evidence and the
transactions clients send to this node's JSON-RPC (so they reach the proposer, whichever
validator it is), hands what peers publish to the driver and the pool, and answers peers'
fetches from the node (blocks with their commits, this height's proposals and votes).
Transactions go out on their own queue, several to a gossip message (`encode_tx_batch`) when
they arrive faster than one message is sent: a client's burst costs a few gossipsub messages
(each signed, relayed and checked by every peer) rather than one each, and never delays a vote.

Gossip is not reliable delivery (NOTES.md), so two loops repair what it loses:
- **votes and proposals**: while consensus stays at one (height, round, step) for longer than
  `repair_after`, fetch that round's proposal and votes from a peer (as CometBFT's reactor
  sends a peer what it lacks, pulled instead of pushed);
- **block sync**: when peers' messages show heights past ours for longer than `repair_after`,
  fetch the missing blocks with their commits, a range of up to MAX_BLOCKS_PER_REQUEST per
  request (`BLOCKS_PROTOCOL`; requests run ahead of the import), verify each commit against the validator set of its height (`ChainApplication.import_decided`), import,
  and let consensus join at the head.
A peer whose answer fails those checks is scored down (node/p2p/scoring.py).
"""
from __future__ import annotations

import logging
import random
from collections import OrderedDict

import rlp
import trio

from consensus import ConsensusError, Decide, ProposalReceived, SignedProposal, SignedVote, VoteReceived
from consensus.evidence import DuplicateVoteEvidence
from node.consensus import split_block
from node.p2p.service import P2P, FetchFailed, Handlers
from node.p2p.wire import MAX_BLOCKS_PER_REQUEST, Fault, Kind, OutputSignature
from node.validator import ConsensusDriver

log = logging.getLogger(__name__)

REPAIR_AFTER_S = 1.0
TX_BATCH_BYTES = 64 * 1024
"""Most bytes of transactions published in one gossip message (the p2p limit of one is 128 KiB)."""
SYNC_RANGES = 4
"""Range requests (of MAX_BLOCKS_PER_REQUEST blocks) in flight ahead of the import, spread over the peers."""


def sync_bytes(node, height: int) -> bytes | None:
    """What a peer gets for a block fetch: RLP [consensus block, its commit], or None."""
    commit = node.commit_record(height)
    block = node.block_by_number(height)
    if commit is None or block is None:
        return None
    parent_commit = node.commit_record(height - 1) if height > 1 and block.header.extra_data else None
    return rlp.encode([rlp.encode([rlp.encode(block), parent_commit or b""]), commit])


def sync_range(node, first: int, count: int, max_bytes: int) -> list[bytes]:
    """What a peer gets for a range fetch: `sync_bytes` of `first`, `first` + 1, ... up to
    `count` blocks, stopping at one we lack or once they pass `max_bytes` (read in one go, in
    a worker thread, rather than a thread hop per block)."""
    found, size = [], 0
    for height in range(first, first + count):
        data = sync_bytes(node, height)
        if data is None:
            break
        found.append(data)
        size += len(data) + 8
        if size > max_bytes:
            break
    return found


def check_block_bytes(data: bytes) -> None:
    """The wire-level check of a proposal's block or a block response: RLP of two byte strings
    (the node checks the rest before it votes or imports)."""
    split_block(data)


def encode_tx_batch(raws: list[bytes]) -> bytes:
    """Several transactions in one gossip message: an RLP byte string holding the RLP list of
    the raw transactions (one gossipsub message, signed, relayed and checked once, instead of
    one per transaction). A lone raw transaction never starts like an RLP byte string
    (0x80-0xbf: a typed one starts with its type, below 0x80, a legacy one with a list header,
    0xc0 and up), so a message of one transaction, as before, still reads as one."""
    return raws[0] if len(raws) == 1 else rlp.encode(rlp.encode(raws))


def _is_batch(data: bytes) -> bool:
    return 0x80 <= data[0] <= 0xBF


def split_tx_message(data: bytes) -> list[bytes]:
    """The raw transactions of a tx gossip message; ValueError if it is malformed."""
    if not data:
        raise ValueError("empty transaction")
    if not _is_batch(data):
        return [data]
    try:
        raws = rlp.decode(rlp.decode(data, strict=True), strict=True)
    except rlp.exceptions.DecodingError as exc:
        raise ValueError(f"transaction batch is not RLP: {exc}") from None
    if not isinstance(raws, list) or not raws or not all(isinstance(r, bytes) and r and not _is_batch(r) for r in raws):
        raise ValueError("a transaction batch must be a non-empty RLP list of raw transactions")
    return raws


def check_tx_bytes(data: bytes) -> None:
    split_tx_message(data)


class PeerView:
    def __init__(self, p2p: P2P) -> None:
        self._p2p = p2p

    def __len__(self) -> int:
        return len(self._p2p.connected_peers())

    def __iter__(self):
        return iter(self._p2p.connected_peers())


class P2PNetwork:
    """Joins a running `P2P` service and a `ConsensusDriver` (call `attach`, then `run`)."""

    def __init__(self, p2p: P2P, repair_after: float = REPAIR_AFTER_S) -> None:
        self.p2p = p2p
        self.repair_after = repair_after
        self.driver: ConsensusDriver | None = None
        self._out_send, self._out_recv = trio.open_memory_channel(10_000)  # proposals, votes, evidence
        self._tx_send, self._tx_recv = trio.open_memory_channel(10_000)  # transactions
        self._senders: OrderedDict[object, object] = OrderedDict()  # message -> peer, for scoring
        self.bytes_sent = 0
        self.blocks_synced = 0  # imported by block sync (for --metrics)
        self.outputs = None  # with --l1: node.settlement.signatures.OutputSignatures, fed peers' signatures

    @property
    def peers(self) -> "PeerView":
        """The connected peers, live (net_peerCount reads its length)."""
        return PeerView(self.p2p)

    # -- handlers for node/p2p ---------------------------------------------------------------

    @staticmethod
    def handlers(driver_ref) -> Handlers:
        """node/p2p's callbacks; `driver_ref()` returns the driver once it exists."""
        async def block(height: int) -> bytes | None:
            driver = driver_ref()
            return None if driver is None else await trio.to_thread.run_sync(sync_bytes, driver.node, height)

        async def blocks(first: int, count: int, max_bytes: int) -> list[bytes]:
            driver = driver_ref()
            return [] if driver is None else await trio.to_thread.run_sync(sync_range, driver.node, first, count,
                                                                           max_bytes)

        async def proposal(height: int, round_: int) -> tuple[SignedProposal, bytes] | None:
            driver = driver_ref()
            machine = None if driver is None else driver.machine
            if machine is None or machine.height != height:
                return None
            kept = machine.proposals(round_)
            return (kept[0][0], kept[0][1].data) if kept else None

        async def votes(height: int, round_: int) -> list[SignedVote]:
            driver = driver_ref()
            machine = None if driver is None else driver.machine
            if machine is None or machine.height != height:
                return []
            return machine.votes.prevotes(round_).all_votes() + machine.votes.precommits(round_).all_votes()

        return Handlers(block=block, proposal=proposal, votes=votes, check_block=check_block_bytes,
                        check_tx=check_tx_bytes, blocks=blocks)

    # -- the driver's Network -----------------------------------------------------------------

    def _queue(self, kind: Kind, payload: tuple) -> None:
        try:
            (self._tx_send if kind is Kind.TX else self._out_send).send_nowait((kind, payload))
        except trio.WouldBlock:
            log.warning("p2p: outgoing queue full, dropping a %s (fetches recover it)", kind.value)

    def broadcast_proposal(self, proposal: SignedProposal, block: bytes) -> None:
        self._queue(Kind.PROPOSAL, (proposal, block))

    def broadcast_vote(self, vote: SignedVote) -> None:
        self._queue(Kind.VOTE, (vote,))

    def broadcast_evidence(self, evidence: DuplicateVoteEvidence) -> None:
        self._queue(Kind.EVIDENCE, (evidence,))

    def broadcast_transaction(self, raw: bytes) -> None:
        self._queue(Kind.TX, raw)

    def broadcast_output_signature(self, signature: OutputSignature) -> None:
        self._queue(Kind.OUTPUT, (signature,))

    def decided(self, decide: Decide) -> None:
        pass  # peers a height behind fetch the block with its commit (block sync)

    def rejected(self, message: object, error: ConsensusError) -> None:
        peer = self._senders.get(message)
        if peer is not None:
            self.p2p.penalise(peer, Fault.REPORTED)

    # -- loops --------------------------------------------------------------------------------

    async def run(self, driver: ConsensusDriver) -> None:
        self.driver = driver
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._publish)
            nursery.start_soon(self._publish_transactions)
            nursery.start_soon(self._receive)
            nursery.start_soon(self._repair)
            nursery.start_soon(self._sync)

    async def _publish(self) -> None:
        """One task publishes, in the order the driver sent (a vote never overtakes the proposal
        it is for). Transactions have their own queue and task (`_publish_transactions`): a
        burst of client transactions would otherwise hold the proposals and votes behind it."""
        publish = {Kind.PROPOSAL: self.p2p.publish_proposal, Kind.VOTE: self.p2p.publish_vote,
                   Kind.EVIDENCE: self.p2p.publish_evidence, Kind.OUTPUT: self.p2p.publish_output_signature}
        async for kind, payload in self._out_recv:
            try:
                await publish[kind](*payload)
                self.bytes_sent += sum(len(p) if isinstance(p, bytes) else len(p.encode()) for p in payload)
            except Exception as exc:  # no peers yet, or over a limit: fetches and re-sends recover
                log.debug("p2p: publishing a %s failed: %r", kind.value, exc)

    async def _publish_transactions(self) -> None:
        """Publish the queued transactions, as many as TX_BATCH_BYTES allows in one message:
        while one message is being sent the next ones queue up, so a burst travels in a few
        messages and a lone transaction leaves at once (no waiting to fill a batch)."""
        carry: bytes | None = None
        while True:
            raw = carry if carry is not None else (await self._tx_recv.receive())[1]
            carry, batch, size = None, [raw], len(raw)
            while True:
                try:
                    _, raw = self._tx_recv.receive_nowait()
                except trio.WouldBlock:
                    break
                if size + len(raw) > TX_BATCH_BYTES:
                    carry = raw
                    break
                batch.append(raw)
                size += len(raw)
            message = encode_tx_batch(batch)
            try:
                await self.p2p.publish_tx(message)
                self.bytes_sent += len(message)
            except Exception as exc:  # no peers yet, or over a limit
                log.debug("p2p: publishing %d transactions failed: %r", len(batch), exc)

    def _remember(self, message: object, peer) -> None:
        self._senders[message] = peer
        while len(self._senders) > 4096:
            self._senders.popitem(last=False)

    async def _receive(self) -> None:
        driver = self.driver
        async for item in self.p2p.inbound:
            if item.kind is Kind.VOTE:
                self._remember(item.message, item.peer)
                driver.deliver(VoteReceived(item.message))
            elif item.kind is Kind.PROPOSAL:
                proposal, block = item.message
                self._remember(proposal, item.peer)
                driver.deliver(ProposalReceived(proposal, block))
            elif item.kind is Kind.EVIDENCE:
                driver.evidence_seen(item.message)
            elif item.kind is Kind.OUTPUT:
                self.output_signature_received(item.message, item.peer)
            elif item.kind is Kind.TX:
                pooled = 0
                for raw in split_tx_message(item.message):  # checked already (check_tx_bytes)
                    try:
                        driver.node.mempool.add_raw(raw)
                    except Exception as exc:  # known, underpriced, nonce taken: the pool's own verdicts
                        log.debug("p2p: transaction from %s not pooled: %s", item.peer, exc)
                    else:
                        pooled += 1
                    await trio.lowlevel.checkpoint()  # the driver and JSON-RPC run between them
                if pooled:
                    driver.notify_transaction()

    def output_signature_received(self, signature: OutputSignature, peer) -> None:
        """A validator's signature of an output root: kept for the proposer if it agrees with our
        own execution, its publisher scored down if it does not (a node without --l1 only relays
        it, checked for form by node/p2p)."""
        if self.outputs is None:
            return
        from node.settlement.signatures import SignatureRefused

        try:
            self.outputs.add(signature)
        except SignatureRefused as exc:
            log.info("p2p: output signature from %s refused: %s", peer, exc)
            self.p2p.penalise(peer, Fault.REPORTED)

    def _peers(self) -> list:
        peers = self.p2p.connected_peers()
        random.shuffle(peers)
        return peers

    async def _repair(self) -> None:
        """Fetch the current round's proposal and votes when consensus has not moved for a while."""
        driver, last, since = self.driver, None, trio.current_time()
        while True:
            await trio.sleep(self.repair_after / 2)
            machine = driver.machine
            if machine is None:
                continue
            now_at = (machine.height, machine.round, machine.step)
            if now_at != last:
                last, since = now_at, trio.current_time()
                continue
            if trio.current_time() - since < self.repair_after:
                continue
            for peer in self._peers()[:2]:
                for round_ in sorted({0, machine.round} if machine.round else {0}):
                    try:
                        found = await self.p2p.fetch_proposal(peer, machine.height, round_)
                        votes = await self.p2p.fetch_votes(peer, machine.height, round_)
                    except FetchFailed as exc:
                        log.debug("p2p: repair fetch from %s: %s", peer, exc)
                        continue
                    if found is not None:
                        self._remember(found[0], peer)
                        driver.deliver(ProposalReceived(*found))
                    for vote in votes:
                        self._remember(vote, peer)
                        driver.deliver(VoteReceived(vote))
                await self._probe_ahead(peer, machine.height)
            since = trio.current_time()

    async def _probe_ahead(self, peer, height: int) -> None:
        """Has `peer` decided the height we are stuck at? Peers past it serve none of its
        proposals or votes, and their own messages (of the next height) may all have been sent
        before we were up to hear them: after all validators restart, the half that had not
        finalised a height waited for the half that had, which waited for a quorum at the next
        height, forever. A block at our height is what block sync needs to start."""
        if (self.driver.node.sync_target or 0) >= height:
            return
        try:
            data = await self.p2p.fetch_block(peer, height)
        except FetchFailed as exc:
            log.debug("p2p: probing %s for block %d: %s", peer, height, exc)
            return
        node = self.driver.node
        if data is not None and (node.sync_target or 0) < height and node.head().block_number < height:
            log.info("p2p: peer %s has decided height %d: syncing", peer, height)
            if node.sync_target is None or node.sync_target <= node.head().block_number:
                node.sync_start = node.head().block_number
            node.sync_target = height

    async def _sync(self) -> None:
        """Block sync: while peers are known to be past our head for `repair_after`, fetch the
        missing blocks with their commits, verify and import them in order."""
        driver = self.driver
        node, behind_since = driver.node, None
        while True:
            await trio.sleep(self.repair_after / 4)
            target = node.sync_target
            if target is None or target <= node.head().block_number:
                behind_since = None
                continue
            if behind_since is None:
                behind_since = trio.current_time()
            if trio.current_time() - behind_since < self.repair_after:
                continue
            imported = await self.sync_to(target)
            if imported:
                driver.jump_to_head()

    async def sync_to(self, target: int) -> int:
        """Fetch, verify and import blocks head + 1 .. target from peers; how many were imported.
        Fetching runs ahead of importing: the heights are cut into ranges of
        MAX_BLOCKS_PER_REQUEST, up to SYNC_RANGES ranges are requested at once (spread over
        the peers), and each imported range frees a slot for the next, so the network fetches
        while a worker thread executes. A pass that stops short (a range not fetched, a block
        refused) is retried with the peers shuffled again, as long as it got further."""
        imported = 0
        while self.driver.node.head().block_number < target:
            progressed = await self._sync_pass(target)
            if not progressed:
                break
            imported += progressed
        return imported

    async def _fetch_range(self, peer, first: int, count: int) -> list[bytes]:
        """Blocks `first` .. `first` + `count` - 1 from `peer`, in as many requests as its
        responses' size limit takes; fewer if it lacks some or fails."""
        blocks: list[bytes] = []
        while len(blocks) < count:
            try:
                got = await self.p2p.fetch_blocks(peer, first + len(blocks), count - len(blocks))
            except FetchFailed as exc:
                log.debug("p2p: blocks %d.. from %s: %s", first + len(blocks), peer, exc)
                break
            if not got:
                break
            blocks.extend(got)
        return blocks

    async def _sync_pass(self, target: int) -> int:
        driver = self.driver
        node = driver.node
        start = node.head().block_number + 1
        peers = self._peers()
        if not peers or start > target:
            return 0
        ranges = [(first, min(MAX_BLOCKS_PER_REQUEST, target + 1 - first))
                  for first in range(start, target + 1, MAX_BLOCKS_PER_REQUEST)]
        arrived = {first: trio.Event() for first, _ in ranges}
        fetched: dict[int, tuple[list[bytes], object]] = {}
        slots = trio.Semaphore(SYNC_RANGES)
        stopped = False

        async def fetch(first: int, count: int, peer) -> None:
            try:
                fetched[first] = (await self._fetch_range(peer, first, count), peer)
            finally:
                arrived[first].set()

        async def request_all(nursery: trio.Nursery) -> None:
            for i, (first, count) in enumerate(ranges):
                await slots.acquire()
                if stopped:
                    return
                nursery.start_soon(fetch, first, count, peers[i % len(peers)])

        imported = 0
        async with trio.open_nursery() as nursery:
            nursery.start_soon(request_all, nursery)
            for first, count in ranges:
                await arrived[first].wait()
                blocks, peer = fetched.pop(first)
                refused = False
                for height, data in enumerate(blocks, start=first):
                    try:
                        block, commit = split_block(data)
                        await trio.to_thread.run_sync(driver.app.import_decided, height, block, commit)
                    except Exception as exc:  # a block or commit that does not prove itself: the peer's fault
                        log.info("p2p: block %d from %s refused: %s", height, peer, exc)
                        if node.head().block_number < height:
                            self.p2p.penalise(peer, Fault.MALFORMED)
                        refused = True
                        break
                    imported += 1
                    self.blocks_synced += 1
                if refused or len(blocks) < count:
                    break
                slots.release()
            stopped = True  # the fetches in flight end on their own (answered or timed out)
            slots.release()
        return imported
