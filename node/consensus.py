"""The node's side of the consensus seam: `ChainApplication` implements consensus.Application
over a `Node` (prepare = build a block from the pool, process = execute and check it without
committing, finalize = the one atomic LevelDB batch, now with the commit certificate).

A consensus block is RLP [ethereum block, commit of the parent] (bytes, the commit empty when
there is none); the hash votes sign is the Ethereum header's hash. Block N + 1's header commits
to the commit of block N (docs/consensus.md, "The header commitment"):

    parent_beacon_block_root = keccak256(commit N as consensus.Commit encodes it)
    extra_data               = signer bitmap of commit N over the set of height N, in set order
                               (bit i = byte i // 8, bit i % 8, LSB first; ceil(n / 8) bytes)

Empty extra_data means "no commit info" (block 1, blocks made outside consensus); the VM pays
the block's validator share only to the signers the bitmap names. `verify_finality` is the light
client's check of a block from its header, its commit and the validator set of its height.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import rlp
from eth.abc import BlockHeaderAPI
from eth.constants import BLANK_ROOT_HASH
from eth_utils import ValidationError, keccak

import vm.modules.staking as staking
from consensus import Block, Commit, ConsensusError, Validator, ValidatorSet, verify_commit
from node.chain import Node, StagedBlock, StaleBlock
from node.storage import Schema

MAX_FUTURE_SECONDS = 15
"""How far past this node's clock a proposed block's timestamp may be (unless it is the parent's
+ 1, the least a block can take): a proposer cannot push the chain's time ahead at will."""
MAX_BITMAP_VALIDATORS = 256  # extra_data holds at most 32 bytes


class InvalidBlock(ValueError):
    """A proposed or synced block that breaks a consensus rule (the message says which)."""


# -- the header commitment ------------------------------------------------------------------

def signer_bitmap(validators: ValidatorSet, signers: Sequence[bytes]) -> bytes:
    """The signers of a commit as a bitmap over `validators` in set order, LSB first."""
    if len(validators) > MAX_BITMAP_VALIDATORS:
        raise ValueError(f"a signer bitmap covers at most {MAX_BITMAP_VALIDATORS} validators")
    bits = bytearray((len(validators) + 7) // 8)
    for address in signers:
        i = validators.index_of(address)
        if i is None:
            raise ValueError(f"{address.hex()} is not in the validator set")
        bits[i // 8] |= 1 << (i % 8)
    return bytes(bits)


def bitmap_signers(validators: ValidatorSet, bitmap: bytes) -> tuple[bytes, ...]:
    """The addresses a signer bitmap names, in set order (the inverse of `signer_bitmap`)."""
    if len(bitmap) != (len(validators) + 7) // 8:
        raise ValueError(f"a bitmap over {len(validators)} validators is {(len(validators) + 7) // 8} bytes")
    return tuple(v.address for i, v in enumerate(validators) if bitmap[i // 8] >> (i % 8) & 1)


def header_fields(validators: ValidatorSet | None, commit: Commit | None) -> dict[str, bytes]:
    """The header fields of block N + 1 for the commit of block N (none without a commit)."""
    if commit is None:
        return {}
    return {"extra_data": signer_bitmap(validators, commit.signers), "parent_beacon_block_root": commit.hash()}


def check_header_commitment(header: BlockHeaderAPI, parent_set: ValidatorSet | None, commit: Commit | None) -> None:
    """Raise InvalidBlock unless `header` commits to exactly `commit` (of its parent), or carries
    no commit info when there is none."""
    if commit is None:
        if header.extra_data != b"" or header.parent_beacon_block_root != BLANK_ROOT_HASH:
            raise InvalidBlock(f"block #{header.block_number} carries commit info but no parent commit")
        return
    expected = header_fields(parent_set, commit)
    if header.parent_beacon_block_root != expected["parent_beacon_block_root"]:
        raise InvalidBlock(f"block #{header.block_number}: parentBeaconBlockRoot is not the hash of its parent's commit")
    if header.extra_data != expected["extra_data"]:
        raise InvalidBlock(f"block #{header.block_number}: extraData is not the signer bitmap of its parent's commit")


def verify_finality(header: BlockHeaderAPI, commit: Commit, validators: ValidatorSet, chain_id: int) -> tuple[bytes, ...]:
    """The light client's check: `commit` proves `header` final, given the validator set of its
    height. Returns the signers; raises consensus errors (InvalidCommit, InsufficientVotingPower,
    UnknownValidator, InvalidSignature). The next header's commitment fields pin which commit
    the chain keeps (`check_header_commitment`)."""
    return verify_commit(validators, chain_id, header.block_number, header.hash, commit)


# -- evidence -------------------------------------------------------------------------------

EVIDENCE_GAS = 300_000


def evidence_transaction(node: Node, key: bytes, evidence) -> bytes:
    """A signed transaction `Staking.submitEvidence(evidence RLP)` from the validator's own key
    (its genesis balance pays the gas), nonce after its pooled ones: how a node that sees an
    equivocation gets the offender slashed and dropped from the set (docs/consensus.md)."""
    import eth_abi
    from eth_account import Account
    from eth.vm.forks.london.headers import calculate_expected_base_fee_per_gas

    from vm.modules.system import STAKING

    sender = Account.from_key(key)
    base_fee = calculate_expected_base_fee_per_gas(node.head())
    tx = {"type": 2, "chainId": node.chain_id, "nonce": node.mempool.pending_nonce(bytes.fromhex(sender.address[2:])),
          "to": STAKING, "value": 0, "gas": EVIDENCE_GAS, "maxFeePerGas": 2 * base_fee + 10**9,
          "maxPriorityFeePerGas": 10**9,
          "data": keccak(text="submitEvidence(bytes)")[:4] + eth_abi.encode(["bytes"], [evidence.encode()])}
    return bytes(sender.sign_transaction(tx).raw_transaction)


# -- block bytes ----------------------------------------------------------------------------

def encode_block(eth_block, parent_commit: Commit | None) -> bytes:
    return rlp.encode([rlp.encode(eth_block), b"" if parent_commit is None else parent_commit.encode()])


def split_block(data: bytes) -> tuple[bytes, bytes]:
    """(ethereum block RLP, parent commit RLP or b"") of a consensus block; ValueError if malformed."""
    try:
        items = rlp.decode(data, strict=True)
    except rlp.exceptions.DecodingError as exc:
        raise ValueError(f"consensus block is not RLP: {exc}") from None
    if not isinstance(items, list) or len(items) != 2 or not all(isinstance(i, bytes) for i in items):
        raise ValueError("consensus block must be RLP [ethereum block, parent commit]")
    return items[0], items[1]


def block_hash(data: bytes) -> bytes:
    """The hash votes sign: keccak256 of the Ethereum header's RLP (cheap: no typed decode)."""
    eth_block, _ = split_block(data)
    try:
        fields = rlp.decode(eth_block, strict=True)
    except rlp.exceptions.DecodingError as exc:
        raise ValueError(f"ethereum block is not RLP: {exc}") from None
    if not isinstance(fields, list) or not fields or not isinstance(fields[0], list):
        raise ValueError("ethereum block must be RLP [header, transactions, ...]")
    return keccak(rlp.encode(fields[0]))


# -- validator sets -------------------------------------------------------------------------

def encode_validator_set(validators: ValidatorSet) -> bytes:
    """RLP [[address, power, priority + 2**63], ...] and the proposer (priorities are int64)."""
    return rlp.encode([[[v.address, v.power, p + 2**63] for v, p in zip(validators, validators.priorities)],
                       validators.proposer.address])


def decode_validator_set(data: bytes) -> ValidatorSet:
    entries, proposer = rlp.decode(data)
    return ValidatorSet.with_priorities(
        ((Validator(a, int.from_bytes(w, "big")), int.from_bytes(p, "big") - 2**63) for a, w, p in entries), proposer)


def genesis_validator_set(node: Node) -> ValidatorSet:
    return ValidatorSet(Validator(v.address, v.power) for v in node.genesis.validators)


def validator_changes(current: ValidatorSet, wanted: Sequence[tuple[bytes, int]]) -> list[Validator]:
    """The changes that turn `current` into the (address, power) list the Staking module wants."""
    wanted_map = dict(wanted)
    changes = [Validator(a, p) for a, p in wanted_map.items() if current.power_of(a) != p]
    changes += [Validator(v.address, 0) for v in current if v.address not in wanted_map]
    return changes


class ChainApplication:
    """consensus.Application over a Node. Executed blocks are kept (by hash) from prepare or
    process to finalize, so a decided block is executed once: a single validator's block is
    built, decided and committed for the price of one execution, as `produce_block` was."""

    MAX_STAGED = 16

    def __init__(self, node: Node, address: bytes | None = None) -> None:
        self.node = node
        self.chain_id = node.chain_id
        self.address = address  # this validator's (the coinbase of its blocks); None: an observer
        self._staged: dict[bytes, StagedBlock] = {}
        self._lock = threading.Lock()
        self._sets: dict[int, ValidatorSet] = {}
        self._proposed: dict[int, tuple[Block, StagedBlock]] = {}  # our block of the current height

    # -- validator sets of heights --------------------------------------------------------

    def validator_set(self, height: int) -> ValidatorSet:
        """The set of `height` (<= head + 1): stored when its parent was decided; derived from
        genesis (advanced once a height) for a chain whose blocks were made outside consensus."""
        found = self._sets.get(height)
        if found is not None:
            return found
        record = self.node.validator_set_record(height)
        if record is not None:
            found = decode_validator_set(record)
        elif height <= 1:
            found = genesis_validator_set(self.node)
        else:
            found = self.validator_set(height - 1).next_height()
        if len(self._sets) > 64:
            self._sets.clear()
        self._sets[height] = found
        return found

    def _next_set(self, height: int, staged: StagedBlock) -> ValidatorSet:
        """The set of `height` + 1: the Staking module's choice (read from the state after the
        block; it schedules changes itself) applied to this height's set, advanced once."""
        current = self.validator_set(height)
        consensus_set = getattr(staking, "consensus_set", None)
        if consensus_set is None:  # a VM without stake-driven sets: the genesis set throughout
            return current.next_height()
        state = self.node.state_in(staged)
        return current.next_height(validator_changes(current, consensus_set(state, height + 1)))

    # -- the Application protocol -----------------------------------------------------------

    def block_hash(self, data: bytes) -> bytes:
        return block_hash(data)

    def parent_commit(self, height: int) -> Commit | None:
        record = self.node.commit_record(height - 1) if height > 1 else None
        return None if record is None else Commit.decode(record)

    def prepare_proposal(self, height: int, round: int) -> Block:
        head = self.node.head()
        if head.block_number != height - 1:
            raise ConsensusError(f"asked to propose at {height} on head #{head.block_number}")
        again = self._proposed.get(height)
        if again is not None and again[1].parent_hash == head.hash:
            self._keep(again[1])  # the same block in a later round: peers validated it already
            return again[0]
        commit = self.parent_commit(height)
        staged = self.node.stage_block(coinbase=self.address or self.validator_set(height).proposer.address,
                                       **header_fields(self.validator_set(height - 1) if commit else None, commit))
        block = Block(staged.block.hash, encode_block(staged.block, commit))
        self._keep(staged)
        self._proposed = {height: (block, staged)}
        return block

    def process_proposal(self, height: int, round: int, block: Block) -> bool:
        try:
            self._keep(self.check_block(height, block.data, proposer=self.validator_set(height).proposer_for_round(round).address))
        except (InvalidBlock, ValidationError, ConsensusError, ValueError, StaleBlock, rlp.exceptions.RLPException):
            return False
        return True

    def check_block(self, height: int, data: bytes, proposer: bytes | None = None,
                    now: float | None = None) -> StagedBlock:
        """Decode, check and execute a block for `height` on the head (committing nothing):
        number and parent, the parent commit it carries (verified against the parent's set)
        and the header's commitment to it, the proposer as coinbase, a timestamp not far in the
        future, then py-evm's import checks (roots, gas, chain ids). Raises InvalidBlock,
        consensus errors or ValidationError."""
        eth_raw, commit_raw = split_block(data)
        try:
            eth_block = rlp.decode(eth_raw, sedes=self.node.block_class_at(height))
        except (rlp.exceptions.RLPException, ValueError, TypeError) as exc:
            raise InvalidBlock(f"proposed block is not an Ethereum block: {exc}") from None
        header, head = eth_block.header, self.node.head()
        if header.block_number != height or head.block_number != height - 1 or header.parent_hash != head.hash:
            raise InvalidBlock(f"block #{header.block_number} on parent {header.parent_hash.hex()[:12]} is not the next "
                               f"block on #{head.block_number} ({head.hash.hex()[:12]})")
        commit = None
        if commit_raw:
            commit = Commit.decode(commit_raw)
            verify_commit(self.validator_set(height - 1), self.chain_id, height - 1, head.hash, commit)
        elif self.node.commit_record(height - 1) is not None:
            raise InvalidBlock(f"block #{height} carries no commit of its parent, which was decided with one")
        check_header_commitment(header, self.validator_set(height - 1) if commit else None, commit)
        if proposer is not None and header.coinbase != proposer:
            raise InvalidBlock(f"block #{height}: coinbase {header.coinbase.hex()} is not the proposer {proposer.hex()}")
        limit = max((time.time() if now is None else now) + MAX_FUTURE_SECONDS, head.timestamp + 1)
        if header.timestamp > limit:
            raise InvalidBlock(f"block #{height}: timestamp {header.timestamp} is too far in the future")
        return self.node.stage_import(eth_block)

    def import_decided(self, height: int, data: bytes, commit_raw: bytes) -> None:
        """Block sync: import a block decided elsewhere, given the commit that decided it. The
        commit must prove it against this node's validator set of `height`, and the block must
        pass every check a proposal does (its proposer: the deciding round's)."""
        commit = Commit.decode(commit_raw)
        hash_ = block_hash(data)
        verify_commit(self.validator_set(height), self.chain_id, height, hash_, commit)
        self._keep(self.check_block(height, data, proposer=self.validator_set(height).proposer_for_round(commit.round).address))
        self.finalize(height, Block(hash_, data), commit)

    def finalize(self, height: int, block: Block, commit: Commit) -> Sequence[Validator]:
        """Commit the decided block with its commit (the seen one, until block + 1 carries the
        canonical one), the parent's canonical commit, and the next height's validator set, in
        one batch. Idempotent for a block already stored."""
        stored = self.node.header_by_number(height)
        if stored is not None:
            if stored.hash != block.hash:
                raise ConsensusError(f"decided block {block.hash.hex()} at {height}, but {stored.hash.hex()} is stored")
            return ()
        with self._lock:
            staged = self._staged.pop(block.hash, None)
        if staged is None or staged.parent_hash != self.node.head().hash:
            staged = self.check_block(height, block.data)
        current = self.validator_set(height)
        next_set = self._next_set(height, staged)
        extra = {Schema.commit(height): commit.encode(), Schema.validator_set(height + 1): encode_validator_set(next_set)}
        _, parent_commit = split_block(block.data)
        if parent_commit:  # the canonical commit of the parent: the one this block's header names
            extra[Schema.commit(height - 1)] = parent_commit
        try:
            self.node.commit_staged(staged, extra)
        except StaleBlock:  # block sync or a restart committed this height meanwhile
            stored = self.node.header_by_number(height)
            if stored is None or stored.hash != block.hash:
                raise
            return ()
        with self._lock:
            self._staged.clear()
        self._sets[height + 1] = next_set
        return validator_changes(current, [(v.address, v.power) for v in next_set])

    def _keep(self, staged: StagedBlock) -> None:
        with self._lock:
            if len(self._staged) >= self.MAX_STAGED:
                self._staged.pop(next(iter(self._staged)))
            self._staged[staged.block.hash] = staged
