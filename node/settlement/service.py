"""The node's settlement duties, one `step()` at a time: relay L1 deposits, post batches, propose
output roots. `run` calls `step` in a worker thread every few seconds; tests call it directly.

Output roots carry the signatures of more than 2/3 of the stake OutputOracle holds: the proposer
posts one only once it has gathered that many (node/settlement/signatures.py: its own, and those
other validators gossip), and says what it waits for meanwhile (`StepReport.waiting`).

Durability without double work: the L1 contracts are the record of what was posted (the inbox
takes only the next unposted block, the oracle only a later output), so every step starts from
what the L1 says, and the posting account has one transaction in flight at most (its pending
nonce is checked first). The node DB keeps one thing more, the batch transaction in flight (written
before it is sent): a batcher restarted while it is pending waits for it instead of sending a
second one, and one the L1 forgot (dropped, or reorged out) is simply posted again from the
inbox's `nextBlock`. Deposits and forced transactions are relayed from logs at least
`confirmations` L1 blocks deep, so a reorg shallower than that never changes what the L2 has
relayed.
"""
from __future__ import annotations

import dataclasses
import json
import logging

from eth_account import Account
from eth_utils import keccak, to_canonical_address

from node.mempool import TxPoolError
from node.sdk import encode_call
from node.settlement import batches, forced
from node.settlement.deployment import Deployment
from node.settlement.l1 import L1, L1Error
from node.settlement.signatures import OutputSignatures
from vm.modules.bridge import NEXT_DEPOSIT, NEXT_FORCED
from vm.modules.system import L2_BRIDGE

log = logging.getLogger(__name__)

PENDING_BATCH = b"settlement:pending-batch"
RELAY_SELECTOR = keccak(text="relayDeposit(uint256,address,uint256)")[:4]
RELAY_GAS = 200_000
WAIT_REPORT_S = 10.0  # an output short of signatures this long is reported (node log and stdout)


@dataclasses.dataclass(frozen=True)
class SettlementConfig:
    """What `openledger run --l1 URL ...` asks for."""

    l1_url: str
    deployment: Deployment
    batcher_key: str | None  # L1 account that posts batches and outputs (pays the L1 gas); None: sign only
    validator_keys: tuple[str, ...]  # sign output roots; the first also relays deposits and forced txs (the proposer)
    output_interval: int = 10  # K: an output root every K L2 blocks
    confirmations: int = 2  # F: L1 blocks on top of a deposit before it is relayed
    max_batch_blocks: int = 100
    batch_interval_s: float = 0  # wait until the oldest unposted block is this old (or a batch is full)
    interval_s: float = 2.0

    def __post_init__(self) -> None:
        if self.output_interval < 1 or self.confirmations < 0 or self.max_batch_blocks < 1:
            raise ValueError("output interval and batch size must be >= 1, confirmations >= 0")
        if self.batcher_key is not None and not self.validator_keys:
            raise ValueError("settlement needs the validator's key to sign output roots")


@dataclasses.dataclass
class StepReport:
    batches: list[tuple[int, int, str]] = dataclasses.field(default_factory=list)  # (first, last, L1 tx)
    outputs: list[int] = dataclasses.field(default_factory=list)  # L2 blocks whose output was posted
    relayed: list[int] = dataclasses.field(default_factory=list)  # deposit ids sent to the pool
    forced: list[int] = dataclasses.field(default_factory=list)  # forced transaction ids relayed to the pool
    signers: dict[int, int] = dataclasses.field(default_factory=dict)  # L2 block -> signatures its output carried
    waiting: "Waiting | None" = None  # the next output, short of signatures


@dataclasses.dataclass(frozen=True)
class Waiting:
    """The next output root is not posted: too few of the validators OutputOracle holds signed it."""

    block: int
    signers: int
    validators: int
    signed_stake: int
    total_stake: int

    def __str__(self) -> str:
        return (f"the output root of L2 block {self.block} waits for validator signatures: {self.signers} of "
                f"{self.validators} validators signed ({self.signed_stake} of {self.total_stake} stake; more "
                "than 2/3 is needed)")


class Settlement:
    def __init__(self, node, config: SettlementConfig, signatures: OutputSignatures | None = None) -> None:
        """`signatures`: the pool the validator network fills (node/app.py); by default one
        holding this node's own signatures only (by `validator_keys`), enough for one validator."""
        if config.batcher_key is None:
            raise L1Error("posting to the L1 needs --l1.batcher-key")
        self.node, self.config = node, config
        d = config.deployment
        if d.l2_chain_id != node.chain_id or d.l2_genesis_hash != "0x" + node.header_by_number(0).hash.hex():
            raise L1Error(f"the L1 deployment settles L2 chain {d.l2_chain_id} with genesis {d.l2_genesis_hash}, "
                          f"not this node's chain {node.chain_id}")
        self.l1 = L1(config.l1_url, config.batcher_key)
        self.token, self.oracle, self.inbox, self.bridge = d.contracts(self.l1)
        for c in (self.oracle, self.inbox, self.bridge):
            if self.l1.rpc("eth_getCode", c.address, "latest") in ("0x", "0x0"):
                raise L1Error(f"no {c.name} at {c.address} on the L1 at {self.l1.url}: not this deployment's L1 "
                              "(or it was reset)")
        self.proposer = Account.from_key(config.validator_keys[0])
        coinbase = node.genesis.validators[0].address if node.genesis.validators else None
        if to_canonical_address(self.proposer.address) != coinbase:
            raise L1Error(f"the validator key's account {self.proposer.address} is not this chain's block proposer "
                          f"(0x{coinbase.hex() if coinbase else '-'}): it could not relay deposits")
        self.signatures = signatures if signatures is not None else OutputSignatures(
            node, d, config.output_interval, config.validator_keys)
        self._deposits: dict[int, dict] = {}
        self._forced: dict[int, dict] = {}
        self._scanned = d.deploy_block - 1

    def step(self) -> StepReport:
        report = StepReport()
        self.relay_deposits(report)
        self.relay_forced(report)
        self.post_batch(report)
        self.propose_outputs(report)
        return report

    # -- batches -------------------------------------------------------------------------------

    def _pending(self) -> dict | None:
        raw = self.node.db.get(PENDING_BATCH)
        return None if raw is None else json.loads(raw)

    def post_batch(self, report: StepReport) -> None:
        """Post the next unposted blocks (at most one batch in flight)."""
        pending = self._pending()
        if pending is not None:
            if self.l1.receipt(pending["tx"]) is None and self.l1.rpc("eth_getTransactionByHash", pending["tx"]):
                return  # still in the L1's pool: wait for it
            del self.node.db[PENDING_BATCH]  # mined (posted or refused) or forgotten: the inbox says which
        if self._in_flight():
            return
        first, head = self.inbox.call("nextBlock"), self.node.head().block_number
        if first > head:
            return
        age = self.node.head().timestamp - self.node.header_by_number(first).timestamp
        if head - first + 1 < self.config.max_batch_blocks and age < self.config.batch_interval_s:
            return  # fewer, fuller batches: L1 gas per L2 transaction falls with batch size
        last = min(head, first + self.config.max_batch_blocks - 1)
        while True:
            data = batches.encode([self.node.block_by_number(n) for n in range(first, last + 1)])
            if len(data) <= batches.MAX_BATCH_BYTES or last == first:
                break
            last = first + (last - first) // 2
        call = self.inbox.encode("appendBatch", first, last, data)
        gas = int(self.l1.rpc("eth_estimateGas", {"from": self.l1.address, "to": self.inbox.address,
                                                  "data": "0x" + call.hex()}), 16) * 6 // 5
        nonce = int(self.l1.rpc("eth_getTransactionCount", self.l1.address, "pending"), 16)
        raw, tx_hash = self._sign(self.inbox.address, call, gas, nonce)
        self.node.db[PENDING_BATCH] = json.dumps({"tx": tx_hash, "first": first, "last": last}).encode()
        self.l1.send_raw(raw)
        report.batches.append((first, last, tx_hash))
        log.info("posted L2 blocks %d..%d to the L1 inbox (%d bytes, tx %s)", first, last, len(data), tx_hash)

    def _in_flight(self) -> bool:
        """Whether a transaction of the posting account waits in the L1's pool: one at a time, so
        a restarted node never sends what an earlier run already sent."""
        counts = [int(self.l1.rpc("eth_getTransactionCount", self.l1.address, tag), 16) for tag in ("latest", "pending")]
        return counts[1] > counts[0]

    def _sign(self, to: str, data: bytes, gas: int, nonce: int) -> tuple[bytes, str]:
        base = int(self.l1.rpc("eth_getBlockByNumber", "latest", False)["baseFeePerGas"], 16)
        signed = self.l1.account.sign_transaction({
            "type": 2, "chainId": self.l1.chain_id, "nonce": nonce, "to": to, "value": 0, "gas": gas, "data": data,
            "maxFeePerGas": 2 * base + 10**9, "maxPriorityFeePerGas": 10**9})
        return bytes(signed.raw_transaction), "0x" + bytes(signed.hash).hex()

    # -- output roots --------------------------------------------------------------------------

    def propose_outputs(self, report: StepReport) -> None:
        """Post an output root every K blocks, for blocks already in posted batches (so anyone can
        check a root against data on the L1), once the validators OutputOracle holds signed it
        with more than 2/3 of their stake; until then `report.waiting` says how many did."""
        if self._in_flight():
            return  # e.g. an output sent just before a restart: posting it again would only revert
        posted_up_to = self.inbox.call("nextBlock") - 1
        while True:
            target = self.oracle.call("latestBlockNumber") + self.config.output_interval
            if target > posted_up_to:
                return
            expected = self.signatures.expected(target)
            if expected is None:
                return  # not decided here yet
            self.signatures.sign(target)
            stakes = {to_canonical_address(a): stake for a, stake in self.oracle.call("validators")}
            chosen = sorted((a, sig) for a, sig in self.signatures.gathered(target).items() if a in stakes)
            signed, total = sum(stakes[a] for a, _ in chosen), sum(stakes.values())
            if signed * 3 <= total * 2:
                report.waiting = Waiting(target, len(chosen), len(stakes), signed, total)
                return
            self.oracle.transact("proposeOutput", target, expected.output.root, list(expected.next_set),
                                 [sig for _, sig in chosen])
            report.outputs.append(target)
            report.signers[target] = len(chosen)
            log.info("posted the output root of L2 block %d: 0x%s (%d of %d validators signed)", target,
                     expected.output.root.hex(), len(chosen), len(stakes))

    # -- deposits ------------------------------------------------------------------------------

    def _scan(self) -> None:
        """Read the deposits and forced transactions of the L1 blocks now at least F deep."""
        safe = self.l1.block_number() - self.config.confirmations
        if safe > self._scanned:
            for e in self.bridge.events("DepositInitiated", self._scanned + 1, safe):
                self._deposits[e["args"]["depositId"]] = {**e["args"], "l1Block": e["blockNumber"]}
            for e in self.bridge.events("TransactionForced", self._scanned + 1, safe):
                self._forced[e["args"]["forcedId"]] = {**e["args"], "l1Block": e["blockNumber"]}
            self._scanned = safe

    def confirmed_deposits(self) -> dict[int, dict]:
        """L1 deposits at least F blocks deep, by id: {from, to, amount, l1Block}."""
        self._scan()
        return self._deposits

    def confirmed_forced(self) -> dict[int, dict]:
        """L1 forced transactions at least F blocks deep, by id: {from, txHash, transaction, l1Block}."""
        self._scan()
        return self._forced

    def _sign_relay(self, data: bytes, gas: int) -> bytes:
        node, sender = self.node, to_canonical_address(self.proposer.address)
        base = node.head().base_fee_per_gas
        signed = self.proposer.sign_transaction({
            "type": 2, "chainId": node.chain_id, "nonce": node.mempool.pending_nonce(sender), "to": L2_BRIDGE,
            "value": 0, "gas": gas, "maxFeePerGas": 2 * base + 10**9, "maxPriorityFeePerGas": 10**9, "data": data})
        return bytes(signed.raw_transaction)

    def relay_forced(self, report: StepReport) -> None:
        """Send the proposer's relayForced transactions for confirmed forced transactions not yet
        relayed, in id order, to the node's own pool; the block builder puts each forced
        transaction right after its relay (`vm.modules.bridge.arrange`). A forced transaction that cannot
        execute is relayed all the same: the L2 module consumes it as failed, with the reason."""
        node, sender = self.node, to_canonical_address(self.proposer.address)
        queue = self.confirmed_forced()
        next_id = node.state_at(node.head()).get_storage(L2_BRIDGE, NEXT_FORCED)
        pooled = {r[0] for tx in node.mempool.content().get(sender, []) if (r := forced.relayed(tx)) is not None}
        while next_id in queue:
            if next_id not in pooled:
                raw = queue[next_id]["transaction"]
                node.mempool.add_raw(self._sign_relay(forced.relay_data(next_id, raw), forced.relay_gas(raw)),
                                     local=False)
                report.forced.append(next_id)
            next_id += 1

    def relay_deposits(self, report: StepReport) -> None:
        """Send the proposer's relayDeposit transactions for confirmed deposits not yet relayed,
        in id order, to the node's own pool (the block producer includes them)."""
        node, sender = self.node, to_canonical_address(self.proposer.address)
        deposits = self.confirmed_deposits()
        next_id = node.state_at(node.head()).get_storage(L2_BRIDGE, NEXT_DEPOSIT)
        pooled = {int.from_bytes(tx.data[4:36], "big") for tx in node.mempool.content().get(sender, [])
                  if tx.to == L2_BRIDGE and tx.data[:4] == RELAY_SELECTOR}
        while next_id in deposits:
            if next_id not in pooled:
                d = deposits[next_id]
                data = encode_call("L2Bridge", "relayDeposit", next_id, d["to"], d["amount"])
                node.mempool.add_raw(self._sign_relay(data, RELAY_GAS), local=False)
                report.relayed.append(next_id)
            next_id += 1


async def run(node, config: SettlementConfig, signatures: OutputSignatures | None = None) -> None:
    """The node task: a step every `interval_s` in a worker thread. An L1 that is down or refuses
    a post, or a deployment that does not match the chain, is logged (once per distinct error)
    and tried again at the next step; it never stops the node, whose chain does not depend on the
    L1 to go on. An output short of signatures is reported once it has waited WAIT_REPORT_S
    (signatures usually arrive a step or two after the block is posted), then at each change."""
    import trio

    settlement, last_error, last_waiting, waiting_since = None, None, None, None
    while True:
        try:
            if settlement is None:  # an L1 still starting (or down) at the node's start is retried too
                settlement = await trio.to_thread.run_sync(Settlement, node, config, signatures)
            report = await trio.to_thread.run_sync(settlement.step)
        except (L1Error, TxPoolError, OSError, ValueError) as e:
            if str(e) != last_error:
                log.warning("settlement step failed (retrying every %.0fs): %s", config.interval_s, e)
                last_error = str(e)
        else:
            last_error = None
            for first, last, tx in report.batches:
                print(f"L1: posted L2 blocks {first}..{last} (tx {tx})", flush=True)
            for number in report.outputs:
                print(f"L1: posted the output root of L2 block {number} ({report.signers[number]} validator "
                      "signatures)", flush=True)
            waiting, now = report.waiting, trio.current_time()
            if waiting is None or waiting_since is None or waiting_since[0] != waiting.block:
                waiting_since = None if waiting is None else (waiting.block, now)
            elif now - waiting_since[1] >= WAIT_REPORT_S and waiting != last_waiting:
                print(f"L1: {waiting}", flush=True)
                log.info("%s", waiting)
                last_waiting = waiting
            for deposit_id in report.relayed:
                print(f"L1: relaying deposit #{deposit_id}", flush=True)
            for forced_id in report.forced:
                print(f"L1: relaying forced transaction #{forced_id}", flush=True)
        await trio.sleep(config.interval_s)
