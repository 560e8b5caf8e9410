"""The L1 deployment of one L2: the four contracts, their addresses, and the facts every L2 node
needs to find and check its data there (a JSON file `openledger bridge deploy` writes and
`run --l1`, `derive` and `bridge` read)."""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib

from genesis import TOTAL_SUPPLY
from node.settlement.l1 import L1, Contract, L1Error, checksum, deploy


@dataclasses.dataclass(frozen=True)
class Deployment:
    l1_chain_id: int
    l2_chain_id: int
    l2_genesis_hash: str  # 0x...: the L2 chain this deployment settles
    token: str
    oracle: str
    inbox: str
    bridge: str
    deploy_block: int  # first L1 block to read logs from
    finalization_period: int  # seconds between proving and finalising a withdrawal
    batcher: str
    sequencing_window: int = 3600
    """L1 blocks within which a deposit or forced transaction must be relayed: a batch posted later
    that still has not relayed it is invalid (OP Stack's sequencer window: 3,600 L1 blocks, 12 hours)."""

    def contracts(self, l1: L1) -> tuple[Contract, Contract, Contract, Contract]:
        """(token, oracle, inbox, bridge) on `l1`, after checking it is this deployment's chain."""
        if l1.chain_id != self.l1_chain_id:
            raise L1Error(f"the L1 at {l1.url} has chain id {l1.chain_id}; this deployment is on {self.l1_chain_id}")
        return (Contract(l1, "L1OpenToken", self.token), Contract(l1, "OutputOracle", self.oracle),
                Contract(l1, "BatchInbox", self.inbox), Contract(l1, "L1Bridge", self.bridge))

    def save(self, path: str | os.PathLike) -> None:
        path = pathlib.Path(path)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(dataclasses.asdict(self), indent=1) + "\n")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Deployment":
        try:
            fields = json.loads(pathlib.Path(path).read_text())
            return cls(**fields)
        except OSError as e:
            raise L1Error(f"cannot read the L1 deployment file {str(path)!r}: {e.strerror}") from None
        except (ValueError, TypeError) as e:
            raise L1Error(f"{str(path)!r} is not an L1 deployment file: {e}") from None


def deploy_all(l1: L1, *, l2_chain_id: int, l2_genesis_hash: bytes, validators: list[tuple[bytes, int]],
               batcher: str, escrow: int, finalization_period: int, sequencing_window: int = 3600) -> Deployment:
    """Deploy token, oracle, inbox and bridge from `l1`'s key, and lock in the bridge every L1 OPEN
    that lives on the L2 (all but `escrow`, which the deployer keeps: the amount the L2 bridge
    account escrows)."""
    if not 0 <= escrow <= TOTAL_SUPPLY:
        raise L1Error(f"escrow {escrow} outside 0..{TOTAL_SUPPLY}")
    start = l1.block_number()
    token = deploy(l1, "L1OpenToken", l1.address)
    inbox = deploy(l1, "BatchInbox", checksum(batcher), l2_genesis_hash)
    oracle = deploy(l1, "OutputOracle", l2_chain_id, [(checksum(a), power) for a, power in validators], inbox)
    bridge = deploy(l1, "L1Bridge", token, oracle, finalization_period)
    Contract(l1, "L1OpenToken", token).transact("transfer", bridge, TOTAL_SUPPLY - escrow)
    return Deployment(l1.chain_id, l2_chain_id, "0x" + l2_genesis_hash.hex(), token, oracle, inbox, bridge,
                      start + 1, finalization_period, checksum(batcher), sequencing_window)
