"""The transaction pool: admission checks with go-ethereum's error text, replacement, limits,
and the journal of local transactions.

As in geth, each sender has pending transactions (nonces contiguous from its state nonce: they
can go into the next block) and queued ones (after a nonce gap), promoted once the gap fills.

Admission is as strict as block import, by import's own code (`vm.validate_lone_transaction`):
nothing the pool accepts can be refused by the block builder for what the transaction is.

Limits are go-ethereum's (`PoolConfig`, `--txpool.*`): no cap on one account's executable
transactions; when all executable ones pass `global_slots`, the accounts holding the most are
trimmed towards `account_slots` each, largest first (geth's truncatePending); queued ones past
`global_queue` are dropped from the accounts heard from longest ago (truncateQueue); a full pool
(`global_slots + global_queue` slots of 32 KiB) makes room by evicting the lowest tips.

Local transactions (sent through this node's RPC) are tracked as go-ethereum 1.15's
locals.TxTracker tracks them: appended to a journal (`--txpool.journal`) before their hash is
returned, re-admitted from it at start, resubmitted if the pool dropped them while still valid,
and the journal rewritten from what is tracked (`rotate`, every `--txpool.rejournal`).
"""
import collections
import dataclasses
import heapq
import logging
import os
import pathlib
import re
import threading
import time
from collections.abc import Callable, Iterator

import rlp
from eth.abc import SignedTransactionAPI, StateAPI, TransactionBuilderAPI
from eth.constants import EMPTY_SHA3
from eth.validation import validate_lt_secpk1n2
from eth.vm.forks.prague.constants import MAGIC
from eth_keys import keys
from eth_utils import ValidationError, keccak, to_checksum_address

from vm import WrongChainId, validate_chain_id, validate_lone_transaction

log = logging.getLogger(__name__)

MAX_TX_SIZE = 128 * 1024  # go-ethereum's txMaxSize (4 slots of 32 KiB)
SLOT_SIZE = 32 * 1024  # go-ethereum's txSlotSize: a transaction takes ceil(size / 32 KiB) slots
PRICE_BUMP_PERCENT = 10  # go-ethereum's default --txpool.pricebump
SET_CODE_TX_TYPE = 4  # EIP-7702
SUPPORTED_TX_TYPES = (1, 2, SET_CODE_TX_TYPE)  # EIP-2930, EIP-1559, EIP-7702 (legacy has no type byte); no blobs
CODE_SERVER = -32000  # what geth answers for every txpool refusal
CODE_REJECTED = -32003  # EIP-1474 "transaction rejected": anvil's code for a wrong chain id


@dataclasses.dataclass(frozen=True)
class PoolConfig:
    """go-ethereum's transaction pool settings, under its flag names (`--txpool.*`)."""

    account_slots: int = 16  # --txpool.accountslots: executable transactions kept per account under pressure
    global_slots: int = 5120  # --txpool.globalslots: executable slots for all accounts (geth: 4096 + 1024)
    account_queue: int = 64  # --txpool.accountqueue: non-executable transactions per account
    global_queue: int = 1024  # --txpool.globalqueue: non-executable transactions for all accounts
    journal: str | None = "transactions.rlp"  # --txpool.journal: local transactions, in the data dir
    rejournal: float = 3600.0  # --txpool.rejournal: seconds between journal rewrites
    no_locals: bool = False  # --txpool.nolocals: no local tracking, no journal

    def __post_init__(self) -> None:
        for name in ("account_slots", "global_slots", "account_queue", "global_queue"):
            if getattr(self, name) <= 0:
                raise ValueError(f"invalid --txpool.{name.replace('_', '')} {getattr(self, name)}: must be positive")
        if not self.rejournal > 0:
            raise ValueError(f"invalid --txpool.rejournal {self.rejournal}: must be positive")


class TxPoolError(Exception):
    """A refused transaction: `code` and `message` are the JSON-RPC error to send back."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclasses.dataclass
class _Account:
    base_nonce: int  # state nonce when the first pending tx was admitted
    txs: list[SignedTransactionAPI]  # pending: txs[i].nonce == base_nonce + i
    queued: dict[int, SignedTransactionAPI] = dataclasses.field(default_factory=dict)  # nonce -> tx after a gap
    cost: int = 0  # sum of _cost over txs and queued, kept as they change (summing per admission is quadratic)
    beat: float = 0.0  # when it last had a transaction admitted or promoted (geth's heartbeat)

    def promote(self) -> int:
        """Move queued transactions whose nonce is now next into pending; how many moved."""
        moved = 0
        while (nxt := self.base_nonce + len(self.txs)) in self.queued:
            self.txs.append(self.queued.pop(nxt))
            moved += 1
        return moved


def _cost(tx: SignedTransactionAPI) -> int:
    return tx.gas * tx.max_fee_per_gas + tx.value


INVALID_SIGNATURE = "invalid sender: invalid transaction v, r, s values"  # geth's ErrInvalidSender + ErrInvalidSig
_SIGNATURE_VALUE = re.compile(r"\bTransaction\.(?:v|r|s|y_parity)\b|signature", re.IGNORECASE)


def _geth_words(error: Exception) -> str:
    """go-ethereum's words for what py-evm's transaction validation refused."""
    text = str(error)
    if "exceeds maximum uint" in text:  # geth's RLP decoding refuses the over-wide field
        return f"rlp: {text}"
    if text.startswith("Nonce exceeds"):
        return "nonce exceeds 2^64-1"
    if "Insufficient gas" in text or "Message.gas cannot be negative" in text:
        return "intrinsic gas too low"
    initcode = re.search(r"EIP-3860 limit of (\d+)\. Got code of size: (\d+)", text)
    if initcode:
        return f"max initcode size exceeded: code size {initcode.group(2)}, limit {initcode.group(1)}"
    if _SIGNATURE_VALUE.search(text):
        return INVALID_SIGNATURE
    return f"invalid transaction: {text}"


_REASONS = (  # (start of geth's refusal text, metric label): a bounded label set, whatever the message
    ("already known", "already_known"), ("nonce too low", "nonce_too_low"), ("nonce exceeds", "nonce_too_high"),
    ("insufficient funds", "insufficient_funds"), ("replacement transaction underpriced", "replacement_underpriced"),
    ("transaction underpriced", "underpriced"), ("future transaction tries to replace", "underpriced"),
    ("txpool is full", "pool_full"), ("account limit exceeded", "account_limit"),
    ("max fee per gas less than block base fee", "fee_below_base_fee"),
    ("max priority fee per gas higher", "invalid_fees"), ("intrinsic gas too low", "intrinsic_gas"),
    ("exceeds block gas limit", "gas_limit"), ("invalid chain id", "chain_id"), ("invalid sender", "signature"),
    ("only replay-protected", "not_replay_protected"), ("oversized data", "oversized"),
    ("transaction type not supported", "type_not_supported"), ("rlp:", "malformed"),
    ("typed transaction too short", "malformed"), ("max initcode size", "initcode_size"),
    ("eip-7702", "set_code"), ("authority already reserved", "set_code"), ("gapped-nonce", "delegated_account"),
    ("in-flight transaction limit", "delegated_account"), ("invalid transaction", "invalid"),
)


def refusal_reason(message: str) -> str:
    """The label a refusal is counted under in the node's metrics (`other` for any text not listed)."""
    text = message.lower()
    for start, label in _REASONS:
        if text.startswith(start):
            return label
    return "other"


def _slots(size: int) -> int:
    return (size + SLOT_SIZE - 1) // SLOT_SIZE


def _tip(tx: SignedTransactionAPI, base_fee: int) -> int:
    return min(tx.max_priority_fee_per_gas, tx.max_fee_per_gas - base_fee)


def _authorities(tx: SignedTransactionAPI) -> tuple[bytes, ...]:
    """The accounts that signed `tx`'s EIP-7702 authorizations. One whose signature does not
    recover is left out: execution skips it too. (py-evm recovers them only inside execution.)"""
    found = []
    for auth in tx.authorization_list:
        digest = keccak(MAGIC + rlp.encode([auth.chain_id, auth.address, auth.nonce]))
        try:
            validate_lt_secpk1n2(auth.s)  # a high-s signature is refused, as execution refuses it
            found.append(keys.Signature(vrs=(auth.y_parity, auth.r, auth.s))
                         .recover_public_key_from_msg_hash(digest).to_canonical_address())
        except Exception:  # eth_keys raises several types for an unrecoverable signature
            continue
    return tuple(found)


class TxPool:
    """Pending transactions by sender, checked against the head state the node supplies.

    `head_state()` returns the state after the head block; `next_base_fee()` the base fee of
    the block being built; both are called under the pool's lock."""

    def __init__(
        self,
        chain_id: int,
        tx_builder: type[TransactionBuilderAPI],
        head_state: Callable[[], StateAPI],
        next_base_fee: Callable[[], int],
        gas_limit: int,
        config: PoolConfig = PoolConfig(),
    ) -> None:
        self.chain_id = chain_id
        self._builder = tx_builder
        self._head_state = head_state
        self._next_base_fee = next_base_fee
        self._gas_limit = gas_limit
        self.config = config
        self._accounts: dict[bytes, _Account] = {}
        self._by_hash: dict[bytes, SignedTransactionAPI] = {}
        self._tx_slots: dict[bytes, int] = {}  # tx hash -> slots it takes
        self._slots = 0  # slots of all pooled transactions
        self._queued = 0  # queued transactions (the rest are pending)
        self._authorities: dict[bytes, tuple[bytes, ...]] = {}  # tx hash -> its EIP-7702 authorities
        self._authorized: collections.Counter[bytes] = collections.Counter()  # authority -> pooled txs naming it
        self._lock = threading.RLock()
        self.locals = LocalTracker(self)
        self.stats: collections.Counter[str] = collections.Counter()  # trimmed_pending, trimmed_queued, evicted
        self.admitted = 0  # add_raw admissions (node metrics)
        self.refused: collections.Counter[str] = collections.Counter()  # add_raw refusals by refusal_reason

    def configure(self, config: PoolConfig) -> None:
        """New limits (the node's --txpool.* flags); applied from the next admission on."""
        with self._lock:
            self.config = config

    def __len__(self) -> int:
        return len(self._by_hash)

    def sizes(self) -> tuple[int, int]:
        """(pending, queued) transactions."""
        queued = self._queued
        return len(self._by_hash) - queued, queued

    def get(self, tx_hash: bytes) -> SignedTransactionAPI | None:
        return self._by_hash.get(tx_hash)

    def decode(self, raw: bytes) -> SignedTransactionAPI:
        """Decode and check the signature (stateless checks only)."""
        if not isinstance(raw, bytes) or not raw:
            raise TxPoolError(CODE_SERVER, "typed transaction too short")
        if len(raw) > MAX_TX_SIZE:
            raise TxPoolError(CODE_SERVER, "oversized data")
        if raw[0] <= 0x7F and raw[0] not in SUPPORTED_TX_TYPES:
            raise TxPoolError(CODE_SERVER, "transaction type not supported")
        try:
            tx = self._builder.decode(raw)
        except (rlp.DecodingError, rlp.DeserializationError, ValidationError, ValueError, TypeError) as e:
            raise TxPoolError(CODE_SERVER, f"rlp: {e}") from None
        if tx.type_id == SET_CODE_TX_TYPE:
            self._check_set_code(tx)
        try:
            tx.validate()  # field ranges and signature values (py-evm)
        except (ValidationError, ValueError) as e:
            raise TxPoolError(CODE_SERVER, _geth_words(e)) from None
        if tx.chain_id is None:
            raise TxPoolError(CODE_SERVER, "only replay-protected (EIP-155) transactions allowed over RPC")
        try:
            validate_chain_id(tx, self.chain_id)
        except WrongChainId:
            raise TxPoolError(CODE_REJECTED, "invalid chain id") from None
        try:
            tx.sender
        except Exception:  # eth_keys raises several types for an unrecoverable signature
            raise TxPoolError(CODE_SERVER, INVALID_SIGNATURE) from None
        return tx

    @staticmethod
    def _check_set_code(tx: SignedTransactionAPI) -> None:
        """geth's checks of an EIP-7702 transaction. Its authorizations' signatures, chain ids and
        nonces are not checked here: one that fails is skipped when the transaction executes
        (EIP-7702), the transaction itself stays valid."""
        if not tx.to:
            raise TxPoolError(CODE_SERVER, "EIP-7702 transaction cannot be used to create contract")
        if not tx.authorization_list:
            raise TxPoolError(CODE_SERVER, "EIP-7702 transaction with empty auth list")
        for i, auth in enumerate(tx.authorization_list):
            try:
                auth.validate_for_transaction()  # field widths: geth's RLP decoding refuses these
            except ValidationError as e:
                raise TxPoolError(CODE_SERVER, f"rlp: authorization {i}: {e}") from None

    def add_raw(self, raw: bytes, local: bool = True) -> bytes:
        """Admit a signed raw transaction; return its hash or raise TxPoolError. A `local` one
        (sent through this node's RPC) is tracked and journaled before this returns."""
        try:
            tx = self.decode(raw)
            with self._lock:
                tx_hash = self.add(tx, len(raw))
                if local:
                    self.locals.track(tx, raw)
        except TxPoolError as exc:
            self.refused[refusal_reason(exc.message)] += 1
            raise
        self.admitted += 1
        return tx_hash

    def add(self, tx: SignedTransactionAPI, size: int | None = None) -> bytes:
        """Admit a decoded transaction (`size`: its encoded length, if known); its hash, or TxPoolError."""
        with self._lock:
            if tx.hash in self._by_hash:
                raise TxPoolError(CODE_SERVER, "already known")
            self._check_static(tx)
            state = self._head_state()
            self._check_import_rules(tx, state)
            sender = tx.sender
            state_nonce = state.get_nonce(sender)
            acct = self._accounts.get(sender)
            if acct is not None and acct.base_nonce < state_nonce:  # mined meanwhile
                self._drop_mined(sender, state_nonce)
                acct = self._accounts.get(sender)
            if tx.nonce < state_nonce:
                raise TxPoolError(CODE_SERVER, "nonce too low")
            if acct is None:
                acct = _Account(state_nonce, [])
            pending, queued = acct.txs, acct.queued
            next_nonce = state_nonce + len(pending)
            if tx.nonce < next_nonce:
                replaced = pending[tx.nonce - state_nonce]
            else:
                replaced = queued.get(tx.nonce)
            if replaced is not None:
                self._check_bump(replaced, tx)
            elif tx.nonce > next_nonce and len(queued) >= self.config.account_queue:
                raise TxPoolError(CODE_SERVER, "account limit exceeded")
            balance = state.get_balance(sender)
            others = acct.cost - (_cost(replaced) if replaced is not None else 0)
            if balance < others + _cost(tx):
                raise TxPoolError(
                    CODE_SERVER,
                    f"insufficient funds for gas * price + value: balance {balance}, "
                    f"tx cost {_cost(tx)}, overshot {others + _cost(tx) - balance}",
                )
            self._check_delegation_limit(tx, state, state_nonce, len(pending))
            authorities = _authorities(tx) if tx.type_id == SET_CODE_TX_TYPE else ()
            for authority in authorities:
                held = self._accounts.get(authority)
                if held is not None and len(held.txs) + len(held.queued) > 1:
                    raise TxPoolError(CODE_SERVER, "authority already reserved")
            slots = _slots(len(tx.encode()) if size is None else size)
            capacity = self.config.global_slots + self.config.global_queue
            if self._slots - (self._tx_slots[replaced.hash] if replaced is not None else 0) + slots > capacity:
                self._make_room(tx, slots, capacity, future=tx.nonce > next_nonce)
            if replaced is not None:
                self._forget(replaced)
            if tx.nonce < next_nonce:
                pending[tx.nonce - state_nonce] = tx
            elif tx.nonce == next_nonce:
                pending.append(tx)
                self._queued -= acct.promote()
            else:
                queued[tx.nonce] = tx
                if replaced is None:
                    self._queued += 1
            acct.cost = others + _cost(tx)
            acct.beat = time.monotonic()
            self._accounts[sender] = acct
            self._by_hash[tx.hash] = tx
            self._tx_slots[tx.hash] = slots
            self._slots += slots
            if authorities:
                self._authorities[tx.hash] = authorities
                self._authorized.update(authorities)
            self._truncate()
            if tx.hash not in self._by_hash:  # trimmed at once: its account holds the most
                raise TxPoolError(CODE_SERVER, "txpool is full")
            return tx.hash

    def _check_import_rules(self, tx: SignedTransactionAPI, state: StateAPI) -> None:
        """Block import's own checks of a lone transaction (vm.validate_lone_transaction), after
        the geth-worded ones above: what they catch gets geth's words where geth has some."""
        try:
            validate_lone_transaction(state, tx, base_fee_per_gas=self._next_base_fee(), gas_limit=self._gas_limit)
        except ValidationError as e:
            raise TxPoolError(CODE_SERVER, _geth_words(e)) from None

    def _forget(self, tx: SignedTransactionAPI) -> None:
        del self._by_hash[tx.hash]
        self._slots -= self._tx_slots.pop(tx.hash)
        authorities = self._authorities.pop(tx.hash, ())
        self._authorized.subtract(authorities)
        for authority in authorities:
            if self._authorized[authority] <= 0:
                del self._authorized[authority]

    def _check_delegation_limit(self, tx: SignedTransactionAPI, state: StateAPI, state_nonce: int,
                                pending: int) -> None:
        """geth's rule for an account with code (an EIP-7702 delegation) or one a pooled
        transaction delegates: one transaction in flight (a replacement is allowed), since
        anyone can drain its balance through the delegated code."""
        sender = tx.sender
        if state.get_code_hash(sender) == EMPTY_SHA3 and sender not in self._authorized:
            return
        if not pending:
            if tx.nonce != state_nonce:
                raise TxPoolError(CODE_SERVER, "gapped-nonce tx from delegated accounts")
        elif not tx.nonce < state_nonce + pending:
            raise TxPoolError(CODE_SERVER, "in-flight transaction limit reached for delegated accounts")

    def _check_static(self, tx: SignedTransactionAPI) -> None:
        if tx.gas > self._gas_limit:
            raise TxPoolError(CODE_SERVER, "exceeds block gas limit")
        if tx.max_priority_fee_per_gas > tx.max_fee_per_gas:
            raise TxPoolError(CODE_SERVER, "max priority fee per gas higher than max fee per gas")
        if tx.gas < tx.intrinsic_gas:
            raise TxPoolError(CODE_SERVER, f"intrinsic gas too low: gas {tx.gas}, minimum needed {tx.intrinsic_gas}")
        base_fee = self._next_base_fee()
        if tx.max_fee_per_gas < base_fee:
            raise TxPoolError(
                CODE_SERVER,
                f"max fee per gas less than block base fee: address {to_checksum_address(tx.sender)}, "
                f"maxFeePerGas: {tx.max_fee_per_gas}, baseFee: {base_fee}",
            )

    @staticmethod
    def _check_bump(old: SignedTransactionAPI, new: SignedTransactionAPI) -> None:
        """geth's rule: fee cap AND tip must each rise by at least PRICE_BUMP_PERCENT."""
        def bumped(x: int) -> int:
            return x * (100 + PRICE_BUMP_PERCENT) // 100

        if new.max_fee_per_gas < bumped(old.max_fee_per_gas) or \
                new.max_priority_fee_per_gas < bumped(old.max_priority_fee_per_gas):
            raise TxPoolError(CODE_SERVER, "replacement transaction underpriced")

    # -- limits ---------------------------------------------------------------------------------

    def _make_room(self, tx: SignedTransactionAPI, slots: int, capacity: int, future: bool) -> None:
        """Pool full: evict the cheapest tail transactions of other senders (each sender's highest
        nonce, so no pending nonce gap opens) while they pay a lower tip than `tx`, until `tx`
        fits; else refuse it (geth's words). A transaction behind a nonce gap never pushes out
        an executable one (geth's ErrFutureReplacePending)."""
        base_fee = self._next_base_fee()
        tip = _tip(tx, base_fee)
        victims = []
        freed = 0
        candidates = [(_tip(t, base_fee), i, t) for i, (s, a) in enumerate(self._accounts.items())
                      if s != tx.sender for t in [a.queued[max(a.queued)] if a.queued else a.txs[-1]]]
        heapq.heapify(candidates)
        while self._slots - freed + slots > capacity:
            if not candidates:
                raise TxPoolError(CODE_SERVER, "txpool is full")
            victim_tip, i, victim = heapq.heappop(candidates)
            if victim_tip >= tip:
                raise TxPoolError(CODE_SERVER, "transaction underpriced" if not victims else "txpool is full")
            acct = self._accounts[victim.sender]
            if future and acct.queued.get(victim.nonce) is not victim:
                raise TxPoolError(CODE_SERVER, "future transaction tries to replace pending")
            victims.append(victim)
            freed += self._tx_slots[victim.hash]
            # the sender's next-highest transaction is its next candidate
            nxt = None
            if acct.queued.get(victim.nonce) is victim:
                lower = [n for n in acct.queued if n < victim.nonce]
                nxt = acct.queued[max(lower)] if lower else (acct.txs[-1] if acct.txs else None)
            else:
                k = victim.nonce - acct.base_nonce
                nxt = acct.txs[k - 1] if k > 0 else None
            if nxt is not None:
                heapq.heappush(candidates, (_tip(nxt, base_fee), i, nxt))
        for victim in victims:
            self._remove_from(victim)
            self.stats["evicted"] += 1

    def _truncate(self) -> None:
        """geth's truncatePending and truncateQueue, run after each admission (cheap unless the
        pool holds more than a limit's worth)."""
        total = len(self._by_hash)
        if total - self._queued > self.config.global_slots:
            self._truncate_pending()
        if self._queued > self.config.global_queue:
            self._truncate_queue()

    def _truncate_pending(self) -> None:
        """Executable transactions past `global_slots`: the accounts holding more than
        `account_slots` give up their last ones, largest first, levelled down together, until
        the total fits or each is down to `account_slots` (go-ethereum's truncatePending)."""
        limit, floor = self.config.global_slots, self.config.account_slots
        pending = len(self._by_hash) - self._queued
        spammers = [(-len(a.txs), s) for s, a in self._accounts.items() if len(a.txs) > floor]
        heapq.heapify(spammers)
        offenders: list[bytes] = []

        def drop_last(sender: bytes) -> None:
            self._remove_from(self._accounts[sender].txs[-1])
            self.stats["trimmed_pending"] += 1

        def count(sender: bytes) -> int:
            acct = self._accounts.get(sender)
            return len(acct.txs) if acct is not None else 0

        while pending > limit and spammers:
            _, offender = heapq.heappop(spammers)
            offenders.append(offender)
            if len(offenders) > 1:
                threshold = count(offender)
                while pending > limit and count(offenders[-2]) > threshold:
                    for sender in offenders[:-1]:
                        drop_last(sender)
                        pending -= 1
        while pending > limit and offenders and count(offenders[-1]) > floor:
            for sender in offenders:
                if count(sender) > floor:
                    drop_last(sender)
                    pending -= 1

    def _truncate_queue(self) -> None:
        """Queued transactions past `global_queue`: the accounts heard from longest ago lose
        theirs, highest nonce first (go-ethereum's truncateQueue)."""
        drop = self._queued - self.config.global_queue
        for sender in sorted((s for s, a in self._accounts.items() if a.queued),
                             key=lambda s: self._accounts[s].beat):
            if drop <= 0:
                break
            acct = self._accounts[sender]
            for nonce in sorted(acct.queued, reverse=True):
                if drop <= 0:
                    break
                self._remove_from(acct.queued[nonce])
                self.stats["trimmed_queued"] += 1
                drop -= 1

    def _remove_from(self, tx: SignedTransactionAPI) -> None:
        """Drop `tx`; a pending one takes its sender's later pending ones back to the queue."""
        acct = self._accounts[tx.sender]
        self._forget(tx)
        acct.cost -= _cost(tx)
        if acct.queued.get(tx.nonce) is tx:
            del acct.queued[tx.nonce]
            self._queued -= 1
        else:
            k = tx.nonce - acct.base_nonce
            later = acct.txs[k + 1:]
            acct.queued.update((t.nonce, t) for t in later)
            self._queued += len(later)
            del acct.txs[k:]
        if not acct.txs and not acct.queued:
            del self._accounts[tx.sender]

    def _drop_mined(self, sender: bytes, state_nonce: int) -> None:
        acct = self._accounts[sender]
        for t in [*acct.txs, *acct.queued.values()]:
            if t.nonce < state_nonce:
                self._forget(t)
                acct.cost -= _cost(t)
        queued_before = len(acct.queued)
        acct.queued = {n: t for n, t in acct.queued.items() if n >= state_nonce}
        acct.txs = [t for t in acct.txs if t.nonce >= state_nonce]
        if acct.txs and acct.txs[0].nonce != state_nonce:  # cannot happen without a reorg
            acct.queued.update((t.nonce, t) for t in acct.txs)
            acct.txs = []
        acct.base_nonce = state_nonce
        acct.promote()
        self._queued += len(acct.queued) - queued_before
        if not acct.txs and not acct.queued:
            del self._accounts[sender]

    def pending_nonce(self, address: bytes) -> int:
        """The nonce the sender's next transaction should use (eth_getTransactionCount pending):
        past its pending transactions, not its queued ones (as geth)."""
        with self._lock:
            state_nonce = self._head_state().get_nonce(address)
            acct = self._accounts.get(address)
            if acct is None:
                return state_nonce
            return max(state_nonce, acct.base_nonce + len(acct.txs))

    def counts(self) -> tuple[int, int]:
        """(pending, queued) transaction counts."""
        with self._lock:
            return len(self._by_hash) - self._queued, self._queued

    def pending(self) -> list[SignedTransactionAPI]:
        """All pending transactions, each sender's in nonce order."""
        with self._lock:
            return [t for a in self._accounts.values() for t in a.txs]

    def content(self) -> dict[bytes, list[SignedTransactionAPI]]:
        """sender -> pending transactions in nonce order (txpool_content "pending")."""
        with self._lock:
            return {s: list(a.txs) for s, a in self._accounts.items() if a.txs}

    def queued(self) -> dict[bytes, list[SignedTransactionAPI]]:
        """sender -> queued transactions (after a nonce gap) in nonce order (txpool_content "queued")."""
        with self._lock:
            return {s: [a.queued[n] for n in sorted(a.queued)] for s, a in self._accounts.items() if a.queued}

    def select(self, base_fee: int, gas_limit: int) -> list[SignedTransactionAPI]:
        """Candidates for the next block, in geth's price-and-nonce order: best tip first across
        senders, nonce order within a sender, which stops at its first tx below `base_fee` or
        over `gas_limit`. The block builder decides what fits by gas used (`vm.build_block`)."""
        with self._lock:
            heads = [(-_tip(a.txs[0], base_fee), i, s, 0) for i, (s, a) in enumerate(self._accounts.items())
                     if a.txs and a.txs[0].max_fee_per_gas >= base_fee]
            heapq.heapify(heads)
            chosen = []
            while heads:
                _, i, sender, k = heapq.heappop(heads)
                txs = self._accounts[sender].txs
                if txs[k].gas > gas_limit:
                    continue  # this sender's later nonces cannot go before this one
                chosen.append(txs[k])
                if k + 1 < len(txs) and txs[k + 1].max_fee_per_gas >= base_fee:
                    heapq.heappush(heads, (-_tip(txs[k + 1], base_fee), i, sender, k + 1))
            return chosen

    def remove_mined(self, state: StateAPI) -> None:
        """After a new head: drop every transaction whose nonce the new state has used."""
        with self._lock:
            for sender in list(self._accounts):
                state_nonce = state.get_nonce(sender)
                if self._accounts[sender].base_nonce < state_nonce:
                    self._drop_mined(sender, state_nonce)

    def remove(self, tx_hash: bytes) -> None:
        """Drop one transaction (its sender's later pending ones go back to the queue)."""
        with self._lock:
            tx = self._by_hash.get(tx_hash)
            if tx is not None:
                self._remove_from(tx)


# Refusals that may pass later (go-ethereum's locals.IsTemporaryReject): a local transaction
# refused with one of these stays tracked and is resubmitted.
TEMPORARY_REFUSALS = ("already known", "txpool is full", "transaction underpriced", "replacement transaction underpriced",
                      "future transaction tries to replace pending", "account limit exceeded",
                      "max fee per gas less than block base fee", "gapped-nonce tx from delegated accounts",
                      "in-flight transaction limit reached for delegated accounts", "authority already reserved")


class LocalTracker:
    """The transactions sent through this node's RPC, kept until the chain has used their nonce
    (go-ethereum 1.15's locals.TxTracker): journaled on admission, re-admitted at start (`load`),
    resubmitted when the pool dropped one that is still valid (`recheck`), and the journal
    rewritten from what is tracked (`rotate`). Off until `open` names a journal file, and
    altogether with `--txpool.nolocals`.

    The journal is a sequence of RLP byte strings, each a raw signed transaction, appended with
    one unbuffered write before the hash goes back to the client: a killed process (kill -9)
    loses none of them. A torn last record (power loss mid-write) is skipped at load."""

    def __init__(self, pool: TxPool) -> None:
        self.pool = pool
        self.enabled = False
        self.path: pathlib.Path | None = None
        self._fd: int | None = None
        self._tracked: dict[tuple[bytes, int], tuple[bytes, bytes]] = {}  # (sender, nonce) -> (hash, raw)
        self._journal_bytes = 0
        self._tracked_bytes = 0

    def __len__(self) -> int:
        return len(self._tracked)

    def open(self, path: str | os.PathLike | None) -> None:
        """Track local transactions from now on, journaling them to `path` (None: no journal)."""
        with self.pool._lock:
            self.enabled = True
            self.path = pathlib.Path(path) if path is not None else None

    def close(self) -> None:
        with self.pool._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def track(self, tx: SignedTransactionAPI, raw: bytes) -> None:
        """Remember an admitted local transaction and journal it (called under the pool lock)."""
        if not self.enabled:
            return
        self._remember(tx, raw)
        if self.path is not None:
            self._append(rlp.encode(raw))

    def _remember(self, tx: SignedTransactionAPI, raw: bytes) -> None:
        key = (tx.sender, tx.nonce)
        old = self._tracked.get(key)
        if old is not None:
            self._tracked_bytes -= len(old[1])
        self._tracked[key] = (tx.hash, raw)  # a replacement takes the place of what it replaced
        self._tracked_bytes += len(raw)

    def _append(self, record: bytes) -> None:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        view = memoryview(record)
        while view:
            view = view[os.write(self._fd, view):]
        self._journal_bytes += len(record)

    def load(self) -> tuple[int, int]:
        """Re-admit the journal's transactions (at start, before clients connect); (admitted,
        dropped: mined, replaced or no longer valid). Then rewrite the journal."""
        if not self.enabled or self.path is None or not self.path.exists():
            return 0, 0
        admitted = dropped = 0
        with self.pool._lock:
            for raw in read_journal(self.path):
                try:
                    tx = self.pool.decode(raw)
                    self.pool.add(tx, len(raw))
                    admitted += 1
                except TxPoolError as e:
                    if not e.message.startswith(TEMPORARY_REFUSALS):
                        dropped += 1
                        continue  # mined, replaced, or no longer valid: forgotten
                self._remember(tx, raw)  # admitted, or to be resubmitted by `recheck`
            self.rotate()
        return admitted, dropped

    def recheck(self) -> tuple[int, int]:
        """Forget what the chain has used the nonce of; resubmit what the pool no longer holds
        (trimmed or evicted under pressure). (resubmitted, forgotten)."""
        if not self.enabled:
            return 0, 0
        with self.pool._lock:
            state = self.pool._head_state()
            nonces: dict[bytes, int] = {}
            resubmit, forgotten = [], 0
            for key, (tx_hash, raw) in list(self._tracked.items()):
                sender, nonce = key
                if sender not in nonces:
                    nonces[sender] = state.get_nonce(sender)
                if nonce < nonces[sender]:
                    del self._tracked[key]
                    self._tracked_bytes -= len(raw)
                    forgotten += 1
                elif tx_hash not in self.pool._by_hash:
                    resubmit.append((nonce, raw))
            resubmitted = 0
            for _, raw in sorted(resubmit, key=lambda e: e[0]):
                try:
                    self.pool.add_raw(raw, local=False)
                    resubmitted += 1
                except TxPoolError:
                    pass  # still refused (full pool, replaced): tried again at the next recheck
            if self.path is not None and self._journal_bytes > 2 * self._tracked_bytes + (4 << 20):
                self.rotate()  # most of the journal is mined: do not let it grow for an hour
            return resubmitted, forgotten

    def rotate(self) -> None:
        """Rewrite the journal with the tracked transactions only (geth's rotate): a new file
        written whole, synced and renamed over the old one, so a crash leaves one or the other."""
        if not self.enabled or self.path is None:
            return
        with self.pool._lock:
            tmp = self.path.with_name(self.path.name + ".new")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            records = [rlp.encode(raw) for raw in self._ordered()]
            with open(tmp, "wb") as f:
                f.write(b"".join(records))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            self._journal_bytes = sum(len(r) for r in records)

    def _ordered(self) -> list[bytes]:
        """Tracked raw transactions, each sender's in nonce order (as they must be re-admitted)."""
        return [self._tracked[key][1] for key in sorted(self._tracked)]


def read_journal(path: str | os.PathLike) -> Iterator[bytes]:
    """The raw transactions in a journal file, in order; stops at a torn or corrupt record."""
    data = pathlib.Path(path).read_bytes()
    offset = 0
    while offset < len(data):
        try:
            _, kind, length, start = rlp.codec.consume_length_prefix(data, offset)
        except rlp.DecodingError:
            log.warning("txpool journal %s: corrupt record at byte %d; the rest is skipped", path, offset)
            return
        end = start + length
        if kind is not bytes or end > len(data):
            log.warning("txpool journal %s: torn record at byte %d; the rest is skipped", path, offset)
            return
        yield data[start:end]
        offset = end
