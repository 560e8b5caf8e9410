"""Derivation: rebuild the L2 chain from L1 data alone (op-node's job).

Reads every `BatchAppended` log of the inbox, takes each batch's bytes from its L1 transaction's
input, checks them against the logged hash, decodes the blocks and imports them with the same
checks as any block import (re-execution, state root). Relayed deposits are checked against the
L1 bridge's `DepositInitiated` logs before their block is imported: a block relaying a deposit
the L1 does not hold (or with another recipient or amount, or one posted before the deposit was
made) stops derivation with the reason, and so does a batch posted more than the sequencing window
after a deposit that it still has not relayed (forced inclusion: the sequencer cannot skip one
and cannot hold one back forever; see docs/settlement.md). Forced transactions (raw L2
transactions queued on the L1 bridge) are held to the same two rules: a relay must carry exactly
the bytes the L1 logged under its id, and none may be held back past the window. Resumable:
blocks the data dir already holds are skipped. When the L1 holds nothing new, the report says
what derivation waits for (a withheld batch: the next L2 block, and the deposits and forced
transactions queued on the L1 that the L2 has not yet shown).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

import eth_abi
from eth_utils import ValidationError, keccak

from node.settlement import batches, forced
from node.settlement.deployment import Deployment
from node.settlement.l1 import L1
from node.settlement.service import RELAY_SELECTOR
from vm.modules.bridge import NEXT_DEPOSIT, NEXT_FORCED
from vm.modules.system import L2_BRIDGE


DERIVED_UP_TO = b"settlement:derived-l1-block"
"""Node DB: the L1 block of the last batch derived, where the next `derive` starts reading logs."""


class DerivationError(RuntimeError):
    """L1 data that does not derive a valid L2 chain (the reason names batch and block)."""


@dataclasses.dataclass
class DeriveReport:
    batches: int = 0
    imported: int = 0
    skipped: int = 0
    deposits: int = 0
    forced: int = 0  # forced transactions relayed in the imported blocks
    waiting: str = ""  # what the next run waits for on the L1


def derive(node, l1: L1, deployment: Deployment, on_block: Callable[[int], None] | None = None) -> DeriveReport:
    _, _, inbox, bridge = deployment.contracts(l1)
    genesis_hash = node.header_by_number(0).hash
    if inbox.call("l2GenesisHash") != genesis_hash:
        raise DerivationError(f"the inbox at {inbox.address} settles L2 genesis 0x{inbox.call('l2GenesisHash').hex()}, "
                              f"this data dir holds 0x{genesis_hash.hex()}")
    deposits = {e["args"]["depositId"]: e for e in bridge.events("DepositInitiated", deployment.deploy_block)}
    queue = {e["args"]["forcedId"]: e for e in bridge.events("TransactionForced", deployment.deploy_block)}
    report = DeriveReport()
    stored = node.db.get(DERIVED_UP_TO)
    start = max(deployment.deploy_block, int(stored) if stored else 0)
    for event in inbox.events("BatchAppended", start):
        args, where = event["args"], f"batch #{event['args']['index']} (L1 tx {event['transactionHash']})"
        tx = l1.rpc("eth_getTransactionByHash", event["transactionHash"])
        try:
            first, last, data = inbox.decode_input("appendBatch", bytes.fromhex(tx["input"][2:]))
        except (ValueError, eth_abi.exceptions.DecodingError) as e:
            raise DerivationError(f"{where}: its transaction is not a direct appendBatch call ({e})") from None
        if keccak(data) != args["dataHash"] or (first, last) != (args["firstBlock"], args["lastBlock"]):
            raise DerivationError(f"{where}: transaction input does not match the logged batch")
        try:
            blocks = batches.decode(data, node.block_class_at, first, last)
        except batches.BadBatch as e:
            raise DerivationError(f"{where}: {e}") from None
        report.batches += 1
        for kind, slot, relayed_ids, pending in (("deposit", NEXT_DEPOSIT, _relayed_ids, deposits),
                                                 ("forced transaction", NEXT_FORCED, _forced_ids, queue)):
            _check_window(node, blocks, kind, slot, relayed_ids, pending, event["blockNumber"],
                          deployment.sequencing_window, where)
        for block in blocks:
            known = node.header_by_number(block.number)
            if known is not None:
                if known.hash != block.hash:
                    raise DerivationError(f"{where}: L2 block {block.number} 0x{block.hash.hex()} differs from this "
                                          f"data dir's 0x{known.hash.hex()}")
                report.skipped += 1
                continue
            report.deposits += _check_deposits(block, deposits, event["blockNumber"], where)
            report.forced += _check_forced(block, queue, event["blockNumber"], where)
            try:
                node.import_block(block)
            except ValidationError as e:
                raise DerivationError(f"{where}: L2 block {block.number} rejected: {e}") from None
            report.imported += 1
            if on_block is not None:
                on_block(block.number)
        # the next run reads logs from this batch's L1 block on (its blocks are then skipped)
        node.db[DERIVED_UP_TO] = str(event["blockNumber"]).encode()
    report.waiting = _waiting(node, inbox, deposits, queue, deployment.sequencing_window)
    return report


def _waiting(node, inbox, deposits: dict[int, dict], queue: dict[int, dict], window: int) -> str:
    """What derivation waits for once it holds every posted block: the next L2 block, and the
    oldest deposit and forced transaction the L1 holds that the derived chain has not relayed
    (with the L1 block by which a batch must carry it)."""
    head = node.head().block_number
    posted = inbox.call("nextBlock") - 1
    parts = [f"waiting for L2 block {head + 1}: the L1 inbox holds blocks up to {posted}"]
    state = node.state_at(node.head())
    for name, pending, next_id in (("deposit", deposits, state.get_storage(L2_BRIDGE, NEXT_DEPOSIT)),
                                   ("forced transaction", queue, state.get_storage(L2_BRIDGE, NEXT_FORCED))):
        if next_id in pending:
            e = pending[next_id]
            parts.append(f"{len(pending) - next_id} {name}(s) queued on the L1 not yet on the L2, the oldest "
                         f"#{next_id} from L1 block {e['blockNumber']}, due by L1 block {e['blockNumber'] + window}")
    return "; ".join(parts)


def _relayed_ids(block) -> set[int]:
    return {int.from_bytes(tx.data[4:36], "big") for tx in block.transactions
            if tx.to == L2_BRIDGE and tx.data[:4] == RELAY_SELECTOR and tx.sender == block.header.coinbase}


def _check_window(node, blocks, kind: str, slot: int, relayed_ids, pending: dict[int, dict], batch_l1_block: int,
                  window: int, where: str) -> None:
    """Forced inclusion, checked before any block of the batch is imported: once a batch lands more
    than `window` L1 blocks after a deposit or forced transaction (`kind`; the L2 bridge's next id
    in storage `slot`, ids a block relays by `relayed_ids`), the L2 must have relayed it by that
    batch's last block, or the sequencer is holding it back."""
    next_id = node.state_at(node.head()).get_storage(L2_BRIDGE, slot)
    relayed = set().union(*(relayed_ids(b) for b in blocks if b.number > node.head().block_number))
    while next_id in relayed:
        next_id += 1
    due = pending.get(next_id)
    if due is not None and due["blockNumber"] + window < batch_l1_block:
        tx = f", L2 tx 0x{due['args']['txHash'].hex()}" if "txHash" in due["args"] else ""
        raise DerivationError(f"{where}: {kind} #{next_id} (L1 block {due['blockNumber']}{tx}) is past the "
                              f"sequencing window of {window} L1 blocks and still not relayed by L2 block "
                              f"{blocks[-1].number}")


def _forced_ids(block) -> set[int]:
    return {r[0] for tx in block.transactions
            if tx.sender == block.header.coinbase and (r := forced.relayed(tx)) is not None}


def _check_forced(block, queue: dict[int, dict], batch_l1_block: int, where: str) -> int:
    """Every forced relay of the proposer carries the bytes the L1 logged under its id, logged
    before the batch was posted: a proposer cannot make one up or swap its transaction."""
    count = 0
    for tx in block.transactions:
        relay = forced.relayed(tx)
        if relay is None or tx.sender != block.header.coinbase:
            continue  # another sender's relay reverts on the L2: nothing is consumed
        forced_id, raw = relay
        l1 = queue.get(forced_id)
        if l1 is None or l1["blockNumber"] > batch_l1_block:
            raise DerivationError(f"{where}: L2 block {block.number} relays forced transaction #{forced_id}, which "
                                  "the L1 bridge did not hold when the batch was posted")
        if raw != l1["args"]["transaction"]:
            raise DerivationError(f"{where}: L2 block {block.number} relays forced transaction #{forced_id} as "
                                  f"0x{keccak(raw).hex()}; the L1 queued 0x{l1['args']['txHash'].hex()}")
        count += 1
    return count


def _check_deposits(block, deposits: dict[int, dict], batch_l1_block: int, where: str) -> int:
    count = 0
    for tx in block.transactions:
        if tx.to != L2_BRIDGE or tx.data[:4] != RELAY_SELECTOR:
            continue
        try:
            deposit_id, to, amount = eth_abi.decode(["uint256", "address", "uint256"], tx.data[4:])
        except eth_abi.exceptions.DecodingError:
            continue  # the module reverts it: nothing is paid
        l1 = deposits.get(deposit_id)
        if l1 is None or l1["blockNumber"] > batch_l1_block:
            raise DerivationError(f"{where}: L2 block {block.number} relays deposit #{deposit_id}, which the L1 "
                                  "bridge did not hold when the batch was posted")
        if (l1["args"]["to"].lower(), l1["args"]["amount"]) != (to.lower(), amount):
            raise DerivationError(f"{where}: L2 block {block.number} relays deposit #{deposit_id} to {to} for "
                                  f"{amount}; the L1 deposit is to {l1['args']['to']} for {l1['args']['amount']}")
        count += 1
    return count
