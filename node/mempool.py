"""The transaction pool: admission checks with go-ethereum's error text, replacement, limits.

As in geth, each sender has pending transactions (nonces contiguous from its state nonce: they
can go into the next block) and queued ones (after a nonce gap), promoted once the gap fills.
"""
import collections
import dataclasses
import heapq
import threading
from collections.abc import Callable

import rlp
from eth.abc import SignedTransactionAPI, StateAPI, TransactionBuilderAPI
from eth.constants import EMPTY_SHA3
from eth.validation import validate_lt_secpk1n2
from eth.vm.forks.prague.constants import MAGIC
from eth_keys import keys
from eth_utils import ValidationError, keccak, to_checksum_address

from vm import WrongChainId, validate_chain_id

MAX_TX_SIZE = 128 * 1024  # go-ethereum's txMaxSize (4 slots of 32 KiB)
PRICE_BUMP_PERCENT = 10  # go-ethereum's default --txpool.pricebump
MAX_QUEUED_PER_SENDER = 64  # go-ethereum's default --txpool.accountqueue
SET_CODE_TX_TYPE = 4  # EIP-7702
SUPPORTED_TX_TYPES = (1, 2, SET_CODE_TX_TYPE)  # EIP-2930, EIP-1559, EIP-7702 (legacy has no type byte); no blobs
CODE_SERVER = -32000  # what geth answers for every txpool refusal
CODE_REJECTED = -32003  # EIP-1474 "transaction rejected": anvil's code for a wrong chain id


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

    def promote(self) -> None:
        """Move queued transactions whose nonce is now next into pending."""
        while (nxt := self.base_nonce + len(self.txs)) in self.queued:
            self.txs.append(self.queued.pop(nxt))


def _cost(tx: SignedTransactionAPI) -> int:
    return tx.gas * tx.max_fee_per_gas + tx.value


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
        max_per_sender: int = 1024,
        max_total: int = 8192,
    ) -> None:
        self.chain_id = chain_id
        self._builder = tx_builder
        self._head_state = head_state
        self._next_base_fee = next_base_fee
        self._gas_limit = gas_limit
        self.max_per_sender = max_per_sender
        self.max_total = max_total
        self._accounts: dict[bytes, _Account] = {}
        self._by_hash: dict[bytes, SignedTransactionAPI] = {}
        self._authorities: dict[bytes, tuple[bytes, ...]] = {}  # tx hash -> its EIP-7702 authorities
        self._authorized: collections.Counter[bytes] = collections.Counter()  # authority -> pooled txs naming it
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return len(self._by_hash)

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
        except (ValidationError, ValueError):
            raise TxPoolError(CODE_SERVER, "invalid sender") from None
        if tx.chain_id is None:
            raise TxPoolError(CODE_SERVER, "only replay-protected (EIP-155) transactions allowed over RPC")
        try:
            validate_chain_id(tx, self.chain_id)
        except WrongChainId:
            raise TxPoolError(CODE_REJECTED, "invalid chain id") from None
        try:
            tx.sender
        except Exception:  # eth_keys raises several types for an unrecoverable signature
            raise TxPoolError(CODE_SERVER, "invalid sender") from None
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

    def add_raw(self, raw: bytes) -> bytes:
        """Admit a signed raw transaction; return its hash or raise TxPoolError."""
        return self.add(self.decode(raw))

    def add(self, tx: SignedTransactionAPI) -> bytes:
        with self._lock:
            if tx.hash in self._by_hash:
                raise TxPoolError(CODE_SERVER, "already known")
            self._check_static(tx)
            state = self._head_state()
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
            elif tx.nonce > next_nonce and len(queued) >= MAX_QUEUED_PER_SENDER:
                raise TxPoolError(CODE_SERVER, "account limit exceeded")
            elif len(pending) + len(queued) >= self.max_per_sender:
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
            if replaced is None and len(self._by_hash) >= self.max_total:
                self._evict_for(tx)
            if replaced is not None:
                self._forget(replaced)
            if tx.nonce < next_nonce:
                pending[tx.nonce - state_nonce] = tx
            elif tx.nonce == next_nonce:
                pending.append(tx)
                acct.promote()
            else:
                queued[tx.nonce] = tx
            acct.cost = others + _cost(tx)
            self._accounts[sender] = acct
            self._by_hash[tx.hash] = tx
            if authorities:
                self._authorities[tx.hash] = authorities
                self._authorized.update(authorities)
            return tx.hash

    def _forget(self, tx: SignedTransactionAPI) -> None:
        del self._by_hash[tx.hash]
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
            raise TxPoolError(CODE_SERVER, "intrinsic gas too low")
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

    def _evict_for(self, tx: SignedTransactionAPI) -> None:
        """Pool full: drop the cheapest tail transaction (each sender's highest nonce, so no
        pending nonce gap opens) if it pays less than `tx`, else refuse `tx`."""
        base_fee = self._next_base_fee()
        victim = min(
            (a.queued[max(a.queued)] if a.queued else a.txs[-1]
             for s, a in self._accounts.items() if s != tx.sender),
            key=lambda t: _tip(t, base_fee),
            default=None,
        )
        if victim is None or _tip(victim, base_fee) >= _tip(tx, base_fee):
            raise TxPoolError(CODE_SERVER, "txpool is full")
        self._remove_from(victim)

    def _remove_from(self, tx: SignedTransactionAPI) -> None:
        """Drop `tx`; a pending one takes its sender's later pending ones back to the queue."""
        acct = self._accounts[tx.sender]
        self._forget(tx)
        acct.cost -= _cost(tx)
        if acct.queued.get(tx.nonce) is tx:
            del acct.queued[tx.nonce]
        else:
            k = tx.nonce - acct.base_nonce
            acct.queued.update((t.nonce, t) for t in acct.txs[k + 1:])
            del acct.txs[k:]
        if not acct.txs and not acct.queued:
            del self._accounts[tx.sender]

    def _drop_mined(self, sender: bytes, state_nonce: int) -> None:
        acct = self._accounts[sender]
        for t in [*acct.txs, *acct.queued.values()]:
            if t.nonce < state_nonce:
                self._forget(t)
                acct.cost -= _cost(t)
        acct.queued = {n: t for n, t in acct.queued.items() if n >= state_nonce}
        acct.txs = [t for t in acct.txs if t.nonce >= state_nonce]
        if acct.txs and acct.txs[0].nonce != state_nonce:  # cannot happen without a reorg
            acct.queued.update((t.nonce, t) for t in acct.txs)
            acct.txs = []
        acct.base_nonce = state_nonce
        acct.promote()
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
