"""OPEN governance at genesis: where GOPEN, the Timelock and the Governor live, and their settings.

The contracts are OpenZeppelin's (contracts/governance/); `vm.governance` runs their constructors
when block 0 is built. Addresses are fixed so the Timelock (the only account that may change
chain parameters or spend the treasury) is known before anything is deployed.
"""
import dataclasses

from eth_utils import to_canonical_address

GOPEN_ADDRESS = to_canonical_address("0x00000000000000000000000000000000004f4c20")
TIMELOCK_ADDRESS = to_canonical_address("0x00000000000000000000000000000000004f4c21")
GOVERNOR_ADDRESS = to_canonical_address("0x00000000000000000000000000000000004f4c22")


@dataclasses.dataclass(frozen=True)
class Governance:
    """The Governor's settings (delays in blocks: GOPEN's votes are checkpointed by block number)
    and the Timelock's delay in seconds. Defaults are the values OpenLedger publishes for its own
    governance (10,000 GOPEN to propose, a day's delay, a week's vote, 5% quorum, a week's
    timelock), in blocks of 1 s."""

    voting_delay_blocks: int = 86_400  # a day between proposal and vote
    voting_period_blocks: int = 604_800  # a week of voting
    proposal_threshold: int = 10_000 * 10**18  # GOPEN (wei) a proposer must hold or be delegated
    quorum_percent: int = 5  # of GOPEN supply at the proposal's snapshot
    timelock_delay_s: int = 7 * 24 * 3600  # between queue and execute

    def validate(self) -> None:
        """Raise ValueError naming a setting the Governor's constructor or a usable chain refuses."""
        if not 0 <= self.voting_delay_blocks < 2**48:
            raise ValueError(f"governance.votingDelayBlocks {self.voting_delay_blocks} out of range")
        if not 1 <= self.voting_period_blocks < 2**32:
            raise ValueError(f"governance.votingPeriodBlocks {self.voting_period_blocks} must be at least 1")
        if not 0 <= self.proposal_threshold < 2**256:
            raise ValueError(f"governance.proposalThreshold {self.proposal_threshold} out of range")
        if not 1 <= self.quorum_percent <= 100:
            raise ValueError(f"governance.quorumPercent {self.quorum_percent} must be 1..100")
        if not 0 <= self.timelock_delay_s < 2**64:
            raise ValueError(f"governance.timelockDelaySeconds {self.timelock_delay_s} out of range")


DEVNET_GOVERNANCE = Governance(voting_delay_blocks=1, voting_period_blocks=20, proposal_threshold=0,
                               quorum_percent=5, timelock_delay_s=10)
"""Short periods so a proposal passes in under a minute on a 1 s devnet."""

JSON_KEYS = {
    "votingDelayBlocks": "voting_delay_blocks",
    "votingPeriodBlocks": "voting_period_blocks",
    "proposalThreshold": "proposal_threshold",
    "quorumPercent": "quorum_percent",
    "timelockDelaySeconds": "timelock_delay_s",
}

GOVERNABLE_PARAMS = {
    "attestation_quorum": (1, 100),
    "job_timeout_s": (1, 7 * 24 * 3600),
    "dispute_window_s": (1, 30 * 24 * 3600),
    "min_validator_stake": (10**18, 10**7 * 10**18),
    "slash_ppm": (0, 1_000_000),
    "work_reward_ppm": (0, 1_000_000),
    "unbonding_period_s": (1, 90 * 24 * 3600),
    "evidence_slash_ppm": (0, 1_000_000),
    "evidence_max_age_blocks": (1, 10_000_000),
    "training_claim_s": (1, 7 * 24 * 3600),
    "training_run_s": (1, 30 * 24 * 3600),
    "training_verify_s": (1, 7 * 24 * 3600),
    "training_verify_segments": (1, 64),
    "training_verifier_ppm": (0, 1_000_000),
    "attribution_slash_ppm": (0, 1_000_000),
    "proof_timeout_s": (60, 30 * 24 * 3600),
}
"""Parameters (genesis.Economics names) the Timelock may set through the Economics module's
`setParam`, with the inclusive bounds the chain enforces. Left out on purpose: the fee split
(its four shares must sum to 1,000,000, so one cannot move alone), the reserve release and vesting
schedules (promises made at genesis) and everything derived from genesis (treasury, block time,
initial reserve): no proposal can touch the supply or its schedule. Also left out: the validator-set
delay (a shorter one would schedule a change before one already scheduled) and the set's size (the
signer bitmap's width); both are fixed at genesis."""
