"""`Node`: the chain on disk. Block production and import, reads, calls, logs.

Every block commits in ONE plyvel write batch: the py-evm chain for a block is built over an
`AtomicDB` wrapping the batch, so py-evm's own writes (trie nodes, header, body, receipts, tx
index, canonical head) and our log index land together or not at all.

Synchronous and thread-safe: writes (produce/import) hold one lock; reads use the committed
database and a cached head header, so they never see half a block.
"""
import contextlib
import dataclasses
import functools
import os
import pathlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from eth.abc import BlockAPI, BlockHeaderAPI, ComputationAPI, ReceiptAPI, SignedTransactionAPI, StateAPI
from eth.chains.base import MiningChain
from eth.db.atomic import AtomicDB
from eth.db.chain import ChainDB
from eth.db.schema import SchemaV1
from eth.constants import BLANK_ROOT_HASH
from eth.estimators.gas import binary_gas_search
from eth.exceptions import BlockNotFound, CanonicalHeadNotFound, HeaderNotFound
from eth.vm.chain_context import ChainContext
from eth.vm.forks.london.headers import calculate_expected_base_fee_per_gas
from eth.vm.spoof import SpoofTransaction
from eth_utils import ValidationError, to_checksum_address
import rlp

import genesis as genesis_mod
import vm
from node import indexes_ots, records
from node.mempool import TxPool
from node.storage import LevelDB, Schema, WriteBatch

GENESIS_FILE = "genesis.json"
CHAINDATA_DIR = "chaindata"
ZERO_ADDRESS = b"\x00" * 20
HEADER_CACHE = 4096


def _two_integers(packed: bytes) -> tuple[int, int]:
    """py-evm's transaction lookup value, the RLP list [block number, index]: read inline for
    the usual short form (rlp.decode costs a third of the lookup), else by rlp."""
    if 0xC2 <= packed[0] <= 0xF7 and len(packed) == packed[0] - 0xBF:
        values, at = [], 1
        while at < len(packed) and len(values) < 3:
            lead = packed[at]
            if lead < 0x80:
                values.append(lead)
                at += 1
            elif lead <= 0x88 and at + 1 + lead - 0x80 <= len(packed):
                values.append(int.from_bytes(packed[at + 1:at + 1 + lead - 0x80], "big"))
                at += 1 + lead - 0x80
            else:
                break
        if len(values) == 2 and at == len(packed):
            return values[0], values[1]
    number, index = (int.from_bytes(field, "big") for field in rlp.decode(packed))
    return number, index


class UnknownBlock(LookupError):
    """A block tag, number or hash this node does not have."""


class CallError(ValueError):
    """eth_call / eth_estimateGas input the EVM refuses before executing (nonce, funds, gas)."""


class DataDirError(RuntimeError):
    """A data directory that cannot be opened as asked (missing, or another chain's)."""


@dataclasses.dataclass(frozen=True)
class LogRecord:
    """One log with its position, as eth_getLogs reports it."""

    address: bytes
    topics: tuple[bytes, ...]
    data: bytes
    block_number: int
    block_hash: bytes
    transaction_hash: bytes
    transaction_index: int
    log_index: int  # position within the block


class Node:
    """One chain in one data directory. Build with `Node.init` or `Node.open`."""

    def __init__(self, datadir: pathlib.Path, genesis: genesis_mod.Genesis, db: LevelDB) -> None:
        self.datadir = datadir
        self.genesis = genesis
        self.chain_id = genesis.chain_id
        self._db = db
        self._chain_class = vm.build_chain_class(genesis)
        self._chaindb = ChainDB(db)
        # Headers are immutable under their hash, and decoding one (rlp Serializable) costs more
        # than the request that wants it: explorers and wallets ask for the same recent ones.
        self._decoded_header = functools.lru_cache(maxsize=HEADER_CACHE)(self._load_header)
        self._context = ChainContext(self.chain_id)
        self._write_lock = threading.RLock()
        self._listeners: list[Callable[[BlockAPI, tuple[ReceiptAPI, ...]], None]] = []
        self.last_commit: tuple[str, float] = ("built", 0.0)
        """(built or imported, seconds it took to execute and commit) of the last block, for listeners."""
        self.index_writers: list[Callable[[Any, BlockAPI, tuple[ReceiptAPI, ...]], None]] = [
            self._index_logs, self._index_body, self._index_receipts, indexes_ots.write]
        """fn(batch, block, receipts), each called inside the block's write batch: extra indexes
        commit atomically with the block."""
        self._head = self._chaindb.get_canonical_head()
        self._pool_state_cache: tuple[bytes, StateAPI] | None = None
        self.sync_target: int | None = None
        """The highest block height peers are known to be at (eth_syncing); None: nothing known."""
        self.sync_start: int | None = None  # the head when this node found itself behind
        self.block_class = self._vm_for_number(self._head.block_number + 1).get_block_class()
        """The block class of the next block (rlp.decode of exported blocks)."""
        self.mempool = TxPool(
            chain_id=self.chain_id,
            tx_builder=self._vm_for_number(self._head.block_number + 1).get_transaction_builder(),
            head_state=self._pool_state,
            next_base_fee=lambda: calculate_expected_base_fee_per_gas(self._head),
            gas_limit=genesis.gas_limit,
        )

    def _pool_state(self) -> StateAPI:
        """The head state the pool checks nonces and balances against, built once per head:
        a fresh state per transaction would decode the same trie nodes again every time (the
        pool calls this under its own lock)."""
        head, cached = self._head, self._pool_state_cache
        if cached is None or cached[0] != head.hash:
            cached = self._pool_state_cache = (head.hash, self.state_at(head))
        return cached[1]

    # -- lifecycle ---------------------------------------------------------------------------

    @classmethod
    def init(cls, datadir: str | os.PathLike, genesis: genesis_mod.Genesis) -> "Node":
        """Open `datadir`, creating the chain from `genesis` if it is new. An existing data dir
        must hold the same genesis (DataDirError otherwise)."""
        path = pathlib.Path(datadir)
        path.mkdir(parents=True, exist_ok=True)
        stored = path / GENESIS_FILE
        if stored.exists():
            existing = genesis_mod.load(stored)
            if existing != genesis:
                raise DataDirError(f"data dir {str(path)!r} holds another genesis (chain id {existing.chain_id}); "
                                   "use a fresh --datadir")
        else:
            tmp = stored.with_suffix(".tmp")
            tmp.write_text(genesis_mod.to_json(genesis))
            os.replace(tmp, stored)  # atomic: a crash leaves the old state or the whole file
        return cls._open(path, genesis)

    @classmethod
    def open(cls, datadir: str | os.PathLike) -> "Node":
        """Open an initialised data dir (see `openledger init`)."""
        path = pathlib.Path(datadir)
        if not (path / GENESIS_FILE).exists():
            raise DataDirError(f"data dir {str(path)!r} is not initialised (no {GENESIS_FILE}); "
                               "run `openledger init GENESIS --datadir DIR` first")
        return cls._open(path, genesis_mod.load(path / GENESIS_FILE))

    @classmethod
    def _open(cls, path: pathlib.Path, genesis: genesis_mod.Genesis) -> "Node":
        db = LevelDB(path / CHAINDATA_DIR)
        try:
            try:
                ChainDB(db).get_canonical_head()
            except CanonicalHeadNotFound:  # new, or killed before the genesis batch landed
                chain_class = vm.build_chain_class(genesis)
                with db.atomic_batch() as batch:
                    chain_class.from_genesis(AtomicDB(batch), vm.genesis_params(genesis), vm.genesis_state(genesis))
            return cls(path, genesis, db)
        except BaseException:
            db.close()
            raise

    def close(self) -> None:
        with self._write_lock:
            if not self._db.closed:
                self._db.close()
        # py-evm memoizes these two ChainDB methods with a class-wide functools.lru_cache keyed by
        # the ChainDB instance: it would keep this node's database alive after close, and tear it
        # down at interpreter exit after the modules it needs (the empty "Error in
        # sys.excepthook" that commands printed at exit).
        ChainDB._get_block_transactions.cache_clear()
        ChainDB._get_block_withdrawals.cache_clear()

    def __enter__(self) -> "Node":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_listener(self, fn: Callable[[BlockAPI, tuple[ReceiptAPI, ...]], None]) -> None:
        """Call fn(block, receipts) after each committed block (subscriptions, filters)."""
        self._listeners.append(fn)

    # -- reads -------------------------------------------------------------------------------

    def _vm_for_number(self, number: int) -> Any:
        return self._chain_class.get_vm_class_for_block_number(number)

    def block_class_at(self, number: int) -> type[BlockAPI]:
        """The block class for block `number` (decoding blocks of multi-fork chains)."""
        return self._vm_for_number(number).get_block_class()

    def head(self) -> BlockHeaderAPI:
        return self._head

    @property
    def db(self) -> LevelDB:
        """The committed database, for read-only index lookups (node.indexes_ots)."""
        return self._db

    def evm_chain(self) -> MiningChain:
        """A py-evm chain over the committed database, for read-only replays (traces, proofs)."""
        return self._chain_class(self._db)

    def header_by_number(self, number: int) -> BlockHeaderAPI | None:
        if not 0 <= number <= self._head.block_number:
            return None
        encoded = self._db.get(SchemaV1.make_block_number_to_hash_lookup_key(number))
        try:  # the RLP of one hash: decoded raw (py-evm's typed decode costs twice as much)
            return None if encoded is None else self.header_by_hash(rlp.decode(encoded))
        except rlp.exceptions.RLPException:
            return None

    def _load_header(self, block_hash: bytes) -> BlockHeaderAPI:
        encoded = self._db.get(block_hash) if len(block_hash) == 32 else None  # py-evm: header RLP under its hash
        if encoded is None:
            raise HeaderNotFound(f"no header {block_hash.hex()}")
        try:
            header = records.decode_header(encoded, block_hash)
        except (rlp.exceptions.RLPException, ValueError, TypeError):
            header = None
        return header if header is not None else self._chaindb.get_block_header_by_hash(block_hash)

    def header_by_hash(self, block_hash: bytes) -> BlockHeaderAPI | None:
        try:
            header = self._decoded_header(block_hash)
        except (HeaderNotFound, ValidationError):
            return None
        return header if header.block_number <= self._head.block_number else None

    def _block(self, header: BlockHeaderAPI | None) -> BlockAPI | None:
        if header is None:
            return None
        try:
            block = self._vm_for_number(header.block_number).get_block_class().from_header(header, self._chaindb)
        except (BlockNotFound, HeaderNotFound):
            return None
        body = self._body(header) if block.transactions else None
        if body is not None and [tx.hash for tx in body[1]] == [tx.hash for tx in block.transactions]:
            for tx, recorded in zip(block.transactions, body[1]):
                tx.__dict__.setdefault("sender", recorded.sender)  # py-evm's cached_property: no ECDSA
        return block

    def _record(self, key: bytes, decode: Callable[[bytes], Any]) -> Any:
        """A per-block record (`node.records`) decoded, or None: a block committed before records
        were written, or a damaged record (the caller reads py-evm's tries then)."""
        packed = self._db.get(key)
        if packed is None:
            return None
        try:
            return decode(packed)
        except (ValueError, TypeError):
            return None

    def _body(self, header: BlockHeaderAPI) -> tuple[int, tuple[records.RecordedTransaction, ...]] | None:
        return self._record(Schema.block_body(header.hash), records.decode_body)

    def _uncles_and_withdrawals(self, header: BlockHeaderAPI) -> tuple[tuple, tuple]:
        uncles = self._chaindb.get_block_uncles(header.uncles_hash)
        if getattr(header, "withdrawals_root", BLANK_ROOT_HASH) == BLANK_ROOT_HASH:
            return uncles, ()
        return uncles, self._chaindb.get_block_withdrawals(header)

    def block_by_number(self, number: int) -> BlockAPI | None:
        return self._block(self.header_by_number(number))

    def block_by_hash(self, block_hash: bytes) -> BlockAPI | None:
        return self._block(self.header_by_hash(block_hash))

    def block_record(self, header: BlockHeaderAPI) -> records.BlockRecord | None:
        """The block of a known header read from its body record, for the JSON-RPC read path;
        None when there is no usable record (then read `block_by_hash`)."""
        body = self._body(header)
        if body is None:
            return None
        try:
            uncles, withdrawals = self._uncles_and_withdrawals(header)
        except HeaderNotFound:
            return None
        return records.BlockRecord(header, body[0], body[1], uncles, withdrawals)

    def receipts(self, header: BlockHeaderAPI) -> tuple[ReceiptAPI, ...]:
        return self._chaindb.get_receipts(header, self._vm_for_number(header.block_number).get_receipt_builder())

    def receipt_record(self, header: BlockHeaderAPI) -> tuple[records.RecordedReceipt, ...] | None:
        """The block's receipts from the record written at commit, or None (then decode them)."""
        return self._record(Schema.block_receipts(header.hash), records.decode_receipts)

    def raw_transaction(self, tx_hash: bytes) -> bytes | None:
        """A mined or pooled transaction's canonical encoding (typed envelope included), or None."""
        location = self.tx_location(tx_hash)
        if location is None:
            pending = self.mempool.get(tx_hash)
            return None if pending is None else pending.encode()
        number, index = location
        return self.block_by_number(number).transactions[index].encode()

    def tx_location(self, tx_hash: bytes) -> tuple[int, int] | None:
        """(block number, index in block) of a mined transaction, or None."""
        # py-evm's own lookup decodes this two-integer RLP through a Serializable class,
        # which costs more than serving the receipt that wants it.
        packed = self._db.get(SchemaV1.make_transaction_hash_to_block_lookup_key(tx_hash))
        if packed is None:
            return None
        try:
            number, index = _two_integers(packed)
        except (rlp.exceptions.RLPException, ValueError, TypeError):
            return None
        return (number, index) if number <= self._head.block_number else None

    def state_at(self, header: BlockHeaderAPI) -> StateAPI:
        """The state after `header` (archive: every block's state stays readable)."""
        return self._vm_for_number(header.block_number).build_state(self._db, header, self._context)

    def resolve_block(self, tag: str | int | bytes) -> BlockHeaderAPI:
        """A block tag (latest/earliest/pending/safe/finalized), number or 32-byte hash.

        Every block this node stores was decided by consensus (BFT: final once decided), so
        safe and finalized are the last decided block, the head; pending is the head too."""
        if isinstance(tag, str):
            if tag in ("latest", "pending", "safe", "finalized"):
                return self._head
            if tag == "earliest":
                return self.header_by_number(0)
            raise UnknownBlock(f"unknown block tag {tag!r}")
        if isinstance(tag, bool):
            raise UnknownBlock(f"invalid block {tag!r}")
        if isinstance(tag, int):
            header = self.header_by_number(tag)
        elif isinstance(tag, bytes) and len(tag) == 32:
            header = self.header_by_hash(tag)
        else:
            raise UnknownBlock(f"invalid block {tag!r}")
        if header is None:
            raise UnknownBlock("header not found")
        return header

    # -- execution ---------------------------------------------------------------------------

    def _spoof(self, tx: dict[str, Any], header: BlockHeaderAPI, state: StateAPI,
               gas_price: int = 0) -> SignedTransactionAPI:
        """The call as an unsigned transaction from its sender, of the type its fields ask for
        (access list, EIP-7702 authorizations), so the intrinsic gas is the real one.

        The nonce is always the sender's current one: go-ethereum skips the nonce check in
        eth_call, eth_estimateGas and eth_createAccessList (`SkipNonceChecks`), so a wallet that
        sends its pending nonce is not refused, and a created contract's address comes from the
        state's nonce there as here."""
        sender = tx.get("from") or ZERO_ADDRESS
        builder = self._vm_for_number(header.block_number).get_transaction_builder()
        nonce, gas, to = state.get_nonce(sender), tx.get("gas") or header.gas_limit, tx.get("to") or b""
        value, data = tx.get("value", 0), tx.get("data") or tx.get("input") or b""
        access = [(address, tuple(keys)) for address, keys in tx.get("accessList", ())]
        authorizations = tx.get("authorizationList")
        if authorizations is not None and hasattr(builder, "new_unsigned_set_code_transaction"):
            who = f"(sender {to_checksum_address(sender)})"  # geth's words
            if not to:
                raise CallError(f"EIP-7702 transaction cannot be used to create contract {who}")
            if not authorizations:
                raise CallError(f"EIP-7702 transaction with empty auth list {who}")
            unsigned = builder.new_unsigned_set_code_transaction(
                self.chain_id, nonce, gas_price, gas_price, gas, to, value, data, access, authorizations)
        elif access and hasattr(builder, "new_unsigned_access_list_transaction"):
            unsigned = builder.new_unsigned_access_list_transaction(
                self.chain_id, nonce, gas_price, gas, to, value, data, access)
        else:
            unsigned = builder.create_unsigned_transaction(
                nonce=nonce, gas_price=gas_price, gas=gas, to=to, value=value, data=data)
        return SpoofTransaction(unsigned, from_=sender, chain_id=self.chain_id)

    @contextlib.contextmanager
    def _costless_state(self, header: BlockHeaderAPI, free: bool = True) -> Iterator[StateAPI]:
        """A throw-away state after `header`, executing in `header`'s own block context (NUMBER,
        TIMESTAMP, BLOCKHASH as geth's eth_call at that block); `free`: base fee 0 as well."""
        vm = self._chain_class(self._db).get_vm(header)
        context = header.copy(base_fee_per_gas=0) if free and hasattr(header, "base_fee_per_gas") else header
        yield vm.build_state(self._db, context, self._context, vm.previous_hashes)

    @staticmethod
    def _call_gas_price(tx: dict[str, Any], header: BlockHeaderAPI) -> int | None:
        """go-ethereum's eth_call pricing: None (free gas, BASEFEE 0) when no fee field is set;
        else gasPrice, or min(maxFeePerGas, maxPriorityFeePerGas + base fee)."""
        gas_price, fee_cap, tip = tx.get("gasPrice", 0), tx.get("maxFeePerGas", 0), tx.get("maxPriorityFeePerGas", 0)
        if gas_price:
            return gas_price
        if not (fee_cap or tip):
            return None
        if tip > fee_cap:
            raise CallError(f"max priority fee per gas higher than max fee per gas: maxPriorityFeePerGas: {tip}, "
                            f"maxFeePerGas: {fee_cap}")
        return min(fee_cap, tip + getattr(header, "base_fee_per_gas", 0))

    def call(self, tx: dict[str, Any], header: BlockHeaderAPI,
             prepare: Callable[[StateAPI], None] | None = None) -> ComputationAPI:
        """Execute `tx` on the state after `header` without committing anything (eth_call).

        `tx` holds decoded JSON-RPC fields: from/to (20 bytes or None), gas, value, nonce,
        gasPrice/maxFeePerGas/maxPriorityFeePerGas (int), data or input (bytes). Runs in the
        block context of `header`; without fee fields gas is free and BASEFEE reads 0, with them
        the sender pays like a real transaction (go-ethereum's eth_call rules).
        `prepare(state)` runs first (e.g. `vm.tracing.instrument_state` for eth_createAccessList).
        Raises CallError for a transaction the EVM refuses to start."""
        gas_price = self._call_gas_price(tx, header)
        with self._costless_state(header, free=gas_price is None) as state:
            if prepare is not None:
                prepare(state)
            try:
                return state.apply_transaction(self._spoof(tx, header, state, gas_price or 0))
            except ValidationError as e:
                raise CallError(str(e)) from None

    def estimate_gas(self, tx: dict[str, Any], header: BlockHeaderAPI,
                     prepare: Callable[[StateAPI], None] | None = None) -> int:
        """Least gas that lets `tx` succeed (binary search). Raises py-evm's VMError (a
        `eth.exceptions.Revert` carries the revert data in args[0]) or CallError. `prepare` as
        for `call` (state overrides)."""
        with self._costless_state(header) as state:
            if prepare is not None:
                prepare(state)
            spoof = self._spoof({**tx, "gas": tx.get("gas") or header.gas_limit}, header, state)
            try:
                return binary_gas_search(state, spoof, tolerance=1)
            except ValidationError as e:
                raise CallError(str(e)) from None

    # -- logs --------------------------------------------------------------------------------

    def _indexed_numbers(self, prefix: bytes, first: int, last: int) -> set[int]:
        keys = self._db.keys_between(prefix + Schema.number(first), prefix + Schema.number(last + 1))
        return {int.from_bytes(k[-8:], "big") for k in keys}

    def logs(
        self,
        from_number: int,
        to_number: int,
        addresses: Sequence[bytes] | None = None,
        topics: Sequence[bytes | Sequence[bytes] | None] | None = None,
    ) -> list[LogRecord]:
        """Logs of blocks from..to (inclusive) matching eth_getLogs filter semantics: any of
        `addresses`; topic position i matches any of topics[i] (None = anything), and a log has
        at least as many topics as `topics` has positions.

        Candidate blocks come from the key index (per address, per topic, per block with logs),
        so only blocks that can match are read."""
        to_number = min(to_number, self._head.block_number)
        if from_number > to_number:
            return []
        topic_sets = [
            None if t is None else ({t} if isinstance(t, bytes) else set(t)) for t in (topics or ())
        ]
        candidates: set[int] | None = None
        if addresses:
            candidates = set().union(*(self._indexed_numbers(Schema.LOG_ADDRESS + a, from_number, to_number)
                                       for a in addresses))
        for alts in topic_sets:
            if alts:
                found = set().union(*(self._indexed_numbers(Schema.LOG_TOPIC + t, from_number, to_number)
                                      for t in alts))
                candidates = found if candidates is None else candidates & found
        if candidates is None:
            candidates = self._indexed_numbers(Schema.LOG_BLOCK, from_number, to_number)
        address_set = set(addresses) if addresses else None
        out: list[LogRecord] = []
        for number in sorted(candidates):
            header = self.header_by_number(number)
            if header is None:
                continue
            # as geth: a log with fewer topics than the filter has positions never matches,
            # even where those positions are wildcards
            out.extend(r for r in self._block_logs(header)
                       if (address_set is None or r.address in address_set) and len(r.topics) >= len(topic_sets)
                       and all(not alts or r.topics[i] in alts for i, alts in enumerate(topic_sets)))
        return out

    def _block_logs(self, header: BlockHeaderAPI) -> list[LogRecord]:
        tx_hashes = self._chaindb.get_block_transaction_hashes(header)
        out, log_index = [], 0
        for tx_index, receipt in enumerate(self.receipts(header)):
            for log in receipt.logs:
                out.append(LogRecord(log.address, tuple(records.topic_bytes(t) for t in log.topics), log.data,
                                     header.block_number, header.hash, tx_hashes[tx_index], tx_index, log_index))
                log_index += 1
        return out

    @staticmethod
    def _index_body(batch: Any, block: BlockAPI, receipts: Iterable[ReceiptAPI]) -> None:
        # the senders were recovered while executing: recording them costs nothing
        batch[Schema.block_body(block.hash)] = records.encode_body(block)

    @staticmethod
    def _index_receipts(batch: Any, block: BlockAPI, receipts: Iterable[ReceiptAPI]) -> None:
        batch[Schema.block_receipts(block.hash)] = records.encode_receipts(block, tuple(receipts))

    @staticmethod
    def _index_logs(batch: Any, block: BlockAPI, receipts: Iterable[ReceiptAPI]) -> None:
        number = block.number
        for receipt in receipts:
            for log in receipt.logs:
                batch[Schema.log_block(number)] = b""
                batch[Schema.log_address(log.address, number)] = b""
                for topic in log.topics:
                    batch[Schema.log_topic(records.topic_bytes(topic), number)] = b""

    # -- writes ------------------------------------------------------------------------------

    def _stage(self, build: Callable[[MiningChain], tuple[BlockAPI, tuple[ReceiptAPI, ...]]],
               origin: str = "built") -> "StagedBlock":
        """Run `build` on a chain over a batch of its own and index the block into it, committing
        nothing: the block's whole write, ready for `commit_staged` (or to be dropped)."""
        started = time.perf_counter()
        batch = WriteBatch(self._db)
        chain = self._chain_class(AtomicDB(batch))
        block, receipts = build(chain)
        for write_index in self.index_writers:
            write_index(batch, block, receipts)
        return StagedBlock(block, receipts, batch, chain.chaindb.get_canonical_head(), block.header.parent_hash,
                           origin=origin, seconds=time.perf_counter() - started)

    def commit_staged(self, staged: "StagedBlock", extra: dict[bytes, bytes] | None = None) -> BlockAPI:
        """Commit a staged block (and `extra` records: its commit certificate, the next validator
        set) in ONE write batch and make it the head. Raises StaleBlock if the head moved since
        it was staged."""
        with self._write_lock:
            if staged.parent_hash != self._head.hash:
                raise StaleBlock(f"block #{staged.block.number} was built on {staged.parent_hash.hex()}, "
                                 f"the head is now #{self._head.block_number}")
            if extra:
                staged.batch.writes.update(extra)
            started = time.perf_counter()
            self._db.write(staged.batch)
            self._head = staged.head
            self.last_commit = (staged.origin, staged.seconds + time.perf_counter() - started)
            for tx in staged.rejected:
                self.mempool.remove(tx.hash)
        self.mempool.remove_mined(self._pool_state())
        for listener in self._listeners:
            listener(staged.block, staged.receipts)
        return staged.block

    def stage_block(self, timestamp: int | None = None, coinbase: bytes | None = None,
                    **header_fields: Any) -> "StagedBlock":
        """Build and execute the next block from the pool's best transactions (an empty block
        when there are none), filled by gas used as go-ethereum's miner fills it
        (`vm.build_block`), without committing it. A pooled transaction that no longer validates
        (its sender's balance went elsewhere) is left out, and dropped from the pool once the
        block commits, as geth drops unpayable ones. `header_fields` go into the header."""
        parent = self._head
        ts = max(int(time.time()) if timestamp is None else timestamp, parent.timestamp + 1)
        candidates = self.mempool.select(calculate_expected_base_fee_per_gas(parent), parent.gas_limit)
        rejected: list[SignedTransactionAPI] = []
        coinbase = self.genesis.validators[0].address if coinbase is None else coinbase

        def build(chain: MiningChain) -> tuple[BlockAPI, tuple[ReceiptAPI, ...]]:
            return vm.build_block(chain, candidates, ts, coinbase, rejected=lambda tx, _error: rejected.append(tx),
                                  **header_fields)

        staged = self._stage(build)
        staged.rejected = tuple(rejected)
        return staged

    def produce_block(self, timestamp: int | None = None) -> BlockAPI:
        """Build, execute and commit the next block at once (`stage_block` then `commit_staged`):
        block production outside consensus, for tools and tests."""
        with self._write_lock:
            return self.commit_staged(self.stage_block(timestamp))

    def stage_import(self, block: BlockAPI) -> "StagedBlock":
        """Validate and execute a block built elsewhere (every tx's chain id first) without
        committing it. Raises WrongChainId or py-evm's ValidationError."""
        for tx in block.transactions:
            if tx.chain_id is None and self.genesis.ethereum is not None:
                continue  # imported Ethereum history holds pre-EIP-155 transactions, as geth accepts
            vm.validate_chain_id(tx, self.chain_id)
            pooled = self.mempool.get(tx.hash)
            if pooled is not None and "sender" in pooled.__dict__:
                # Same hash, same signature: reuse the sender the pool recovered at admission
                # (py-evm's `sender` is a cached_property kept in the instance dict).
                tx.__dict__.setdefault("sender", pooled.__dict__["sender"])
        return self._stage(lambda chain: vm.import_block(chain, block), "imported")

    def import_block(self, block: BlockAPI) -> BlockAPI:
        """Validate and execute a block built elsewhere, then commit it like a produced block.
        Raises WrongChainId or py-evm's ValidationError."""
        with self._write_lock:
            return self.commit_staged(self.stage_import(block))

    def state_in(self, staged: "StagedBlock") -> StateAPI:
        """The state after a staged block (read through its batch), before it commits."""
        header = staged.block.header
        return self._vm_for_number(header.block_number).build_state(staged.batch, header, self._context)

    # -- consensus records -------------------------------------------------------------------

    def commit_record(self, number: int) -> bytes | None:
        """The RLP commit certificate stored with block `number` (consensus.Commit.encode), or
        None: a block made outside consensus, or not yet decided."""
        if not 0 < number <= self._head.block_number:
            return None
        return self._db.get(Schema.commit(number))

    def validator_set_record(self, number: int) -> bytes | None:
        """The validator set of height `number` as stored when its parent was decided, or None."""
        return self._db.get(Schema.validator_set(number))


class StaleBlock(RuntimeError):
    """A staged block whose parent is no longer the head (another block was committed first)."""


@dataclasses.dataclass
class StagedBlock:
    """An executed block and its whole write batch, not yet committed (`Node.commit_staged`)."""

    block: BlockAPI
    receipts: tuple[ReceiptAPI, ...]
    batch: WriteBatch
    head: BlockHeaderAPI  # the canonical head once committed
    parent_hash: bytes
    rejected: tuple[SignedTransactionAPI, ...] = ()  # pool transactions that failed to execute
    origin: str = "built"  # or "imported" (a block another validator proposed): for metrics and logs
    seconds: float = 0.0  # spent executing and indexing it
