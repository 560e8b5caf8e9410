"""The `testing_` namespace (go-ethereum's): testing_buildBlockV1 builds the block that would follow
the head with given payload attributes and transactions, and answers it as an engine-API payload
envelope (engine_getPayloadV4's shape) without importing it: the chain does not change.

Off unless `--http.api` names `testing`, as in geth (the spec asks that it never be public).
The block is filled by `vm.fill_block`, as the node's own blocks are, with the steps block import
re-executes (EIP-4788 and EIP-2935 system calls, the transactions, withdrawals, EIP-7685
requests, our block hooks), so the payload re-imports unchanged; it is built on a throw-away
overlay of the node's database, as eth_simulateV1 builds its blocks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import trio
from eth.db.atomic import AtomicDB
from eth.db.batch import BatchDB
from eth.vm.forks.london.headers import calculate_expected_base_fee_per_gas
from eth.vm.forks.shanghai.withdrawals import Withdrawal
from eth_utils import ValidationError, to_checksum_address

from node.rpc import format as F
from node.rpc import params as P
from node.rpc.errors import INVALID_PARAMS, RpcError
from node.rpc.namespaces import RpcContext, register_namespace
from vm.errors import WrongChainId
from vm import chain as vm_chain
from vm.chain import validate_chain_id

GETH_GAS_CEILING = 60_000_000
"""go-ethereum's default miner gas ceiling (`--miner.gaslimit`): an imported Ethereum chain's
built blocks move their gas limit towards it, as geth's do. Our own chains keep the genesis gas
limit (their block producer never changes it)."""
MAX_EXTRA_DATA = 32  # bytes, the header rule since Frontier
_ATTRIBUTES = ("timestamp", "prevRandao", "suggestedFeeRecipient", "withdrawals", "parentBeaconBlockRoot")
_WITHDRAWAL = ("index", "validatorIndex", "address", "amount")
_PAYLOAD_FIELDS = (  # ExecutionPayloadV3 name <- the eth_getBlockBy* name (node.rpc.format.block)
    ("parentHash", "parentHash"), ("feeRecipient", "miner"), ("stateRoot", "stateRoot"),
    ("receiptsRoot", "receiptsRoot"), ("logsBloom", "logsBloom"), ("prevRandao", "mixHash"),
    ("blockNumber", "number"), ("gasLimit", "gasLimit"), ("gasUsed", "gasUsed"), ("timestamp", "timestamp"),
    ("extraData", "extraData"), ("baseFeePerGas", "baseFeePerGas"), ("blockHash", "hash"),
    ("transactions", None), ("withdrawals", "withdrawals"), ("blobGasUsed", "blobGasUsed"),
    ("excessBlobGas", "excessBlobGas"),
)


@dataclass(frozen=True)
class PayloadAttributes:
    """engine API PayloadAttributesV3: what the consensus layer decides about the next block."""

    timestamp: int
    prev_randao: bytes
    fee_recipient: bytes
    withdrawals: tuple[Withdrawal, ...] | None  # None: not given (pre-Shanghai attributes)
    beacon_root: bytes | None


def _withdrawal(value: object, i: int) -> Withdrawal:
    if not isinstance(value, dict):
        raise ValueError(f"withdrawals[{i}] must be an object")
    missing = [k for k in _WITHDRAWAL if value.get(k) is None]
    if missing or set(value) - set(_WITHDRAWAL):
        raise ValueError(f"withdrawals[{i}] needs exactly the fields {', '.join(_WITHDRAWAL)}")
    return Withdrawal(P.uint64(value["index"]), P.uint64(value["validatorIndex"]), P.address(value["address"]),
                      P.uint64(value["amount"]))


def payload_attributes(value: object) -> PayloadAttributes:
    """Parse PayloadAttributesV3 (geth requires timestamp, prevRandao and suggestedFeeRecipient)."""
    if not isinstance(value, dict):
        raise ValueError("payload attributes must be an object")
    unknown = sorted(set(value) - set(_ATTRIBUTES))
    if unknown:
        raise ValueError(f"unknown payload attribute(s) {unknown}")
    for key in _ATTRIBUTES[:3]:
        if value.get(key) is None:
            raise ValueError(f"missing required field '{key}' for PayloadAttributes")
    withdrawals = value.get("withdrawals")
    if withdrawals is not None and not isinstance(withdrawals, list):
        raise ValueError("withdrawals must be an array")
    beacon_root = value.get("parentBeaconBlockRoot")
    return PayloadAttributes(
        timestamp=P.uint64(value["timestamp"]), prev_randao=P.hash32(value["prevRandao"]),
        fee_recipient=P.address(value["suggestedFeeRecipient"]),
        withdrawals=None if withdrawals is None else tuple(_withdrawal(w, i) for i, w in enumerate(withdrawals)),
        beacon_root=None if beacon_root is None else P.hash32(beacon_root))


def raw_transactions(value: object) -> list[bytes]:
    if not isinstance(value, list):
        raise ValueError("transactions must be an array of raw transactions or null")
    return [P.data(item) for item in value]


def extra_data(value: object) -> bytes:
    extra = P.data(value)
    if len(extra) > MAX_EXTRA_DATA:
        raise ValueError(f"extraData is {len(extra)} bytes, at most {MAX_EXTRA_DATA} allowed")
    return extra


def gas_limit_towards(parent_limit: int, ceiling: int) -> int:
    """go-ethereum's core.CalcGasLimit: move towards `ceiling` by at most parent/1024 - 1."""
    delta = parent_limit // 1024 - 1
    ceiling = max(ceiling, 5000)  # params.MinGasLimit
    if parent_limit < ceiling:
        return min(parent_limit + delta, ceiling)
    return max(parent_limit - delta, ceiling)


class BuildError(RpcError):
    """A block that cannot be built (geth answers these as plain errors: -32000)."""


class PayloadBuilder:
    """Builds one block on `parent` over an overlay of the node's database (nothing persists)."""

    def __init__(self, node: Any) -> None:
        chain = node.evm_chain()
        self.chain = type(chain)(AtomicDB(BatchDB(chain.chaindb.db)))
        self.chain_id = node.chain_id
        self.ethereum = node.genesis.ethereum is not None
        self.gas_ceiling = GETH_GAS_CEILING if self.ethereum else node.genesis.gas_limit

    def decode(self, raws: list[bytes], number: int) -> list:
        """geth's engine.DecodeTransactions, with the sender and chain id checked up front."""
        builder = self.chain.get_vm_class_for_block_number(number).get_transaction_builder()
        txs = []
        for i, raw in enumerate(raws):
            try:
                tx = builder.decode(raw)
                tx.validate()
                if tx.chain_id is not None or not self.ethereum:  # imported history may be pre-EIP-155
                    validate_chain_id(tx, self.chain_id)
                tx.sender  # recovers (and caches) the signer: a bad signature fails here
            except WrongChainId as exc:
                raise BuildError(f"invalid transaction {i}: {exc}") from None
            except Exception as exc:  # rlp, py-evm and eth_keys raise many types for malformed bytes
                raise BuildError(f"invalid transaction {i}: {exc or type(exc).__name__}") from None
            if F.tx_type(tx) == 3:
                raise BuildError(f"invalid transaction {i}: blob transactions need their sidecar, "
                                 "which raw transactions do not carry")
            txs.append(tx)
        return txs

    def build(self, parent, attrs: PayloadAttributes, raws: list[bytes] | None, pool: list, extra: bytes) -> dict:
        """The raw transactions `raws` must all apply (the first that cannot fails the call); with
        `raws` None the `pool` transactions are tried in order and those that cannot apply are
        left out."""
        txs = None if raws is None else self.decode(raws, parent.block_number + 1)
        if attrs.timestamp <= parent.timestamp:
            raise BuildError(f"invalid timestamp, parent {parent.timestamp} given {attrs.timestamp}")
        vm_class = self.chain.get_vm_class_for_block_number(parent.block_number + 1)
        header = vm_class.create_header_from_parent(
            parent, timestamp=attrs.timestamp, coinbase=attrs.fee_recipient,
            gas_limit=gas_limit_towards(parent.gas_limit, self.gas_ceiling))
        fields = header._meta.field_names
        changes: dict[str, Any] = {"mix_hash": attrs.prev_randao, "extra_data": extra}
        if "parent_beacon_block_root" in fields:
            if attrs.beacon_root is None:
                raise RpcError("missing parentBeaconBlockRoot (required since Cancun)", code=INVALID_PARAMS)
            changes["parent_beacon_block_root"] = attrs.beacon_root
        elif attrs.beacon_root is not None:
            raise BuildError("parentBeaconBlockRoot set before Cancun")
        withdrawals = attrs.withdrawals
        if "withdrawals_root" in fields:
            withdrawals = withdrawals or ()
        elif withdrawals is not None:
            raise BuildError("withdrawals set before Shanghai activation")
        vm = self.chain.get_vm(header.copy(**changes))

        def refused(tx, error: ValidationError | None) -> None:
            if txs is None:
                return  # a pool transaction that no longer applies is skipped, as geth's miner does
            i = txs.index(tx)
            if error is None:
                raise BuildError(f"transaction {i}: gas limit {tx.gas} exceeds what is left in the block")
            expected = vm.state.get_nonce(tx.sender)  # refused before it ran: the state is as it was
            if tx.nonce != expected:  # geth's wording for the commonest refusal
                word = "high" if tx.nonce > expected else "low"
                raise BuildError(f"nonce too {word}: address {to_checksum_address(tx.sender)}, "
                                 f"tx: {tx.nonce} state: {expected}")
            raise BuildError(f"transaction {i}: {error}")

        try:
            block, receipts, requests = vm_chain.fill_block(vm, pool if txs is None else txs, refused,
                                                            withdrawals or ())
        except ValidationError as exc:
            raise BuildError(f"invalid block: {exc}") from None
        if txs is not None and len(block.transactions) < len(txs):  # the block filled up before them
            raise BuildError(f"transaction {len(block.transactions)}: the block has no gas left for it")
        base_fee = getattr(block.header, "base_fee_per_gas", None)  # absent before London
        value, previous = 0, 0
        for tx, receipt in zip(block.transactions, receipts):
            value += (receipt.gas_used - previous) * (F.effective_gas_price(tx, base_fee) - (base_fee or 0))
            previous = receipt.gas_used
        return envelope(block, value, list(requests) if "requests_hash" in fields else None)


def envelope(block, value: int, requests: list[bytes] | None) -> dict:
    """engine_getPayloadV4's response for `block` (no blobs: blob transactions are refused)."""
    rendered = F.block(block, full=False)
    payload = {}
    for name, source in _PAYLOAD_FIELDS:
        if source is None:
            payload[name] = [F.hexdata(tx.encode()) for tx in block.transactions]
        elif source in rendered:
            payload[name] = rendered[source]
    return {
        "executionPayload": payload,
        "blockValue": F.qty(value),
        "blobsBundle": {"commitments": [], "proofs": [], "blobs": []},
        "executionRequests": None if requests is None else [F.hexdata(r) for r in requests],
        "shouldOverrideBuilder": False,
    }


class Testing:
    def __init__(self, ctx: RpcContext) -> None:
        self.ctx = ctx
        self.node = ctx.node

    async def build_block_v1(self, parent_hash: Annotated[bytes, P.hash32],
                             attributes: Annotated[PayloadAttributes, payload_attributes],
                             transactions: Annotated[list | None, raw_transactions] = None,
                             extra: Annotated[bytes, extra_data] = b"") -> dict:
        """testing_buildBlockV1: `transactions` null takes the pool's, [] builds an empty block."""
        parent = self.node.head()
        if parent.hash != parent_hash:
            raise BuildError("parentHash is not current head")
        pool = []
        if transactions is None:
            base_fee = calculate_expected_base_fee_per_gas(parent) if hasattr(parent, "base_fee_per_gas") else 0
            pool = self.node.mempool.select(base_fee, parent.gas_limit)
        builder = PayloadBuilder(self.node)
        return await trio.to_thread.run_sync(builder.build, parent, attributes, transactions, pool, extra,
                                             limiter=self.ctx.call_limiter)

    def methods(self) -> dict:
        return {"testing_buildBlockV1": self.build_block_v1}


register_namespace("testing", lambda ctx: Testing(ctx).methods())
