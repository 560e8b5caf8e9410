"""The chain's genesis: parameters, OPEN supply and allocations, validator set, economics.

Our own JSON format (not go-ethereum's) because the chain carries data geth's format has no
place for: allocation groups that must add up to the fixed OPEN supply, the validator set, the
base-fee sink and the economics parameters native modules read. Only integers are stored.
"""
import dataclasses
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

from eth_utils import is_hex_address, to_canonical_address, to_checksum_address

from genesis.governance import JSON_KEYS as _GOVERNANCE_KEYS, TIMELOCK_ADDRESS, Governance

DECIMALS = 18
TOTAL_SUPPLY = 10**9 * 10**DECIMALS
"""1,000,000,000 OPEN in wei: minted once at genesis, never beyond."""

PPM = 1_000_000
ALLOCATION_SHARES_PPM: Mapping[str, int] = MappingProxyType({
    "reserve": 617_100,  # community & ecosystem reserve, released per block
    "investors": 182_900,
    "team": 150_000,
    "liquidity": 50_000,
})
"""Each group's share of TOTAL_SUPPLY in parts per million (61.71 / 18.29 / 15 / 5 %)."""

RESERVE_ADDRESS = to_canonical_address("0x00000000000000000000000000000000000e0000")
"""System account holding the ecosystem reserve (no key; only block hooks move its funds)."""
L2_BRIDGE_ADDRESS = to_canonical_address("0x00000000000000000000000000000000004f4c07")
"""The OPEN bridge's L2 native module; a genesis may fund it with the OPEN that lives on the L1
(docs/settlement.md), and its balance stays there (vm.modules.genesis_accounts)."""

FORBIDDEN_CHAIN_IDS = frozenset({1612, 161201})  # OpenLedger's own networks
BASE_FEE_SINKS = ("burn", "treasury")

ATTRIBUTION_METHODS: Mapping[int, str] = MappingProxyType({
    1: "graddot-v1", 2: "datainf-v1", 3: "span-v1", 4: "semantic-v1", 5: "ensemble-v1",
})
"""The registry of attribution method ids (`Attribution.postProof`'s methodId) and their names,
as `attribution.methods` registers them. A chain enables a subset with the `attribution_methods`
parameter (bit i set = method id i accepted); an id outside it is refused at the transaction."""
ALL_ATTRIBUTION_METHODS = sum(1 << i for i in ATTRIBUTION_METHODS)


class GenesisError(ValueError):
    """A genesis file or value that cannot start a chain; the message names the bad field."""


MAX_VALIDATORS = 256
"""At most this many validators sign a height: block N + 1's extraData (32 bytes at most) is the
bitmap of block N's signers, one bit per validator (docs/consensus.md)."""
MAX_TOTAL_VOTING_POWER = (2**63 - 1) // 8
"""CometBFT's cap on a set's total voting power (consensus.validators.MAX_TOTAL_VOTING_POWER)."""
STAKING_ADDRESS = to_canonical_address("0x00000000000000000000000000000000004f4c05")
"""The Staking module's account (vm.modules.system.STAKING): genesis stakes sit in its balance."""


@dataclasses.dataclass(frozen=True)
class Validator:
    """A genesis validator. With a `stake` (wei) it is registered in the Staking module at genesis
    with that self stake, and its voting power is the stake in whole OPEN; without one it is a
    member of a fixed set (a devnet's single sequencer) with the given power."""

    address: bytes
    power: int
    stake: int = 0
    commission_ppm: int = 0
    capabilities: int = 0


@dataclasses.dataclass(frozen=True)
class Economics:
    """Integer parameters the OPEN economics modules read (fee split in parts per million)."""

    fee_split_contributors_ppm: int = 500_000
    fee_split_model_owners_ppm: int = 200_000
    fee_split_validators_ppm: int = 200_000
    fee_split_treasury_ppm: int = 100_000
    reserve_release_months: int = 48
    vesting_cliff_months: int = 12
    vesting_linear_months: int = 36
    unbonding_period_s: int = 21 * 24 * 3600
    # native modules (vm/modules): inference quorum and windows, staking floor, slashing, work share
    attestation_quorum: int = 2
    job_timeout_s: int = 600
    dispute_window_s: int = 600
    min_validator_stake: int = 100 * 10**18
    slash_ppm: int = 100_000
    work_reward_ppm: int = 300_000
    attribution_methods: int = ALL_ATTRIBUTION_METHODS  # bit i: method id i (ATTRIBUTION_METHODS) accepted
    # consensus (vm/modules/staking.py): when stake changes reach the validator set, its size, evidence
    validator_set_delay_blocks: int = 2  # a change made in block H is in the set of height H + delay
    max_validators: int = 100  # the largest stakes sign; at most MAX_VALIDATORS
    evidence_slash_ppm: int = 50_000  # of the offender's self stake, for a duplicate vote
    evidence_max_age_blocks: int = 100_000  # evidence for an older height is refused
    # paid training jobs (vm/modules/training_jobs.py): windows, segments each verifier replays, verifiers' share
    training_claim_s: int = 600
    training_run_s: int = 3600
    training_verify_s: int = 600
    training_verify_segments: int = 2
    training_verifier_ppm: int = 100_000
    verify_sample_ppm: int = 1_000_000  # share of results the verification services re-check (disputed: all)
    # Proof of Attribution (vm/modules/attribution.py): a poster whose proof `attestation_quorum` validators
    # dispute loses this share of its self stake; a succeeded job with no proof open or paid this long after
    # it succeeded may be settled without one (0 turns either off: what a chain from before them reads)
    attribution_slash_ppm: int = 100_000
    proof_timeout_s: int = 3600

    def fee_split_ppm(self) -> tuple[int, int, int, int]:
        return (self.fee_split_contributors_ppm, self.fee_split_model_owners_ppm,
                self.fee_split_validators_ppm, self.fee_split_treasury_ppm)


@dataclasses.dataclass(frozen=True)
class Account:
    """One genesis account: OPEN balance in wei, optional code/storage/nonce, its group."""

    balance: int
    group: str = ""
    nonce: int = 0
    code: bytes = b""
    storage: Mapping[int, int] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Genesis:
    chain_id: int
    gas_limit: int
    base_fee: int
    block_time: float
    base_fee_sink: str
    treasury: bytes
    accounts: Mapping[bytes, Account]
    validators: tuple[Validator, ...]
    economics: Economics = Economics()
    governance: Governance | None = Governance()
    """GOPEN, Governor and Timelock predeployed with these settings; None for none."""
    timestamp: int = 0
    extra_data: bytes = b""
    fork: str = "prague"
    forks: tuple[tuple[int, str], ...] = ((0, "prague"),)
    """Fork schedule as (first block, py-evm fork name); our chains run Prague from block 0."""
    ethereum: Any = None
    """`genesis.geth.EthereumParams` when imported from a go-ethereum genesis (then the OPEN
    supply, validator and economics rules do not apply), else None."""

    def __post_init__(self) -> None:
        validate(self)

    def fork_at(self, number: int) -> str:
        """The py-evm fork that runs block `number`."""
        fork = self.forks[0][1]
        for start, name in self.forks:
            if start <= number:
                fork = name
        return fork

    @property
    def allocations(self) -> dict[bytes, int]:
        """address -> wei at genesis."""
        return {a: acct.balance for a, acct in self.accounts.items()}

    def group_total(self, group: str) -> int:
        return sum(a.balance for a in self.accounts.values() if a.group == group)


def _int(d: Mapping[str, Any], key: str, default: Any = None) -> int:
    value = d.get(key, default)
    if value is None:
        raise GenesisError(f"genesis: missing field {key!r}")
    if isinstance(value, str):
        try:
            value = int(value, 0)
        except ValueError:
            raise GenesisError(f"genesis: {key} {value!r} is not an integer") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise GenesisError(f"genesis: {key} {value!r} is not an integer")
    return value


def _address(value: Any, where: str) -> bytes:
    if not isinstance(value, str) or not is_hex_address(value):
        raise GenesisError(f"genesis: {where} {value!r} is not a 20-byte hex address")
    return to_canonical_address(value)


def _hexbytes(value: Any, where: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise GenesisError(f"genesis: {where} {value!r} is not 0x-prefixed hex")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise GenesisError(f"genesis: {where} {value!r} is not valid hex") from None


def validate(g: Genesis) -> None:
    """Reject a genesis no honest network would start from; each error names the bad value."""
    if g.chain_id <= 0 or g.chain_id >= 2**64:
        raise GenesisError(f"genesis: chainId {g.chain_id} out of range")
    if g.ethereum is not None:
        _validate_imported(g)
        return
    if g.chain_id in FORBIDDEN_CHAIN_IDS:
        raise GenesisError(f"genesis: chainId {g.chain_id} belongs to OpenLedger's own networks")
    if g.fork != "prague":
        raise GenesisError(f"genesis: fork {g.fork!r} unsupported (only 'prague')")
    if not 5000 <= g.gas_limit < 2**63:
        raise GenesisError(f"genesis: gasLimit {g.gas_limit} out of range")
    if not 0 < g.base_fee < 2**256:
        raise GenesisError(f"genesis: baseFeePerGas {g.base_fee} must be positive")
    if not 0 <= g.block_time <= 3600:
        raise GenesisError(f"genesis: blockTime {g.block_time} out of range [0, 3600]")
    if g.base_fee_sink not in BASE_FEE_SINKS:
        raise GenesisError(f"genesis: baseFeeSink {g.base_fee_sink!r} must be 'burn' or 'treasury'")
    if len(g.treasury) != 20:
        raise GenesisError("genesis: treasury must be a 20-byte address")
    if not g.validators:
        raise GenesisError("genesis: validators must not be empty")
    _validate_validators(g)
    for addr, acct in g.accounts.items():
        if len(addr) != 20:
            raise GenesisError(f"genesis: allocation address {addr.hex()} is not 20 bytes")
        if acct.balance < 0:
            raise GenesisError(f"genesis: balance of {to_checksum_address(addr)} is negative")
        if acct.group and acct.group not in ALLOCATION_SHARES_PPM:
            raise GenesisError(f"genesis: allocation group {acct.group!r} of {to_checksum_address(addr)} unknown "
                               f"(known: {', '.join(ALLOCATION_SHARES_PPM)})")
    total = sum(a.balance for a in g.accounts.values())
    if total != TOTAL_SUPPLY:
        raise GenesisError(f"genesis: allocations sum to {total} wei, must equal the OPEN supply {TOTAL_SUPPLY}")
    for group, ppm in ALLOCATION_SHARES_PPM.items():
        want = TOTAL_SUPPLY * ppm // PPM
        if g.group_total(group) != want:
            raise GenesisError(f"genesis: group {group!r} holds {g.group_total(group)} wei, must hold {want}")
    if g.accounts.get(RESERVE_ADDRESS, Account(0)).group != "reserve" or \
            g.accounts[RESERVE_ADDRESS].balance != TOTAL_SUPPLY * ALLOCATION_SHARES_PPM["reserve"] // PPM:
        raise GenesisError(f"genesis: the whole reserve must sit at {to_checksum_address(RESERVE_ADDRESS)}")
    if sum(g.economics.fee_split_ppm()) != PPM:
        raise GenesisError(f"genesis: economics fee split {g.economics.fee_split_ppm()} must sum to {PPM}")
    if g.economics.attestation_quorum < 1 or max(g.economics.slash_ppm, g.economics.work_reward_ppm,
                                                   g.economics.verify_sample_ppm,
                                                   g.economics.attribution_slash_ppm) > PPM:
        raise GenesisError("genesis: economics.attestationQuorum must be >= 1 and slashPpm, workRewardPpm, "
                           "verifySamplePpm, attributionSlashPpm <= 1000000")
    if g.economics.training_verify_segments < 1 or g.economics.training_verifier_ppm > PPM:
        raise GenesisError("genesis: economics.trainingVerifySegments must be >= 1 and trainingVerifierPpm <= 1000000")
    for f in dataclasses.fields(Economics):
        if getattr(g.economics, f.name) < 0:
            raise GenesisError(f"genesis: economics.{f.name} must not be negative")
    unknown_methods = [i for i in range(g.economics.attribution_methods.bit_length())
                       if g.economics.attribution_methods >> i & 1 and i not in ATTRIBUTION_METHODS]
    if unknown_methods:
        raise GenesisError(f"genesis: economics.attributionMethods enables unknown method id(s) {unknown_methods} "
                           f"(registry: {method_names()})")
    consensus = g.economics
    if not 1 <= consensus.validator_set_delay_blocks < 2**32:
        raise GenesisError(f"genesis: economics.validatorSetDelayBlocks {consensus.validator_set_delay_blocks} "
                           f"must be at least 1")
    if not 1 <= consensus.max_validators <= MAX_VALIDATORS:
        raise GenesisError(f"genesis: economics.maxValidators {consensus.max_validators} must be 1..{MAX_VALIDATORS}")
    if consensus.evidence_slash_ppm > PPM or consensus.evidence_max_age_blocks < 1:
        raise GenesisError("genesis: economics.evidenceSlashPpm must be <= 1000000 and evidenceMaxAgeBlocks >= 1")
    if len(g.extra_data) > 32:
        raise GenesisError("genesis: extraData longer than 32 bytes")
    if g.governance is not None:
        try:
            g.governance.validate()
        except ValueError as e:
            raise GenesisError(f"genesis: {e}") from None
        if g.treasury != TIMELOCK_ADDRESS:
            raise GenesisError(f"genesis: treasury {to_checksum_address(g.treasury)} must be the governance Timelock "
                               f"{to_checksum_address(TIMELOCK_ADDRESS)}, which alone spends it "
                               f"(or set governance to null)")


def _validate_validators(g: Genesis) -> None:
    """Genesis validators are all staked (the set follows the Staking module from block 1) or
    none is (a fixed set); the stakes sit in the Staking account's balance, so the supply adds up."""
    seen: set[bytes] = set()
    for v in g.validators:
        name = to_checksum_address(v.address) if len(v.address) == 20 else v.address.hex()
        if len(v.address) != 20 or v.address in seen:
            raise GenesisError(f"genesis: validator {name} is not a 20-byte address or appears twice")
        seen.add(v.address)
        if v.power <= 0:
            raise GenesisError(f"genesis: validator {name} power {v.power} must be positive")
        if v.stake:
            if v.stake < g.economics.min_validator_stake:
                raise GenesisError(f"genesis: validator {name} stake {v.stake} below economics.minValidatorStake "
                                   f"{g.economics.min_validator_stake}")
            if v.power != v.stake // 10**DECIMALS:
                raise GenesisError(f"genesis: validator {name} power {v.power} must be its stake in whole OPEN "
                                   f"({v.stake // 10**DECIMALS})")
            if not 0 <= v.commission_ppm <= PPM or not 0 <= v.capabilities <= 3:
                raise GenesisError(f"genesis: validator {name} commissionPpm must be 0..{PPM} and capabilities 0..3")
    staked = [v for v in g.validators if v.stake]
    if staked and len(staked) != len(g.validators):
        raise GenesisError("genesis: either every validator has a stake or none has")
    limit = g.economics.max_validators if staked else MAX_VALIDATORS
    if len(g.validators) > limit:
        raise GenesisError(f"genesis: {len(g.validators)} validators, more than the {limit} that may sign")
    if sum(v.power for v in g.validators) > MAX_TOTAL_VOTING_POWER:
        raise GenesisError(f"genesis: validators' total power exceeds {MAX_TOTAL_VOTING_POWER}")
    held = g.accounts.get(STAKING_ADDRESS, Account(0)).balance
    if held != sum(v.stake for v in staked):
        raise GenesisError(f"genesis: the Staking account {to_checksum_address(STAKING_ADDRESS)} holds {held} wei, "
                           f"must hold exactly the validators' stakes ({sum(v.stake for v in staked)})")


def method_names(mask: int | None = None) -> str:
    """`1 graddot-v1, 2 datainf-v1, ...`: the registry (or the ids `mask` enables), for error messages."""
    return ", ".join(f"{i} {name}" for i, name in ATTRIBUTION_METHODS.items() if mask is None or mask >> i & 1)


def _validate_imported(g: Genesis) -> None:
    """An imported Ethereum chain keeps its own supply and has no validator set of ours."""
    if not 5000 <= g.gas_limit < 2**63:
        raise GenesisError(f"genesis: gasLimit {g.gas_limit} out of range")
    if not g.forks or g.forks[0][0] != 0 or any(a[0] >= b[0] for a, b in zip(g.forks, g.forks[1:])):
        raise GenesisError(f"genesis: fork schedule {g.forks} must start at block 0 and increase")
    for addr, acct in g.accounts.items():
        if len(addr) != 20 or acct.balance < 0:
            raise GenesisError(f"genesis: bad allocation for {addr.hex()}")


_ECONOMICS_KEYS = {
    "feeSplitContributorsPpm": "fee_split_contributors_ppm",
    "feeSplitModelOwnersPpm": "fee_split_model_owners_ppm",
    "feeSplitValidatorsPpm": "fee_split_validators_ppm",
    "feeSplitTreasuryPpm": "fee_split_treasury_ppm",
    "reserveReleaseMonths": "reserve_release_months",
    "vestingCliffMonths": "vesting_cliff_months",
    "vestingLinearMonths": "vesting_linear_months",
    "unbondingPeriodSeconds": "unbonding_period_s",
    "attestationQuorum": "attestation_quorum",
    "jobTimeoutSeconds": "job_timeout_s",
    "disputeWindowSeconds": "dispute_window_s",
    "minValidatorStake": "min_validator_stake",
    "slashPpm": "slash_ppm",
    "workRewardPpm": "work_reward_ppm",
    "attributionMethods": "attribution_methods",
    "validatorSetDelayBlocks": "validator_set_delay_blocks",
    "maxValidators": "max_validators",
    "evidenceSlashPpm": "evidence_slash_ppm",
    "evidenceMaxAgeBlocks": "evidence_max_age_blocks",
    "trainingClaimSeconds": "training_claim_s",
    "trainingRunSeconds": "training_run_s",
    "trainingVerifySeconds": "training_verify_s",
    "trainingVerifySegments": "training_verify_segments",
    "trainingVerifierPpm": "training_verifier_ppm",
    "verifySamplePpm": "verify_sample_ppm",
    "attributionSlashPpm": "attribution_slash_ppm",
    "proofTimeoutSeconds": "proof_timeout_s",
}


def _validator_dict(v: Validator) -> dict[str, Any]:
    d: dict[str, Any] = {"address": to_checksum_address(v.address), "power": v.power}
    if v.stake:
        d.update(stake=hex(v.stake), commissionPpm=v.commission_ppm, capabilities=v.capabilities)
    return d


def to_dict(g: Genesis) -> dict[str, Any]:
    def account(a: Account) -> dict[str, Any]:
        d: dict[str, Any] = {"balance": hex(a.balance)}
        if a.group:
            d["group"] = a.group
        if a.nonce:
            d["nonce"] = hex(a.nonce)
        if a.code:
            d["code"] = "0x" + a.code.hex()
        if a.storage:
            d["storage"] = {hex(k): hex(v) for k, v in a.storage.items()}
        return d

    return {
        "chainId": g.chain_id,
        "fork": g.fork,
        "gasLimit": hex(g.gas_limit),
        "baseFeePerGas": hex(g.base_fee),
        "blockTime": g.block_time,
        "baseFeeSink": g.base_fee_sink,
        "treasury": to_checksum_address(g.treasury),
        "timestamp": hex(g.timestamp),
        "extraData": "0x" + g.extra_data.hex(),
        "validators": [_validator_dict(v) for v in g.validators],
        "economics": {k: getattr(g.economics, f) for k, f in _ECONOMICS_KEYS.items()},
        "governance": None if g.governance is None else
        {k: getattr(g.governance, f) for k, f in _GOVERNANCE_KEYS.items()},
        "alloc": {to_checksum_address(a): account(acct) for a, acct in g.accounts.items()},
    }


def from_dict(d: Any) -> Genesis:
    """Parse our JSON genesis format (see docs/genesis.md); errors name the bad field."""
    if not isinstance(d, dict):
        raise GenesisError("genesis: top level must be a JSON object")
    alloc = d.get("alloc")
    if not isinstance(alloc, dict):
        raise GenesisError("genesis: missing object 'alloc'")
    accounts = {}
    for key, a in alloc.items():
        addr = _address(key, "alloc address")
        if addr in accounts:
            raise GenesisError(f"genesis: alloc address {key} appears twice")
        if not isinstance(a, dict):
            raise GenesisError(f"genesis: alloc[{key}] must be an object")
        storage = a.get("storage", {})
        if not isinstance(storage, dict):
            raise GenesisError(f"genesis: alloc[{key}].storage must be an object")
        accounts[addr] = Account(
            balance=_int(a, "balance"),
            group=str(a.get("group", "")),
            nonce=_int(a, "nonce", 0),
            code=_hexbytes(a.get("code", "0x"), f"alloc[{key}].code"),
            storage={_int({"slot": k}, "slot"): _int(storage, k) for k in storage},
        )
    vals = d.get("validators")
    if not isinstance(vals, list):
        raise GenesisError("genesis: missing list 'validators'")
    validators = []
    for i, v in enumerate(vals):
        if not isinstance(v, dict):
            raise GenesisError(f"genesis: validators[{i}] must be an object")
        where = f"validators[{i}]"
        try:
            stake = _int(v, "stake", 0)
            validators.append(Validator(_address(v.get("address"), f"{where}.address"),
                                        _int(v, "power", stake // 10**DECIMALS if stake else 1), stake,
                                        _int(v, "commissionPpm", 0), _int(v, "capabilities", 0)))
        except GenesisError as e:
            raise GenesisError(f"genesis: {where}: {str(e).removeprefix('genesis: ')}") from None
    econ = d.get("economics", {})
    if not isinstance(econ, dict):
        raise GenesisError("genesis: economics must be an object")
    unknown = set(econ) - set(_ECONOMICS_KEYS)
    if unknown:
        raise GenesisError(f"genesis: unknown economics field(s) {sorted(unknown)}")
    gov = d.get("governance", {})
    if gov is not None and not isinstance(gov, dict):
        raise GenesisError("genesis: governance must be an object or null")
    if gov and set(gov) - set(_GOVERNANCE_KEYS):
        raise GenesisError(f"genesis: unknown governance field(s) {sorted(set(gov) - set(_GOVERNANCE_KEYS))}")
    block_time = d.get("blockTime", 1)
    if isinstance(block_time, bool) or not isinstance(block_time, (int, float)):
        raise GenesisError(f"genesis: blockTime {block_time!r} is not a number")
    return Genesis(
        chain_id=_int(d, "chainId"),
        fork=str(d.get("fork", "prague")),
        gas_limit=_int(d, "gasLimit"),
        base_fee=_int(d, "baseFeePerGas"),
        block_time=block_time,
        base_fee_sink=d.get("baseFeeSink", "burn"),
        treasury=_address(d.get("treasury"), "treasury"),
        timestamp=_int(d, "timestamp", 0),
        extra_data=_hexbytes(d.get("extraData", "0x"), "extraData"),
        validators=tuple(validators),
        economics=Economics(**{f: _int(econ, k) for k, f in _ECONOMICS_KEYS.items() if k in econ}),
        governance=None if gov is None else
        Governance(**{f: _int(gov, k) for k, f in _GOVERNANCE_KEYS.items() if k in gov}),
        accounts=accounts,
    )


# Genesis fields other than economics that `--param` may set (name -> parser of the text value).
_GENESIS_PARAMS = ("chain_id", "gas_limit", "base_fee", "base_fee_sink")


def param_names() -> list[str]:
    """Every name `with_params` accepts: the economics fields, the governance settings, then the
    chain's own scalars."""
    return ([f.name for f in dataclasses.fields(Economics)] + [f.name for f in dataclasses.fields(Governance)]
            + list(_GENESIS_PARAMS))


def _param_value(name: str, text: str) -> int | str:
    if name == "base_fee_sink":
        return text
    t = text.strip().replace("_", "")
    try:
        if t.upper().endswith("OPEN"):  # amounts such as min_validator_stake=10OPEN
            try:
                value = Decimal(t[:-4]) * 10**DECIMALS
            except InvalidOperation:
                raise ValueError from None
            if value != value.to_integral_value():
                raise ValueError
            return int(value)
        return int(t, 0)
    except ValueError:
        raise GenesisError(f"--param {name}={text!r}: not an integer") from None


def with_params(g: Genesis, overrides: Mapping[str, str]) -> Genesis:
    """`g` with parameters replaced by name (`dispute_window_s`, or its JSON name `disputeWindowSeconds`),
    values as text (`10`, `0x10`, `100OPEN`); the result is validated like any genesis, so every
    error names the bad key or value."""
    json_names = {**_ECONOMICS_KEYS, **_GOVERNANCE_KEYS, "chainId": "chain_id", "gasLimit": "gas_limit",
                  "baseFeePerGas": "base_fee", "baseFeeSink": "base_fee_sink"}
    governance_names = set(_GOVERNANCE_KEYS.values())
    economics: dict[str, int] = {}
    governance: dict[str, int] = {}
    chain: dict[str, int | str] = {}
    for key, text in overrides.items():
        name = json_names.get(key, key)
        if name not in param_names():
            raise GenesisError(f"--param {key}: unknown parameter; known: {', '.join(param_names())}")
        value = _param_value(name, text)
        (chain if name in _GENESIS_PARAMS else governance if name in governance_names else economics)[name] = value
    if governance and g.governance is None:
        raise GenesisError(f"--param {', '.join(governance)}: this genesis has no governance")
    if governance:
        chain["governance"] = dataclasses.replace(g.governance, **governance)
    try:
        return dataclasses.replace(g, economics=dataclasses.replace(g.economics, **economics), **chain)
    except GenesisError as e:
        raise GenesisError(f"--param {', '.join(f'{k}={v}' for k, v in overrides.items())}: "
                           f"{str(e).removeprefix('genesis: ')}") from None
