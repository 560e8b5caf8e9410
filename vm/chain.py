"""Our py-evm Prague chain, built from genesis data.

Three overrides, each a clean subclass hook (no patching of py-evm):
- the computation merges `registry.PRECOMPILES` into Prague's precompiles;
- the state rejects transactions for another chain id (py-evm itself does not check it) and
  enforces forced inclusion (a forced transaction the L2 bridge queued comes next);
- the VM keeps the genesis gas limit, sends the base fee to the treasury when genesis says so,
  and runs `registry.BLOCK_HOOKS` when a block is finalised (both when built and imported).
"""
import copy
import functools
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

from eth.abc import BlockAPI, BlockHeaderAPI, ReceiptAPI, SignedTransactionAPI, StateAPI
from eth.chains.base import MiningChain
from eth._utils.db import get_parent_header
from eth.constants import (
    EMPTY_UNCLE_HASH, GAS_TX, POST_MERGE_DIFFICULTY, POST_MERGE_MIX_HASH, POST_MERGE_NONCE, UINT_256_MAX,
)
from eth.exceptions import HeaderNotFound, VMError
from eth.vm.forks.cancun import get_total_blob_gas
from eth.vm.forks.prague import PragueVM
from eth.vm.forks.prague.blocks import PragueBlock
from eth.vm.forks.prague.computation import PragueComputation
from eth.vm.forks.prague.constants import DEPOSIT_REQUEST_TYPE
from eth.vm.execution_context import ExecutionContext
from eth.vm.forks.frontier.validation import validate_frontier_transaction_against_header
from eth.vm.forks.prague.state import PragueState

from eth_utils import ValidationError

from genesis import Genesis
from vm import governance, registry
from vm.errors import WrongChainId
from vm.modules import bridge, genesis_accounts
from vm.trie import ordered_trie_root
from vm.forks import build_ethereum_chain_class, ethereum_genesis_params


def validate_chain_id(tx: SignedTransactionAPI, chain_id: int) -> None:
    """Raise WrongChainId unless `tx` is replay-protected for `chain_id`.

    Pre-EIP-155 legacy transactions carry no chain id and are refused too, as go-ethereum
    refuses them over RPC by default."""
    if tx.chain_id != chain_id:
        raise WrongChainId(tx.chain_id, chain_id)


def validate_lone_transaction(state: StateAPI, transaction: SignedTransactionAPI, *, base_fee_per_gas: int,
                              gas_limit: int) -> None:
    """Raise ValidationError if block import would refuse `transaction` in the block after
    `state`'s for a reason of its own, by the code import runs: the VM's check against the
    block header (gas limit), the transaction's own validation (field ranges, EIP-7702
    authorization fields) and the state's (chain id, fee cap against `base_fee_per_gas`,
    signature `s` in the lower half (EIP-2), blob fields), the intrinsic gas import subtracts
    before execution, and a creation's initcode size (EIP-3860). The sender's nonce and balance
    are left out: the transaction pool checks those against everything it holds from the
    sender, which import cannot know.

    The transaction pool calls this at admission, so nothing it accepts is unminable."""
    header = _GasHeader(gas_limit)
    validate_frontier_transaction_against_header(None, header, transaction)
    view = copy.copy(state)  # shares the databases; only reads happen through it
    view.__class__ = _lone_state_class(type(state))
    view.lone_sender, view.lone_nonce = transaction.sender, transaction.nonce
    context = state.execution_context
    view.execution_context = ExecutionContext(
        coinbase=context.coinbase, timestamp=context.timestamp, block_number=context.block_number + 1,
        difficulty=context.difficulty, mix_hash=context.mix_hash, gas_limit=gas_limit, prev_hashes=(),
        chain_id=context.chain_id, base_fee_per_gas=base_fee_per_gas, excess_blob_gas=context.excess_blob_gas)
    view.get_transaction_executor().validate_transaction(transaction)
    if transaction.gas < transaction.intrinsic_gas:  # import: Message(gas=gas - intrinsic) refuses < 0
        raise ValidationError(f"Transaction gas {transaction.gas} is below its intrinsic gas {transaction.intrinsic_gas}")
    if not transaction.to:
        # import: the computation's check of a creation's initcode (EIP-3860), which py-evm
        # raises as a VMError after the sender has paid, out of block building and import both
        try:
            view.computation_class.validate_create_message(_InitCode(transaction.data))
        except VMError as e:
            raise ValidationError(str(e)) from None


class _InitCode:
    """What a creation message's initcode check reads (`message.code`)."""

    def __init__(self, code: bytes) -> None:
        self.code = code


class _GasHeader:
    """The two header fields the VM's transaction-against-header check reads, for an empty block."""

    gas_used = 0

    def __init__(self, gas_limit: int) -> None:
        self.gas_limit = gas_limit


@functools.cache
def _lone_state_class(state_class: type) -> type:
    """`state_class` where the sender of the transaction being checked has the transaction's
    nonce and an unlimited balance (all else reads through)."""
    def get_nonce(self, address):
        return self.lone_nonce if address == self.lone_sender else state_class.get_nonce(self, address)

    def get_balance(self, address):
        return UINT_256_MAX if address == self.lone_sender else state_class.get_balance(self, address)

    return type(f"Lone{state_class.__name__}", (state_class,), {
        "__slots__": (), "get_nonce": get_nonce, "get_balance": get_balance})


class OpenLedgerComputation(PragueComputation):
    """Prague computation plus our native modules. `_precompiles` is merged once per chain class
    (see build_chain_class) so that modules registered before the chain is built are seen."""


class OpenLedgerState(PragueState):
    computation_class = OpenLedgerComputation

    def validate_transaction(self, transaction: SignedTransactionAPI) -> None:
        validate_chain_id(transaction, self.execution_context.chain_id)
        super().validate_transaction(transaction)

    def apply_transaction(self, transaction: SignedTransactionAPI) -> Any:
        """py-evm's, after the forced-inclusion rule (vm.modules.bridge): a forced transaction
        the bridge queued must be the next one. It is checked before anything changes, so a
        refused transaction leaves the state as it was."""
        pending = bridge.pending_forced(self)
        if pending is None:
            return super().apply_transaction(transaction)
        if pending != transaction.hash:
            raise ValidationError(f"forced transaction 0x{pending.hex()} must come before 0x{transaction.hash.hex()}")
        executor = self.get_transaction_executor()
        executor.validate_transaction(transaction)
        bridge.clear_pending_forced(self)
        return executor(transaction)


class OpenLedgerBlock(PragueBlock):
    def copy(self, *args: Any, **kwargs: Any) -> "OpenLedgerBlock":
        """py-evm's, sharing the body instead of deep-copying it: transactions, uncles and
        withdrawals are immutable, and py-evm copies a block three to four times while building
        or importing it (each a deep copy of every transaction: ~20% of a 1,400-transfer block)."""
        if not args:
            for name in ("transactions", "uncles", "withdrawals"):
                kwargs.setdefault(name, getattr(self, name))
        return super().copy(*args, **kwargs)


class OpenLedgerVM(PragueVM):
    fork = "openledger-prague"
    block_class = OpenLedgerBlock
    _state_class = OpenLedgerState
    genesis: Genesis = None  # set by build_chain_class
    block_hooks: tuple[Callable[[Any, Any, Any], None], ...] = ()

    @classmethod
    def create_header_from_parent(cls, parent_header: BlockHeaderAPI, **header_params: Any) -> BlockHeaderAPI:
        # A fixed gas limit: py-evm's default frontier rule lets it decay on empty blocks.
        if parent_header is not None:
            header_params.setdefault("gas_limit", parent_header.gas_limit)
        return PragueVM.create_header_from_parent(parent_header, **header_params)

    def increment_blob_gas_used(self, old_header: BlockHeaderAPI, transaction: Any) -> BlockHeaderAPI:
        """py-evm's, without copying the header (a deep copy of every field) for a transaction
        that carries no blobs."""
        if not get_total_blob_gas(transaction):
            return old_header
        return super().increment_blob_gas_used(old_header, transaction)

    def apply_all_transactions(self, transactions: Any, base_header: BlockHeaderAPI) -> Any:
        """py-evm's, keeping the receipts on the VM so a block import need not read them back
        from the receipt trie it has just written (see `import_block`)."""
        header, receipts, computations = super().apply_all_transactions(transactions, base_header)
        self.block_receipts = tuple(receipts)
        return header, receipts, computations

    def set_block_transactions_and_withdrawals(
        self, base_block: BlockAPI, new_header: BlockHeaderAPI, transactions: Sequence[SignedTransactionAPI],
        receipts: Sequence[ReceiptAPI], withdrawals: Sequence[Any] | None = None,
    ) -> BlockAPI:
        """py-evm's, with the transaction/receipt/withdrawal tries built by `vm.trie` (one pass
        over sorted keys) instead of HexaryTrie (half the CPU of a 1,000-transfer import)."""
        fields: dict[str, Any] = {"transactions": transactions}
        lists = [("transaction_root", transactions), ("receipt_root", receipts)]
        if withdrawals:
            lists.append(("withdrawals_root", withdrawals))
            fields["withdrawals"] = withdrawals
        roots = {}
        for name, items in lists:
            roots[name], nodes = ordered_trie_root([item.encode() for item in items])
            self.chaindb.persist_trie_data_dict(nodes)
        fields["header"] = new_header.copy(**roots)
        block = base_block.copy(**fields)
        # the body tuple is shared by this block's copies (OpenLedgerBlock.copy): validate_block
        # need not build the same transaction trie again for it
        self._rooted_transactions = (block.transactions, roots["transaction_root"])
        return block

    def validate_block(self, block: BlockAPI) -> None:
        """py-evm's checks (header against parent, transaction root, no uncles, state root,
        blob gas), with the transaction root from `vm.trie` rather than a second HexaryTrie."""
        if block.is_genesis or not isinstance(block, self.get_block_class()):
            return super().validate_block(block)  # py-evm's errors for these (no transactions)
        header = block.header
        self.validate_header(header, get_parent_header(header, self.chaindb))
        rooted = getattr(self, "_rooted_transactions", None)
        if rooted is not None and rooted[0] is block.transactions:
            tx_root = rooted[1]
        else:
            tx_root, _ = ordered_trie_root([tx.encode() for tx in block.transactions])
        if tx_root != header.transaction_root:
            raise ValidationError(f"block #{block.number}: transaction_root {header.transaction_root.hex()} "
                                  f"does not match its transactions ({tx_root.hex()})")
        if block.uncles or header.uncles_hash != EMPTY_UNCLE_HASH:
            raise ValidationError(f"block #{block.number}: uncles are not allowed after the merge")
        if not self.chaindb.exists(header.state_root) and self.state.make_state_root() != header.state_root:
            raise ValidationError(f"block #{block.number}: state_root {header.state_root.hex()} does not match")
        self.validate_block_blobs(block)

    def process_deposit_request_data(self, block: BlockAPI) -> None:
        """No beacon-chain deposit contract exists on our chain, so a block's deposit requests
        are always empty. Prague's version reads every receipt back from the trie to look for
        that contract's logs (about 12% of a 1,000-transfer import)."""
        block.block_requests.append(DEPOSIT_REQUEST_TYPE)

    def _assign_block_rewards(self, block: BlockAPI) -> None:
        """Finalisation hook (py-evm calls it before the state root is computed, when building
        and when importing): our fee sink and the registered block hooks, in that order."""
        super()._assign_block_rewards(block)  # nothing since Paris (no PoW rewards)
        header = block.header
        if self.genesis.base_fee_sink == "treasury" and header.gas_used:
            self.state.delta_balance(self.genesis.treasury, header.gas_used * header.base_fee_per_gas)
        for hook in self.block_hooks:
            hook(self.state, header, self.genesis)


def build_chain_class(genesis: Genesis) -> type[MiningChain]:
    """A MiningChain class for `genesis`: our VM from block 0, chain id from genesis, and the
    native modules and block hooks registered in `vm.registry` at the time of the call.
    A chain imported from a go-ethereum genesis runs py-evm's mainnet forks (`vm.forks`)."""
    if genesis.ethereum is not None:
        return build_ethereum_chain_class(genesis)
    computation = type("OpenLedgerComputation", (OpenLedgerComputation,), {
        "_precompiles": {**PragueComputation._precompiles, **registry.PRECOMPILES},
    })
    state = type("OpenLedgerState", (OpenLedgerState,), {"computation_class": computation})
    vm_class = OpenLedgerVM.configure(
        __name__="OpenLedgerVM", _state_class=state, genesis=genesis, block_hooks=tuple(registry.BLOCK_HOOKS),
    )
    return MiningChain.configure(
        __name__="OpenLedgerChain", vm_configuration=((0, vm_class),), chain_id=genesis.chain_id,
    )


def genesis_params(genesis: Genesis) -> dict[str, Any]:
    """Header fields of block 0 (py-evm's `Chain.from_genesis` genesis_params)."""
    if genesis.ethereum is not None:
        return ethereum_genesis_params(genesis)
    return {
        "coinbase": genesis.validators[0].address,
        "difficulty": POST_MERGE_DIFFICULTY,
        "gas_limit": genesis.gas_limit,
        "timestamp": genesis.timestamp,
        "extra_data": genesis.extra_data,
        "mix_hash": POST_MERGE_MIX_HASH,
        "nonce": POST_MERGE_NONCE,
        "base_fee_per_gas": genesis.base_fee,
    }


def genesis_state(genesis: Genesis) -> dict[bytes, dict[str, Any]]:
    """Accounts of block 0 (py-evm's `Chain.from_genesis` genesis_state): the genesis accounts
    with the native modules' own accounts (`vm.modules.genesis_accounts`) and the governance
    predeploys (`vm.governance`) laid over them."""
    accounts = dict(genesis.accounts)
    if genesis.ethereum is None:  # an imported Ethereum chain has no native modules
        accounts.update(genesis_accounts(genesis))
        accounts.update(governance.genesis_accounts(genesis))
    return {
        addr: {"balance": a.balance, "nonce": a.nonce, "code": a.code, "storage": dict(a.storage)}
        for addr, a in accounts.items()
    }


# Block building and import. Import is py-evm's Chain.import_block step for step, minus one
# thing (building does without it too): py-evm's `persist_block` reads every new canonical block
# back from the database (decoding all its transactions again, ~20% of a 1,000-transfer import)
# only to return it, and the caller then has to read the receipts back too. Both functions
# return what they computed.

def build_block(chain: MiningChain, transactions: Iterable[SignedTransactionAPI], timestamp: int, coinbase: bytes,
                rejected: Callable[[SignedTransactionAPI, ValidationError], None] | None = None,
                **header_fields: Any) -> tuple[BlockAPI, tuple[ReceiptAPI, ...]]:
    """Fill a block on top of the chain's head from `transactions` (in price-and-nonce order,
    each sender's in nonce order) as go-ethereum's miner does (`fill_block`), and persist it.
    The proposer's own transactions go first, each forced transaction right after the L1 relay
    that carries it (`vm.modules.bridge.arrange`).
    A transaction that fails validation is passed to `rejected(tx, error)`. `header_fields`
    (extra_data, parent_beacon_block_root: the consensus commitment) go into the header."""
    header = chain.create_header_from_parent(chain.get_canonical_head(), timestamp=timestamp, coinbase=coinbase,
                                             **header_fields)
    transactions, forced = bridge.arrange(transactions, header.gas_limit, coinbase)  # forced ones after their relays

    def refused(tx: SignedTransactionAPI, error: ValidationError | None) -> None:
        if error is not None and rejected is not None:
            rejected(tx, error)

    block, receipts, _ = fill_block(chain.get_vm(header), transactions, refused, forced=forced)
    chain.validate_block(block)
    chain.chaindb.persist_block(block)
    return block, receipts


def fill_block(vm: Any, transactions: Iterable[SignedTransactionAPI],
               refused: Callable[[SignedTransactionAPI, ValidationError | None], None],
               withdrawals: Sequence[Any] = (), forced: Collection[bytes] = frozenset(),
               ) -> tuple[BlockAPI, tuple[ReceiptAPI, ...], tuple[bytes, ...]]:
    """Execute and seal the block `vm` was built on: (block, receipts, EIP-7685 requests). Block
    production and testing_buildBlockV1 build with it.

    The block runs the system steps block import runs around its transactions (py-evm's
    `block_preprocessing`: EIP-4788 beacon root, EIP-2935 parent hash; `block_postprocessing`:
    EIP-7685 requests), each of which acts only where its system contract is in the state.

    The gas pool starts at the block's gas limit and shrinks by each transaction's gas *used*
    (py-evm's own rule: gas used so far + the transaction's gas limit <= the block's). A
    transaction whose limit exceeds what is left (`refused(tx, None)`) or that fails validation
    (`refused(tx, error)`) is skipped, and so are its sender's later transactions, since their
    nonces cannot come first; `refused` may raise to stop the build. Each transaction executes
    once. A transaction in `forced` (forced transactions from the L1, `bridge.arrange`) runs only
    where its relay has just queued it, and is passed over silently elsewhere (the relay consumed
    it as failed)."""
    vm.block_preprocessing(vm.get_block())
    header = vm.get_header()
    applied: list[SignedTransactionAPI] = []
    receipts: list[ReceiptAPI] = []
    stopped: set[bytes] = set()  # senders with a skipped transaction
    for tx in transactions:
        left = header.gas_limit - header.gas_used
        if left < GAS_TX:
            break
        if tx.hash in forced:
            if bridge.pending_forced(vm.state) != tx.hash:
                continue
        elif tx.sender in stopped:
            continue
        if tx.gas > left:
            stopped.add(tx.sender)
            refused(tx, None)
            continue
        try:
            header, (receipt,), _ = vm.apply_all_transactions((tx,), header)
        except ValidationError as error:
            # py-evm validates a transaction (against the header, then the state) before it
            # changes anything, so a refused one leaves the state as it was.
            stopped.add(tx.sender)
            refused(tx, error)
            continue
        applied.append(tx)
        receipts.append(receipt)
    if withdrawals:
        vm.apply_all_withdrawals(withdrawals)
    filled = vm.set_block_transactions_and_withdrawals(vm.get_block(), header, applied, receipts,
                                                       withdrawals=tuple(withdrawals) or None)
    block = vm.mine_block(vm.block_postprocessing(filled)).block
    requests = tuple(r for r in getattr(filled, "block_requests", ()) if len(r) > 1)  # type byte + data
    return block, tuple(receipts), requests


def import_block(chain: MiningChain, block: BlockAPI) -> tuple[BlockAPI, tuple[ReceiptAPI, ...]]:
    """Re-execute `block` on its parent, check the result is the same block, and persist it.
    Raises py-evm's ValidationError (WrongChainId from our VM's transaction validation)."""
    try:
        parent = chain.get_block_header_by_hash(block.header.parent_hash)
    except HeaderNotFound:
        raise ValidationError(f"block #{block.number}: unknown parent {block.header.parent_hash.hex()}") from None
    base_header = chain.create_header_from_parent(parent).copy(gas_used=block.header.gas_used)
    vm = chain.get_vm(base_header)
    imported = vm.import_block(block).block
    if imported.header != block.header:
        # The header commits to the body (transactions, uncles, withdrawals roots), so comparing
        # headers is py-evm's whole-block RLP comparison without encoding 1,000 transactions twice.
        fields = [f for f in block.header._meta.field_names if getattr(imported.header, f) != getattr(block.header, f)]
        raise ValidationError(f"block #{block.number} differs from its re-execution in: {', '.join(fields)}")
    chain.validate_block(imported)
    chain.chaindb.persist_block(imported)
    receipts = getattr(vm, "block_receipts", None)  # absent on py-evm's own VMs (imported chains)
    if receipts is None:
        receipts = imported.get_receipts(chain.chaindb)
    return imported, tuple(receipts)
