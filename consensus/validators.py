"""The validator set of a height: voting power, quorums, and CometBFT's proposer rotation.

Proposer selection is CometBFT's weighted round robin (types/validator_set.go at 5bba72c,
`IncrementProposerPriority` and `UpdateWithChangeSet`), reproduced rule for rule with its int64
arithmetic, so the same set gives the same proposer sequence as CometBFT:

    each run:  rescale priorities so that max - min <= 2 * total power (divide, truncating)
               centre them: subtract the average (floor division)
               then `times` times: every priority += its power (clipped to int64);
                                   the highest priority (ties: the lower address) proposes
                                   and loses the total power
    new validator: priority -(P + P >> 3), about -1.125 P, P = the total after the change

The proposer of (height, round) is the height's set advanced `round` more times (CometBFT's
`CopyIncrementProposerPriority(round)`); the next height's set is this one with its changes
applied and advanced once, whatever round decided (`next_height`).

A set is immutable: every step returns a new one.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator

import rlp

from consensus.errors import InvalidValidatorSet
from consensus.messages import keccak

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
MAX_TOTAL_VOTING_POWER = INT64_MAX // 8
"""CometBFT's cap, small enough that no priority computation clips (stake must be scaled into it)."""
PRIORITY_WINDOW_SIZE_FACTOR = 2


@dataclasses.dataclass(frozen=True, slots=True)
class Validator:
    address: bytes
    power: int


def _clip(value: int) -> int:
    """Go's safeAddClip / safeSubClip: saturate at the int64 bounds."""
    return INT64_MAX if value > INT64_MAX else INT64_MIN if value < INT64_MIN else value


def _go_div(a: int, b: int) -> int:
    """Go's integer division: truncates toward zero (Python's // floors)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _by_power(v: Validator) -> tuple[int, bytes]:
    """CometBFT's ValidatorsByVotingPower: power descending, then address ascending."""
    return (-v.power, v.address)


class ValidatorSet:
    """Validators in CometBFT's order (power descending, then address), their proposer
    priorities, and the current proposer."""

    __slots__ = ("validators", "priorities", "total_power", "_index", "_proposer", "_round_cache")

    def __init__(self, validators: Iterable[Validator]) -> None:
        """CometBFT's NewValidatorSet: add every validator to an empty set (positive powers,
        unique addresses, total within MAX_TOTAL_VOTING_POWER), then advance once."""
        vals = list(validators)
        if not vals:
            raise InvalidValidatorSet("a validator set needs at least one validator")
        if any(v.power == 0 for v in vals):
            raise InvalidValidatorSet("a new validator set cannot hold a validator with power 0")
        built = _EMPTY._apply_changes(vals)
        advanced = built.increment(1)
        self._set(advanced.validators, advanced.priorities, advanced._proposer)

    def _set(self, validators: tuple[Validator, ...], priorities: tuple[int, ...], proposer: int | None) -> None:
        self.validators = validators
        self.priorities = priorities
        self.total_power = sum(v.power for v in validators)
        self._index = {v.address: i for i, v in enumerate(validators)}
        self._proposer = proposer if proposer is not None or not validators else self._most_priority(priorities)
        self._round_cache: dict[int, Validator] = {}

    @classmethod
    def _of(cls, validators: tuple[Validator, ...], priorities: tuple[int, ...],
            proposer: int | None = None) -> ValidatorSet:
        vs = object.__new__(cls)
        vs._set(validators, priorities, proposer)
        return vs

    @classmethod
    def with_priorities(cls, entries: Iterable[tuple[Validator, int]], proposer: bytes | None = None) -> ValidatorSet:
        """A set as stored: validators, their priorities and the current proposer exactly as
        given (CometBFT's ValidatorSetFromProto). Without `proposer`, the highest priority
        (ValidatorSetFromExistingValidators), which is not who proposed last: store it."""
        pairs = sorted(entries, key=lambda e: _by_power(e[0]))
        _check_members([v for v, _ in pairs], allow_zero=False)
        if not pairs:
            raise InvalidValidatorSet("a validator set needs at least one validator")
        validators = tuple(v for v, _ in pairs)
        index = None
        if proposer is not None:
            index = next((i for i, v in enumerate(validators) if v.address == proposer), None)
            if index is None:
                raise InvalidValidatorSet("the stored proposer is not in the set")
        return cls._of(validators, tuple(_clip(p) for _, p in pairs), index)

    # --- reading ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.validators)

    def __iter__(self) -> Iterator[Validator]:
        return iter(self.validators)

    def __contains__(self, address: object) -> bool:
        return address in self._index

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, ValidatorSet) and self.validators == other.validators
                and self.priorities == other.priorities and self._proposer == other._proposer)

    def __hash__(self) -> int:
        return hash((self.validators, self.priorities))

    def __repr__(self) -> str:
        body = ", ".join(f"{v.address.hex()[:8]}:{v.power}/{p}" for v, p in zip(self.validators, self.priorities))
        return f"ValidatorSet({body}; proposer {self.proposer.address.hex()[:8]})"

    def power_of(self, address: bytes) -> int:
        """Voting power of `address`; 0 if it is not a validator."""
        i = self._index.get(address)
        return 0 if i is None else self.validators[i].power

    def index_of(self, address: bytes) -> int | None:
        return self._index.get(address)

    def priority_of(self, address: bytes) -> int:
        return self.priorities[self._index[address]]

    @property
    def proposer(self) -> Validator:
        return self.validators[self._proposer]

    def proposer_for_round(self, round: int) -> Validator:
        """The proposer of `round` at this set's height: the set advanced `round` more times."""
        if round == 0:
            return self.proposer
        found = self._round_cache.get(round)
        if found is None:
            found = self._round_cache[round] = self.increment(round).proposer
        return found

    # --- quorums (all integer: power * 3 against total * 2 or total) -----------------------

    def has_two_thirds(self, power: int) -> bool:
        """More than 2/3 of the voting power: a quorum (the paper's 2f + 1)."""
        return power * 3 > self.total_power * 2

    def has_one_third(self, power: int) -> bool:
        """More than 1/3 of the voting power: at least one honest validator (the paper's f + 1)."""
        return power * 3 > self.total_power

    def hash(self) -> bytes:
        """keccak256(RLP [[address, power], ...]) in set order: names the membership and powers
        (not the priorities, which every node derives)."""
        return keccak(rlp.encode([[v.address, v.power] for v in self.validators]))

    # --- proposer rotation (CometBFT's IncrementProposerPriority) ---------------------------

    def increment(self, times: int = 1) -> ValidatorSet:
        """CometBFT's IncrementProposerPriority(times) on a copy."""
        if times <= 0:
            raise ValueError("times must be positive")
        total = self.total_power
        prios = _rescale(list(self.priorities), PRIORITY_WINDOW_SIZE_FACTOR * total)
        prios = _shift_by_average(prios)
        proposer = None
        for _ in range(times):
            prios = [_clip(p + v.power) for p, v in zip(prios, self.validators)]
            proposer = self._most_priority(prios)
            prios[proposer] = _clip(prios[proposer] - total)
        return ValidatorSet._of(self.validators, tuple(prios), proposer)

    def _most_priority(self, prios: list[int] | tuple[int, ...]) -> int:
        """Index of the highest priority; on a tie the lower address (CompareProposerPriority)."""
        best = 0
        for i in range(1, len(prios)):
            if prios[i] > prios[best] or (prios[i] == prios[best]
                                          and self.validators[i].address < self.validators[best].address):
                best = i
        return best

    # --- set changes (CometBFT's UpdateWithChangeSet) ---------------------------------------

    def update(self, changes: Iterable[Validator]) -> ValidatorSet:
        """Apply changes: a validator with power 0 leaves, a new address joins with priority
        -1.125 * total, a known one keeps its priority under its new power; then priorities are
        rescaled and centred. Errors leave this set as it was (it is immutable anyway)."""
        return self._apply_changes(list(changes), allow_removals=True)

    def next_height(self, changes: Iterable[Validator] = ()) -> ValidatorSet:
        """The set of the next height: changes applied, then advanced once (CometBFT's
        state.Update), whatever round decided this height."""
        changes = list(changes)
        return (self.update(changes) if changes else self).increment(1)

    def _apply_changes(self, changes: list[Validator], allow_removals: bool = False) -> ValidatorSet:
        if not changes:
            return self
        _check_members(changes, allow_zero=True)
        removals = sorted((c for c in changes if c.power == 0), key=lambda v: v.address)
        updates = sorted((c for c in changes if c.power > 0), key=lambda v: v.address)
        if removals and not allow_removals:
            raise InvalidValidatorSet("a new validator set cannot hold a validator with power 0")
        new_count = sum(1 for u in updates if u.address not in self._index)
        if new_count == 0 and len(self.validators) == len(removals):
            raise InvalidValidatorSet("the changes would leave the validator set empty")
        removed_power = 0
        for r in removals:
            if r.address not in self._index:
                raise InvalidValidatorSet(f"cannot remove {r.address.hex()}: not in the validator set")
            removed_power += self.power_of(r.address)
        # verifyUpdates: the total after removals and updates, applied smallest delta first, stays capped
        deltas = sorted(u.power - self.power_of(u.address) for u in updates)
        running = self.total_power - removed_power
        for delta in deltas:
            running += delta
            if running > MAX_TOTAL_VOTING_POWER:
                raise InvalidValidatorSet(f"total voting power would exceed {MAX_TOTAL_VOTING_POWER}")
        total_before_removals = running + removed_power
        # computeNewPriorities, applyUpdates, applyRemovals
        merged = {v.address: (v, p) for v, p in zip(self.validators, self.priorities)}
        for u in updates:
            old = merged.get(u.address)
            merged[u.address] = (u, old[1] if old else -(total_before_removals + (total_before_removals >> 3)))
        for r in removals:
            del merged[r.address]
        by_address = sorted(merged.values(), key=lambda e: e[0].address)
        vals = [v for v, _ in by_address]
        total = sum(v.power for v in vals)
        if total > MAX_TOTAL_VOTING_POWER:
            raise InvalidValidatorSet(f"total voting power {total} exceeds {MAX_TOTAL_VOTING_POWER}")
        prios = _shift_by_average(_rescale([p for _, p in by_address], PRIORITY_WINDOW_SIZE_FACTOR * total))
        order = sorted(range(len(vals)), key=lambda i: _by_power(vals[i]))
        return ValidatorSet._of(tuple(vals[i] for i in order), tuple(prios[i] for i in order))


def _check_members(vals: list[Validator], allow_zero: bool) -> None:
    seen: set[bytes] = set()
    for v in vals:
        if not isinstance(v.address, bytes) or not v.address:
            raise InvalidValidatorSet("a validator address must be non-empty bytes")
        if v.address in seen:
            raise InvalidValidatorSet(f"duplicate validator {v.address.hex()}")
        seen.add(v.address)
        if type(v.power) is not int or v.power < 0 or (v.power == 0 and not allow_zero):
            raise InvalidValidatorSet(f"validator {v.address.hex()} power {v.power!r} must be a positive integer")
        if v.power > MAX_TOTAL_VOTING_POWER:
            raise InvalidValidatorSet(f"validator {v.address.hex()} power {v.power} exceeds {MAX_TOTAL_VOTING_POWER}")


def _rescale(prios: list[int], diff_max: int) -> list[int]:
    """RescalePriorities: divide (truncating, as Go does) until max - min <= diff_max."""
    if diff_max <= 0 or not prios:
        return prios
    diff = max(prios) - min(prios)
    if diff > diff_max:
        ratio = (diff + diff_max - 1) // diff_max
        return [_go_div(p, ratio) for p in prios]
    return prios


def _shift_by_average(prios: list[int]) -> list[int]:
    """shiftByAvgProposerPriority: subtract the average (big.Int Div: floor for a positive divisor)."""
    if not prios:
        return prios
    avg = sum(prios) // len(prios)
    return [_clip(p - avg) for p in prios]


_EMPTY = ValidatorSet._of((), ())
