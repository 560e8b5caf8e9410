"""Output roots signed by the validator network. Every validator that runs with `--l1` signs the
output root of each L2 block the proposer will post next, once its own node has decided that
block, and gossips the signature (node/p2p, topic `output`); the proposer gathers them until more
than 2/3 of the stake OutputOracle holds has signed, then posts them (node/settlement/service.py).

Who signs output N: the set OutputOracle holds when N is posted. Outputs are posted every K
blocks (N = latest + K), each with the validator set of the block after it, and the deployment
starts with the genesis set (the set of height 1), so that set is the L2 validator set of height
N - K + 1: every node knows it from its own chain, without asking the L1. What is signed (the
root of block N and the hash of the set of height N + 1) every node computes the same way, so
the signatures of honest validators agree.

A peer's signature is checked against this node's own execution: signed by a member of that set,
over the root and next set this node computed. Anything else is refused (`SignatureRefused`) and
its publisher scored down. A signature of a block this node has not decided yet is dropped
without blame: signers publish theirs again (`REPUBLISH_S`) until the output is on the L1, so a
proposer that restarts or lagged gathers them again; the L1 stays the record of what was posted.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import threading
from collections.abc import Callable

import trio
from eth_keys.datatypes import PrivateKey

from consensus.errors import ConsensusError
from consensus.messages import recover_signer
from node.consensus import ChainApplication
from node.p2p.wire import OutputSignature
from node.settlement.deployment import Deployment
from node.settlement.l1 import L1, L1Error
from node.settlement.outputs import Output, output_at, output_digest, sign_digest, validator_set_hash

log = logging.getLogger(__name__)

KEEP_OUTPUTS = 16  # outputs whose signatures are kept (older ones are on the L1 or never will be)
AHEAD = 4  # outputs past the latest posted one that signers sign (the proposer needs the first)
REPUBLISH_S = 10.0  # a signature of an output not yet on the L1 is published again this often


class SignatureRefused(ValueError):
    """A signature no honest validator makes (not a validator of that output, or over a root or
    set that is not this node's): its publisher is scored down."""


@dataclasses.dataclass(frozen=True)
class Expected:
    """Output `output.block_number` as this node executed it."""

    output: Output
    next_set: tuple[tuple[bytes, int], ...]  # (address, stake) of the set of the block after it
    digest: bytes  # what OutputOracle verifies
    signers: dict[bytes, int]  # who signs it, with stake: the set OutputOracle holds for it

    @property
    def next_set_hash(self) -> bytes:
        return validator_set_hash(list(self.next_set))


class OutputSignatures:
    """The signatures over output roots this node holds: its own (by `keys` that are in an
    output's signer set) and peers' that checked out. Called from the trio thread (gossip) and
    from worker threads (the proposer's step, the signer), hence the lock."""

    def __init__(self, node, deployment: Deployment, output_interval: int, keys=()) -> None:
        self.node, self.deployment, self.interval = node, deployment, output_interval
        raw = [bytes.fromhex(k[2:]) if isinstance(k, str) else bytes(k) for k in keys if k is not None]
        self._keys = {PrivateKey(k).public_key.to_canonical_address(): k for k in raw}
        self._sets = ChainApplication(node)  # the validator sets of heights, as consensus stored them
        self._expected: dict[int, Expected] = {}
        self._gathered: dict[int, dict[bytes, bytes]] = {}
        self._lock = threading.Lock()

    def validator_set(self, height: int) -> tuple[tuple[bytes, int], ...]:
        return tuple((v.address, v.power) for v in self._sets.validator_set(height))

    def expected(self, number: int) -> Expected | None:
        """Output `number` on this node's chain; None before the node has decided block `number`
        (or for a number no output can have)."""
        if number < self.interval or number > self.node.head().block_number:
            return None
        with self._lock:
            found = self._expected.get(number)
        if found is None:
            d, output, next_set = self.deployment, output_at(self.node, number), self.validator_set(number + 1)
            digest = output_digest(d.l1_chain_id, d.oracle, d.l2_chain_id, number, output.root,
                                   validator_set_hash(list(next_set)))
            found = Expected(output, next_set, digest, dict(self.validator_set(number - self.interval + 1)))
            with self._lock:
                self._expected[number] = found
                _trim(self._expected)
        return found

    def sign(self, number: int) -> list[OutputSignature]:
        """This node's signatures of output `number` (one per key of ours in its signer set),
        kept with the others; none before the node has decided the block."""
        e = self.expected(number)
        if e is None:
            return []
        out = []
        for address, key in self._keys.items():
            if address in e.signers:
                out.append(OutputSignature(number, e.output.root, e.next_set_hash, sign_digest(key, e.digest)[1]))
                self._keep(number, address, out[-1].signature)
        return out

    def add(self, signature: OutputSignature) -> bool:
        """A peer's signature: True if it is new and kept, False if dropped without blame (a
        block not decided here yet, or already known); SignatureRefused if it is wrong."""
        number = signature.number
        e = self.expected(number)
        if e is None:
            return False
        if signature.root != e.output.root:
            raise SignatureRefused(f"output root of L2 block {number}: 0x{signature.root.hex()} signed, but this "
                                   f"node computed 0x{e.output.root.hex()}")
        if signature.next_set_hash != e.next_set_hash:
            raise SignatureRefused(f"output of L2 block {number}: signed with next validator set "
                                   f"0x{signature.next_set_hash.hex()}, this node's is 0x{e.next_set_hash.hex()}")
        try:
            signer = recover_signer(e.digest, signature.signature[:64] + bytes([signature.signature[64] - 27]))
        except ConsensusError as exc:
            raise SignatureRefused(f"output of L2 block {number}: {exc}") from None
        if signer not in e.signers:
            raise SignatureRefused(f"output of L2 block {number} signed by 0x{signer.hex()}, which is not in the "
                                   "validator set that signs it")
        return self._keep(number, signer, signature.signature)

    def gathered(self, number: int) -> dict[bytes, bytes]:
        """Signer address -> signature, for output `number` (all checked)."""
        with self._lock:
            return dict(self._gathered.get(number, {}))

    def _keep(self, number: int, signer: bytes, signature: bytes) -> bool:
        with self._lock:
            held = self._gathered.setdefault(number, {})
            new = signer not in held
            held[signer] = signature
            _trim(self._gathered)
            return new


def _trim(by_number: dict) -> None:
    while len(by_number) > KEEP_OUTPUTS:
        del by_number[min(by_number)]


async def run_signer(node, signatures: OutputSignatures, l1_url: str, publish: Callable[[OutputSignature], None],
                     interval_s: float) -> None:
    """A validator's node task with `--l1`: every `interval_s`, and as soon as the node commits
    the block of an output, read which output the L1 holds last (read only: no L1 key is
    needed) and sign the next outputs this node has decided, publishing a new signature at once
    and the others again every REPUBLISH_S until the L1 has the output. An L1 that cannot be
    read is logged once and read again at the next tick."""
    oracle, latest, last_error = None, 0, None
    published: dict[int, float] = {}
    k = signatures.interval
    token, wake = trio.lowlevel.current_trio_token(), trio.Event()

    def on_block(block, _receipts) -> None:  # in the thread that committed the block
        if block.header.block_number > latest and (block.header.block_number - latest) % k == 0:
            try:
                token.run_sync_soon(wake.set)
            except trio.RunFinishedError:
                pass  # the node is stopping

    node.add_listener(on_block)
    while True:
        try:
            if oracle is None:
                oracle = await trio.to_thread.run_sync(
                    lambda: signatures.deployment.contracts(L1(l1_url))[1])
            latest = await trio.to_thread.run_sync(oracle.call, "latestBlockNumber")
            last_error = None
        except L1Error as exc:
            if str(exc) != last_error:
                log.warning("signing output roots: cannot read the L1 (retrying every %.0fs): %s", interval_s, exc)
                last_error = str(exc)
        head, now = node.head().block_number, trio.current_time()
        for number in range(latest + k, min(head, latest + AHEAD * k) + 1, k):
            if now - published.get(number, -math.inf) < REPUBLISH_S:
                continue
            for signature in await trio.to_thread.run_sync(signatures.sign, number):
                publish(signature)
            published[number] = now
        for number in [n for n in published if n <= latest]:
            del published[number]
        with trio.move_on_after(interval_s):
            await wake.wait()
        wake = trio.Event()
