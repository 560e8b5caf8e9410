"""An address's earnings by source over a block range (`ol_getRewards`, `openledger rewards`),
derived from what the chain already records: the modules' events, and their storage at each block.

Every reward the chain pays is credited to the Economics ledger (`rewards[address]`), so the ledger
at the range's last block minus the ledger before its first block is the address's whole earning.
It is split as follows, and the sources always sum to it:
- a fee split's payments (Attribution.RewardPaid) by role: contributor -> data contribution, model
  owner -> model ownership, validator -> inference work for the job's submitter and verification
  for its valid attesters, treasury -> treasury;
- the work share of a block's reserve release (Economics.record_work: `work_reward_ppm` of the
  release, in equal parts per recorded work) -> inference work for a job that succeeded in that
  block (InferenceJobs.JobFinalised), attribution for a proof paid out in it (Attribution.FeeSplit);
- the rest (the validators' stake-weighted release, the proposer's remainder, delegation rewards
  claimed) -> block rewards.

The tables below are the extension point: a module that pays a new kind of reward adds its source
to SOURCES and a rule to EVENT_RULES (the event that names the payment, and which source it is).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

from eth_utils import keccak

from node.sdk import ROLES, decode_events
from vm.modules import training_jobs
from vm.modules.storage import slot_of
from vm.modules.system import (
    ATTRIBUTION, ECONOMICS, INFERENCE_JOBS, TRAINING_JOBS, PARAM_FIELDS, PARAMS_BASE_SLOT, PARAMS_CONFIGURED_SLOT, REWARDS_SLOT, PPM,
    Params,
)

SOURCES: dict[str, str] = {
    "block rewards": "the validators' stake-weighted share of each block's reserve release, the proposer's "
                     "remainder, and delegation rewards claimed",
    "inference work": "serving paid jobs: the submitter's part of a job's fee and a work share of the release "
                      "of the block that settled it",
    "verification": "attesting valid results: the attesters' part of a job's fee",
    "attribution": "posting an attribution proof that was paid out: a work share of that block's release",
    "data contribution": "accepted Datanet rows credited by a paid job's attribution proof",
    "model ownership": "the model owner's part of every paid job's fee on its adapters",
    "treasury": "the treasury's part of fee splits and their integer remainders",
    "training work": "training a paid run (the trainer's part of its fee and a work share of the release of "
                     "the block that completed it) and replaying it (the valid verifiers' part)",
    "data use": "accepted Datanet rows of a version a paid training run used: the version's data-use price, "
                "split by accepted contributions",
}
"""Every source of rewards, in the order they are shown, with what it pays for."""

_WORK_COUNT, _WORK, _RELEASED = 102, 103, 101  # Economics storage (vm/modules/economics.py)


@dataclasses.dataclass(frozen=True)
class Ledger:
    """Reads of the chain at a block, as the rules need them: storage of a system account."""

    storage: Callable[[bytes, int, int], int]  # (account, slot, block) -> word

    def job_submitter(self, job_id: int, block: int) -> bytes:
        return self.storage(INFERENCE_JOBS, slot_of(1, job_id) + 5, block).to_bytes(20, "big")

    def proof_poster(self, job_id: int, block: int) -> bytes:
        head = self.storage(ATTRIBUTION, slot_of(0, job_id), block)
        return (head & (2**160 - 1)).to_bytes(20, "big")

    def training_voters(self, job_id: int, block: int) -> list[tuple[bytes, int]]:
        """(validator, vote: 1 valid, 2 invalid) of every attestation of a training job."""
        count = self.storage(TRAINING_JOBS, training_jobs.job_slot(job_id) + 16, block) & training_jobs.LOW128
        count += self.storage(TRAINING_JOBS, training_jobs.job_slot(job_id) + 16, block) >> 128
        voters = [self.storage(TRAINING_JOBS, slot_of(training_jobs.VOTERS, job_id, i), block).to_bytes(20, "big")
                  for i in range(count)]
        return [(v, self.storage(TRAINING_JOBS, slot_of(training_jobs.ATTESTATIONS, job_id, v), block)) for v in voters]

    def param(self, name: str, block: int) -> int:
        if self.storage(ECONOMICS, PARAMS_CONFIGURED_SLOT, block) == 0:
            return getattr(Params(), name)
        return self.storage(ECONOMICS, PARAMS_BASE_SLOT + PARAM_FIELDS.index(name), block)


@dataclasses.dataclass(frozen=True)
class EventRule:
    """A module event that names a reward payment: `credit(args, block, ledger)` yields
    (account, source, amount) for each payment it records."""

    module: bytes
    signature: str
    credit: Callable[[dict, int, Ledger], Iterable[tuple[bytes, str, int]]]

    @property
    def topic(self) -> bytes:
        return keccak(text=self.signature)


def _fee_split_payment(args: dict, block: int, ledger: Ledger) -> Iterable[tuple[bytes, str, int]]:
    account = bytes.fromhex(args["account"][2:])
    role = ROLES[args["role"]]
    if role == "validator":
        source = "inference work" if ledger.job_submitter(args["jobId"], block) == account else "verification"
    else:
        source = {"contributor": "data contribution", "model owner": "model ownership", "treasury": "treasury"}[role]
    yield account, source, args["amount"]


def _training_completed(args: dict, block: int, ledger: Ledger) -> Iterable[tuple[bytes, str, int]]:
    """A completed training job pays its trainer, its valid verifiers (equal parts) and the data-use
    dust to the treasury (the contributors' parts have their own event)."""
    yield bytes.fromhex(args["trainer"][2:]), "training work", args["trainerFee"]
    valid = [v for v, vote in ledger.training_voters(args["jobId"], block) if vote == 1]
    for v in valid:
        yield v, "training work", args["verifierFee"] // len(valid)
    yield ledger.param("treasury", block).to_bytes(20, "big"), "treasury", args["treasuryDust"]


EVENT_RULES: list[EventRule] = [
    EventRule(ATTRIBUTION, "RewardPaid(address,uint256,uint8,uint256)", _fee_split_payment),
    EventRule(TRAINING_JOBS, "DataUseFeePaid(uint256,address,uint256,uint256,uint256)",
              lambda a, _n, _ledger: [(bytes.fromhex(a["contributor"][2:]), "data use", a["amount"])]),
    EventRule(TRAINING_JOBS, "TrainingCompleted(uint256,uint256,address,uint256,uint256,uint256,uint256)",
              _training_completed),
]

WORK_EVENTS: list[tuple[bytes, str, Callable[[dict, int, Ledger], bytes | None], str]] = [
    (INFERENCE_JOBS, "JobFinalised(uint256,bool,uint256)",
     lambda a, n, ledger: ledger.job_submitter(a["jobId"], n) if a["success"] else None, "inference work"),
    (ATTRIBUTION, "FeeSplit(uint256,uint256,uint256,uint256,uint256)",
     lambda a, n, ledger: ledger.proof_poster(a["jobId"], n), "attribution"),
    (TRAINING_JOBS, "TrainingCompleted(uint256,uint256,address,uint256,uint256,uint256,uint256)",
     lambda a, _n, _ledger: bytes.fromhex(a["trainer"][2:]), "training work"),
]
"""The events of a block that recorded verified work (economics.record_work), in the order the
work was recorded within a transaction: (module, event, who did the work or None, source)."""


def _events(node, first: int, last: int, module: bytes, signature: str) -> list[dict]:
    logs = node.logs(first, last, [module], [keccak(text=signature)])
    return decode_events({"address": "0x" + r.address.hex(), "topics": ["0x" + t.hex() for t in r.topics],
                          "data": "0x" + r.data.hex(), "blockNumber": hex(r.block_number)} for r in logs)


def rewards_by_source(node, address: bytes, first: int, last: int) -> dict[str, int]:
    """{source: wei} that `address` earned in blocks first..last (inclusive); sums to its ledger's growth."""
    states: dict[int, object] = {}

    def storage(account: bytes, slot: int, block: int) -> int:
        if block < 0:
            return 0
        if block not in states:
            states[block] = node.state_at(node.resolve_block(block))
        return states[block].get_storage(account, slot)

    ledger = Ledger(storage)
    out = dict.fromkeys(SOURCES, 0)
    for rule in EVENT_RULES:
        for ev in _events(node, first, last, rule.module, rule.signature):
            for account, source, amount in rule.credit(ev["args"], ev["block"], ledger):
                if account == address:
                    out[source] += amount

    worked: dict[int, list[str]] = {}  # block -> the sources of this address's work recorded in it
    for module, signature, worker, source in WORK_EVENTS:
        for ev in _events(node, first, last, module, signature):
            if worker(ev["args"], ev["block"], ledger) == address:
                worked.setdefault(ev["block"], []).append(source)
    for n, sources in worked.items():
        count = storage(ECONOMICS, slot_of(_WORK_COUNT, n), n)
        release = storage(ECONOMICS, _RELEASED, n) - storage(ECONOMICS, _RELEASED, n - 1)
        if count and release > 0:
            share = release * ledger.param("work_reward_ppm", n) // PPM // count
            for source in sources:
                out[source] += share

    reward_slot = slot_of(REWARDS_SLOT, address)
    total = storage(ECONOMICS, reward_slot, last) - storage(ECONOMICS, reward_slot, first - 1)
    out["block rewards"] += total - sum(out.values())
    return out
