"""`ConsensusDriver`: runs the pure Tendermint state machine (consensus.StateMachine) on the
node's trio loop, as CometBFT's `receiveRoutine` runs its state: one task feeds it events in
order (messages from the network, timer expiries, the application's answers) and carries out
the actions it returns (docs/consensus.md, "The seam with the node").

Block production is this path for one validator as for many: the devnet's validator is its own
quorum, so its proposal is decided in the same `handle` call and committed by the same
`finalize` (one execution: the block prepare built is the one committed). Between heights the
driver waits `block_time` (CometBFT's timeout_commit, counted from the previous height's start
as the old block timer did); with `block_time` 0 it starts a height only when the pool has news
(CometBFT's create_empty_blocks = false), or when the network shows the next height started.

Signing safety (issue 13, item 5): every PersistSignerState is written with fsync (file, then
rename, then directory) before any message signed under it leaves the node, and before a
decided block is finalised; a restarted validator reloads it and cannot double-sign. The
write-ahead log holds the consensus inputs of the current height that cannot be regenerated
(proposals, own included, and votes received); replayed after a restart they let the validator
resume its round instead of waiting for peers to send everything again.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import pathlib
import struct
from collections.abc import Callable
from typing import Protocol

import rlp
import trio

from consensus import (
    BlockProposed, BlockValidated, BroadcastProposal, BroadcastVote, ConsensusError, Decide, EvidenceFound,
    PersistSignerState, ProposalReceived, Rejected, RequestBlock, ScheduleTimeout, Signer, SignerState,
    SignedProposal, SignedVote, StateMachine, Step, TimeoutConfig, TimeoutElapsed, ValidateBlock, VoteReceived,
)
from consensus.errors import MalformedMessage
from consensus.evidence import DuplicateVoteEvidence
from node.chain import Node
from node.consensus import ChainApplication, bitmap_signers, evidence_transaction

log = logging.getLogger(__name__)

CONSENSUS_DIR = "consensus"
SIGNER_STATE_FILE = "signer_state.rlp"
WAL_FILE = "wal"
DEFAULT_TIMEOUTS = TimeoutConfig(propose=2000, propose_delta=500, prevote=1000, prevote_delta=500,
                                 precommit=1000, precommit_delta=500)
"""Shorter proposal wait than CometBFT's 3 s (issue 13 targets 1 s blocks on a LAN); the rest as CometBFT."""
GOSSIP_ALLOWANCE_S = 0.2
"""The least time between deciding a height and starting the next, when deciding took longer than
the block time (else the block time's boundary is later anyway): a transaction a client sends on
seeing the decided block reaches the next proposer by gossip before that proposer builds, instead
of missing the block by milliseconds and waiting a whole height more. CometBFT's timeout_commit,
counted from the commit, serves the same end; capped at a quarter of the block time."""


class Network(Protocol):
    """What the driver needs from p2p (node/p2p, or an in-process network in tests)."""

    def broadcast_proposal(self, proposal: SignedProposal, block: bytes) -> None: ...

    def broadcast_vote(self, vote: SignedVote) -> None: ...

    def broadcast_evidence(self, evidence: DuplicateVoteEvidence) -> None: ...

    def broadcast_transaction(self, raw: bytes) -> None: ...

    def decided(self, decide: Decide) -> None:
        """A height was decided here (what a lagging peer needs: the proposal, block and commit)."""

    def rejected(self, message: object, error: ConsensusError) -> None:
        """A message that was wrong in itself: score its sender down."""


# -- durable files --------------------------------------------------------------------------

def _fsync_dir(path: pathlib.Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SignerStateFile:
    """The signer's last signed (height, round, step) and its votes at that height, on disk."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path

    def load(self) -> SignerState:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return SignerState()
        try:
            return SignerState.decode(data)
        except MalformedMessage as exc:
            # Never sign on a guess: a damaged file could hide what was signed already.
            raise ConsensusError(f"signer state {str(self.path)!r} is damaged ({exc}); restore it from a backup "
                                 "before this validator signs again") from None

    def save(self, state: SignerState) -> None:
        """Write, fsync, rename over the old file, fsync the directory: durable before return."""
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, state.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)


class ConsensusWal:
    """Append-only log of the current height's inputs: records [height, kind, message] framed
    by a 4-byte length. A torn last record (a crash mid-write) is ignored on reading."""

    PROPOSAL, VOTE = 1, 2
    MAX_RECORD = 16 * 1024 * 1024

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        self._file = open(path, "ab")

    def append(self, height: int, event: ProposalReceived | VoteReceived) -> None:
        if isinstance(event, ProposalReceived):
            body = rlp.encode([height, self.PROPOSAL, event.proposal.encode(), event.block])
        else:
            body = rlp.encode([height, self.VOTE, event.vote.encode(), b""])
        self._file.write(struct.pack(">I", len(body)) + body)
        self._file.flush()

    def read(self, height: int) -> list[ProposalReceived | VoteReceived]:
        """The logged events of `height`, in order."""
        events: list[ProposalReceived | VoteReceived] = []
        data = self.path.read_bytes()
        at = 0
        while at + 4 <= len(data):
            (size,) = struct.unpack_from(">I", data, at)
            if size > self.MAX_RECORD or at + 4 + size > len(data):
                break  # torn tail
            try:
                h, kind, message, block = rlp.decode(data[at + 4:at + 4 + size])
                if int.from_bytes(h, "big") == height:
                    kind = int.from_bytes(kind, "big")
                    events.append(ProposalReceived(SignedProposal.decode(message), block) if kind == self.PROPOSAL
                                  else VoteReceived(SignedVote.decode(message)))
            except (rlp.exceptions.RLPException, ValueError, ConsensusError):
                break
            at += 4 + size
        return events

    def reset(self) -> None:
        """Start a new height: the previous one's inputs are no longer needed."""
        self._file.close()
        self._file = open(self.path, "wb")

    def close(self) -> None:
        self._file.close()


# -- the driver -----------------------------------------------------------------------------

class _StartHeight:
    """Internal event: begin the next height (after timeout_commit, or news in wait mode)."""

    def __init__(self, height: int) -> None:
        self.height = height


class _Jump:
    """Internal event: the head moved past the machine's height (block sync imported blocks)."""


class ConsensusDriver:
    """Drives one StateMachine over a Node. `key`: the validator's staking key (None: follow
    only). `network`: where messages go (None: a single validator with no peers)."""

    def __init__(self, node: Node, key: bytes | None, *, block_time: float,
                 timeouts: TimeoutConfig = DEFAULT_TIMEOUTS, network: Network | None = None,
                 on_decide: Callable[[Decide], None] | None = None) -> None:
        if not math.isfinite(block_time) or block_time < 0:
            raise ValueError(f"invalid block time {block_time}")
        self.node = node
        self.block_time = block_time
        self.empty_blocks = block_time > 0
        self.timeouts = timeouts
        self.network = network
        self.on_decide = on_decide
        directory = pathlib.Path(node.datadir) / CONSENSUS_DIR
        directory.mkdir(exist_ok=True)
        self.signer_file = SignerStateFile(directory / SIGNER_STATE_FILE)
        self.signer = None if key is None else Signer(key, node.chain_id, self.signer_file.load())
        self._key = key
        self.app = ChainApplication(node, None if self.signer is None else self.signer.address)
        self.wal = ConsensusWal(directory / WAL_FILE)
        self.machine: StateMachine | None = None
        self._send, self._recv = trio.open_memory_channel(math.inf)
        self._news = trio.Event()  # a transaction arrived, or a peer is at the next height
        self._timers: dict[Step, trio.CancelScope] = {}
        self._busy: dict[tuple[int, int], trio.Event] = {}  # rounds whose block is being built or executed
        self._height_started = 0.0
        self._decided_at = 0.0
        self._started = False
        self._nursery: trio.Nursery | None = None
        self.evidence: list[DuplicateVoteEvidence] = []
        # For --metrics (node/metrics.py ConsensusMetrics reads these at scrape time):
        self.votes_missed = 0  # heights we could sign whose commit (in the next header) lacks our precommit
        self.metrics = None  # a ConsensusMetrics: step durations and rounds per height, as they happen
        self._at: tuple | None = None  # (height, round, step) and when it began
        self._at_since = 0.0

    def state(self) -> dict:
        """For ol_consensusState and `openledger testnet`'s table."""
        machine = self.machine
        if machine is None:
            return {"height": self.node.head().block_number + 1, "round": 0, "step": "starting"}
        return {"height": machine.height, "round": machine.round, "step": machine.step.name.lower(),
                "validator": self.signer is not None and self.signer.address in machine.validators,
                "validators": len(machine.validators),
                "p2pBytesPublished": getattr(self.network, "bytes_sent", 0)}

    # -- inputs ------------------------------------------------------------------------------

    def notify_transaction(self, _tx_hash: bytes = b"") -> None:
        """A transaction entered the pool (from the trio thread)."""
        self._news.set()

    def deliver(self, event: ProposalReceived | VoteReceived) -> None:
        """A proposal or vote from the network (from the trio thread)."""
        machine, height = self.machine, self._height_of(event)
        if machine is not None and height > machine.height:
            self._news.set()  # the others moved on: do not wait for transactions of our own
            if (self.node.sync_target or 0) < height - 1:
                # a message of a later height: the network decided blocks this node lacks
                # (block sync fetches them if consensus does not decide them soon)
                if self.node.sync_target is None or self.node.sync_target <= self.node.head().block_number:
                    self.node.sync_start = self.node.head().block_number
                self.node.sync_target = height - 1
        self._send.send_nowait(event)

    def evidence_seen(self, evidence: DuplicateVoteEvidence) -> None:
        """Evidence a peer published (verified by node/p2p), or found here: put on chain."""
        if evidence in self.evidence:
            return
        self.evidence.append(evidence)
        if self.signer is None:
            return
        try:  # Staking.submitEvidence from our key: the VM verifies, slashes and jails
            raw = evidence_transaction(self.node, self._key, evidence)
            self.node.mempool.add_raw(raw)
        except Exception as exc:  # e.g. no balance for gas: another validator submits it
            log.warning("could not submit evidence at height %d: %s", evidence.height, exc)
            return
        self.notify_transaction()
        if self.network is not None:
            self.network.broadcast_transaction(raw)

    def jump_to_head(self) -> None:
        """Blocks were imported by block sync: consensus continues at the new head (from the
        trio thread)."""
        self._send.send_nowait(_Jump())

    @staticmethod
    def _height_of(event: ProposalReceived | VoteReceived) -> int:
        return event.proposal.proposal.height if isinstance(event, ProposalReceived) else event.vote.vote.height

    # -- the loop ----------------------------------------------------------------------------

    async def run(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        height = self.node.head().block_number + 1
        self.machine = StateMachine(chain_id=self.node.chain_id, height=height,
                                    validators=self.app.validator_set(height), block_hash=self.app.block_hash,
                                    signer=self.signer, timeouts=self.timeouts)
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                resuming = self.signer is not None and self.signer.state.hrs[0] == height
                replay = self.wal.read(height)
                if resuming or replay or self.empty_blocks:
                    await self._start()
                else:
                    nursery.start_soon(self._start_after_news, height, False)
                for event in replay:
                    await self._carry_out(self.machine.handle(event))
                async for event in self._recv:
                    await self._step(event)
        finally:
            self.wal.close()

    async def _start(self) -> None:
        self._started = True
        self._height_started = trio.current_time()
        self._news = trio.Event()
        await self._carry_out(self.machine.start())
        self._track()

    async def _step(self, event) -> None:
        machine = self.machine
        if isinstance(event, _Jump):
            height = self.node.head().block_number + 1
            if height > machine.height:
                self.wal.reset()
                self.machine = StateMachine(chain_id=self.node.chain_id, height=height,
                                            validators=self.app.validator_set(height), block_hash=self.app.block_hash,
                                            signer=self.signer, timeouts=self.timeouts)
                await self._start()
            return
        if isinstance(event, _StartHeight):
            if event.height == machine.height and not self._started:
                await self._start()
            elif event.height == machine.height + 1 and self._started:
                self.wal.reset()
                self._height_started = trio.current_time()
                self._news = trio.Event()
                await self._carry_out(machine.start_height(event.height, self.app.validator_set(event.height)))
                self._track()
            return
        if not self._started:
            if not isinstance(event, (ProposalReceived, VoteReceived)):
                return
            await self._start()  # the first height in wait mode, started by a peer
        if isinstance(event, (ProposalReceived, VoteReceived)) and self._height_of(event) == machine.height:
            self.wal.append(machine.height, event)
        await self._carry_out(machine.handle(event))
        self._track()

    def _track(self) -> None:
        """Step durations for --metrics: one tuple compare per event, a histogram observation
        per step change (a few per height)."""
        machine = self.machine
        at = (machine.height, machine.round, machine.step)
        if at != self._at:
            now = trio.current_time()
            if self._at is not None and self.metrics is not None:
                self.metrics.step(self._at[2], now - self._at_since)
            self._at, self._at_since = at, now

    async def _carry_out(self, actions) -> None:
        pending: SignerState | None = None
        for action in actions:
            if isinstance(action, PersistSignerState):
                pending = action.state
                continue
            if pending is not None and (self.network is not None or isinstance(action, Decide)):
                self.signer_file.save(pending)  # durable before anything signed under it leaves
                pending = None
            if isinstance(action, BroadcastVote):
                if self.network is not None:
                    self.network.broadcast_vote(action.vote)
            elif isinstance(action, BroadcastProposal):
                self.wal.append(action.proposal.proposal.height, ProposalReceived(action.proposal, action.block.data))
                if self.network is not None:
                    self.network.broadcast_proposal(action.proposal, action.block.data)
            elif isinstance(action, ScheduleTimeout):
                self._schedule(action)
            elif isinstance(action, RequestBlock):
                self._nursery.start_soon(self._prepare, action)
            elif isinstance(action, ValidateBlock):
                self._nursery.start_soon(self._validate, action)
            elif isinstance(action, Decide):
                await self._decide(action)
            elif isinstance(action, EvidenceFound):
                log.warning("equivocation at height %d round %d", action.evidence.height, action.evidence.round)
                if self.network is not None and action.evidence not in self.evidence:
                    self.network.broadcast_evidence(action.evidence)
                self.evidence_seen(action.evidence)
            elif isinstance(action, Rejected):
                log.info("rejected consensus message: %s", action.error)
                if self.network is not None:
                    self.network.rejected(action.message, action.error)
        if pending is not None:
            self.signer_file.save(pending)

    def _schedule(self, action: ScheduleTimeout) -> None:
        """One live timer per step: a new one makes the old one stale (the machine ignores
        stale expiries anyway; cancelling keeps fast chains from piling up sleeping tasks)."""
        old = self._timers.get(action.step)
        if old is not None:
            old.cancel()
        scope = self._timers[action.step] = trio.CancelScope()

        async def timer() -> None:
            with scope:
                await trio.sleep(action.duration_ms / 1000)
                busy = self._busy.get((action.height, action.round))
                if action.step is Step.PROPOSE and busy is not None:
                    await busy.wait()  # the round's block is being built or checked here: no nil prevote yet
                self._send.send_nowait(TimeoutElapsed(action.height, action.round, action.step))

        self._nursery.start_soon(timer)

    async def _prepare(self, action: RequestBlock) -> None:
        """Build our block. Our own round's propose timeout waits for it: a block that takes
        longer to build than timeoutPropose (a full block on a busy machine) would otherwise end
        every round in a nil prevote, and a lone validator would never decide. The others wait
        only once the proposal reached them (`_validate`), so a silent proposer cannot stall them."""
        with self._busy_with(action.height, action.round):
            try:
                block = await trio.to_thread.run_sync(self.app.prepare_proposal, action.height, action.round)
            except ConsensusError as exc:  # the head moved (a block arrived by sync): the round times out
                log.info("no proposal at %d/%d: %s", action.height, action.round, exc)
                return
        self._send.send_nowait(BlockProposed(action.height, action.round, block))

    @contextlib.contextmanager
    def _busy_with(self, height: int, round_: int):
        """Marks the round's block as being built or executed here (the propose timeout waits)."""
        key = (height, round_)
        done = self._busy.setdefault(key, trio.Event())
        try:
            yield
        finally:
            if self._busy.get(key) is done:
                del self._busy[key]
            done.set()

    async def _validate(self, action: ValidateBlock) -> None:
        """Execute a proposed block. Like our own, a proposal being executed holds back this
        round's propose timeout: a full block on a slow machine would otherwise time out in every
        round (a new block each round, never validated in time), and the network would stall."""
        with self._busy_with(action.height, action.round):
            valid = await trio.to_thread.run_sync(self.app.process_proposal, action.height, action.round, action.block)
        self._send.send_nowait(BlockValidated(action.height, action.block.hash, valid))

    async def _decide(self, decide: Decide) -> None:
        """Finalise (in a worker thread; a cancellation waits for it, so a commit is never cut
        off half way), then start the next height after timeout_commit."""
        await trio.to_thread.run_sync(self.app.finalize, decide.height, decide.block, decide.commit)
        self._decided_at = trio.current_time()
        self._count_missed(decide.height)
        if self.metrics is not None:
            self.metrics.decided(decide.round)
        if self.network is not None:
            self.network.decided(decide)
        if self.on_decide is not None:
            self.on_decide(decide)
        self._nursery.start_soon(self._start_after_news, decide.height + 1, self.node.head().gas_used > 0)

    def _count_missed(self, height: int) -> None:
        """The commit of `height - 1` that the network kept (block `height`'s header names its
        signers, as CometBFT's LastCommit) lacks our precommit: a missed vote."""
        if self.signer is None or height < 2:
            return
        validators = self.app.validator_set(height - 1)
        if self.signer.address not in validators:
            return
        header = self.node.header_by_number(height)
        try:
            signers = bitmap_signers(validators, header.extra_data)
        except ValueError:  # not a consensus header (an imported chain)
            return
        if self.signer.address not in signers:
            self.votes_missed += 1

    async def _start_after_news(self, height: int, head_had_transactions: bool) -> None:
        """timeout_commit: the next height starts `block_time` after this one started (and at
        least GOSSIP_ALLOWANCE_S after the decision, with peers); in wait mode (block time 0) once
        the pool has something new (or still has transactions after a block that took some), or a
        peer is already at the next height."""
        if self.empty_blocks:
            allowance = min(GOSSIP_ALLOWANCE_S, self.block_time / 4) if self.network is not None else 0.0
            await trio.sleep_until(max(self._height_started + self.block_time, self._decided_at + allowance))
        elif not (head_had_transactions and len(self.node.mempool)):
            await self._news.wait()
        self._send.send_nowait(_StartHeight(height))
