"""Staking: the validator set (self stake, delegations, commission, capabilities), unbonding and
slashing. Stakes are native OPEN held in the Staking account's balance.

Storage (slots in the Staking account):
  0  validatorCount            1  validatorList[index] -> address
  2  validators[address] -> struct at s: s+0 selfStake; s+1 delegatedStake;
     s+2 commissionPpm | capabilities << 32 | registered << 40; s+3 slashed;
     s+4 rewardPerDelegatedWei (scaled by REWARD_SCALE)
  3  delegations[delegator][validator] -> amount
  4  unbonding[account] -> struct at u: u+0 amount; u+1 releaseTime
  5  totalStake
  6  rewardDebt[delegator][validator] -> amount * rewardPerDelegatedWei at the last settlement
  7  setCount                  8  sets[index] -> struct at t: t+0 effectiveHeight | size << 64;
                                  t+1+j member j: address | votingPower << 160 (canonical order)
  9  setChanged: 1 while the current block has changed stake (the block hook derives the set again
     at its end and clears it, so every block's first change costs the same as estimated)
  10 evidence[evidenceHash] -> block number it was submitted in
  11 setFollowsStake: 1 when genesis staked its validators (else the genesis set is fixed)
  The meta word s+2 also holds jailedAt (bits 48-111): the block a validator was jailed in.

Rules: a validator is active while it is not jailed and its self stake is at least
`min_validator_stake`. A validator's own `delegate`/`undelegate` moves its self stake. Undelegated
OPEN unbonds for `unbonding_period_s` (one entry per account: amounts add up, the release time
moves to the latest). Slashing takes a share of the self stake and pays it to the treasury.

The consensus set (docs/consensus.md, "Validator set from stake"): the active validators with
voting power = total stake in whole OPEN, at least 1, in CometBFT's order (power descending, then
address), the largest `max_validators`. Every change of stake raises `setChanged`; at the end
of that block a block hook derives the set again and, if it differs from the last one
scheduled, schedules it for height block + `validator_set_delay_blocks` (CometBFT's H + 2). The
schedule keeps every set with the height it starts at, so the set of any past height (the signers
a block header names, evidence) is read from state. An empty set is never scheduled: the last
one stays. A genesis with staked validators starts the schedule with them at height 1; any other
genesis (a devnet's single sequencer) fixes its validators as the set for good.

Evidence (`submitEvidence`): the RLP of `consensus.evidence.DuplicateVoteEvidence`, checked with
consensus' own `verify_evidence` against the set of its height, slashes `evidence_slash_ppm` of
the offender's self stake to the treasury and jails it for good (it leaves the set at the
scheduled height, earns nothing, and can still undelegate and withdraw what is left).

Rewards: of a validator's block reward, its commission and its self stake's pro-rata share go to
the validator; the delegated share is pooled in this account and accrues to delegators through
a reward-per-delegated-wei accumulator (settled on every delegate, undelegate and claimRewards).
Rounding dust of the accumulator stays in this account.
"""
from collections.abc import Iterable, Sequence

from eth_utils import ValidationError, to_canonical_address, to_checksum_address

from consensus.errors import ConsensusError
from consensus.evidence import DuplicateVoteEvidence, verify_evidence
from vm.modules.abi import Call, NativeModule
from vm.modules.storage import Store, pack, require, revert, slot_of, unpack
from vm.modules.system import ECONOMICS, OPEN, PPM, STAKING, credit_reward, read_param

COUNT, LIST, VALIDATORS, DELEGATIONS, UNBONDING, TOTAL, DEBT, SET_COUNT, SETS, SET_CHANGED, EVIDENCE, \
    SET_FOLLOWS_STAKE = range(12)
REWARD_SCALE = 10**27
CAP_GPU_INFERENCE = 1
"""Capability bit: serves OpenLoRA inference (may submit results)."""
CAPABILITY_MASK = 0b11
META_WIDTHS = (32, 8, 8, 64)  # commissionPpm, capabilities, registered, jailedAt
MAX_EVIDENCE_BYTES = 1024
"""Two signed votes take about 230 bytes of RLP; anything much longer is not evidence."""
ECRECOVER_GAS = 3000
"""Charged per signature `submitEvidence` recovers, as the ecrecover precompile is."""


def validator_slot(address: bytes) -> int:
    return slot_of(VALIDATORS, address)


def validator_info(st: Store, address: bytes) -> tuple[int, int, int, int, bool]:
    """(selfStake, delegatedStake, commissionPpm, capabilities, registered)."""
    s = validator_slot(address)
    commission, caps, registered, _ = unpack(st.read(s + 2), META_WIDTHS)
    return st.read(s), st.read(s + 1), commission, caps, bool(registered)


def jailed_at(st: Store, address: bytes) -> int:
    """The block `address` was jailed in (evidence of a duplicate vote); 0 if it never was."""
    return unpack(st.read(validator_slot(address) + 2), META_WIDTHS)[3]


def is_active(st: Store, econ: Store, address: bytes, capability: int = 0) -> bool:
    """A registered validator, not jailed, with enough self stake (and the given capability bits)."""
    s = validator_slot(address)
    _, caps, registered, jailed = unpack(st.read(s + 2), META_WIDTHS)
    return (bool(registered) and not jailed and st.read(s) >= read_param(econ, "min_validator_stake")
            and caps & capability == capability)


def active_validators(st: Store, econ: Store) -> list[tuple[bytes, int]]:
    """(address, total stake) of every active validator, in registration order."""
    out = []
    for i in range(st.read(COUNT)):
        addr = st.read(slot_of(LIST, i)).to_bytes(20, "big")
        if is_active(st, econ, addr):
            self_stake, delegated, *_ = validator_info(st, addr)
            out.append((addr, self_stake + delegated))
    return out


def reward_weight(st: Store, econ: Store, address: bytes) -> int:
    """What a validator's share of a block reward is pro rata to: its total stake while active."""
    if not is_active(st, econ, address):
        return 0
    self_stake, delegated, *_ = validator_info(st, address)
    return self_stake + delegated


# --- the consensus set: derived from stake, scheduled, read by height ------------------------

def stake_set(st: Store, econ: Store) -> list[tuple[bytes, int]]:
    """The set today's stakes call for: (address, voting power) of the active validators with at
    least 1 OPEN of total stake, power = whole OPEN (a total far below CometBFT's cap: the supply
    is 10^9 OPEN), in CometBFT's order, the largest `max_validators` of them."""
    members = [(addr, stake // OPEN) for addr, stake in active_validators(st, econ) if stake >= OPEN]
    members.sort(key=lambda m: (-m[1], m[0]))
    return members[:read_param(econ, "max_validators")]


def _set_head(st: Store, index: int) -> tuple[int, int]:
    """(effective height, size) of scheduled set `index`."""
    effective, size = unpack(st.read(slot_of(SETS, index)), (64, 16))
    return effective, size


def _set_members(st: Store, index: int) -> list[tuple[bytes, int]]:
    t = slot_of(SETS, index)
    _, size = _set_head(st, index)
    out = []
    for j in range(size):
        address, power = unpack(st.read(t + 1 + j), (160, 96))
        out.append((address.to_bytes(20, "big"), power))
    return out


def scheduled_set(st: Store, height: int) -> list[tuple[bytes, int]]:
    """The set that signs `height`: the last set scheduled to start at or before it (binary search
    over the schedule); [] before the first (height 0, or a chain whose genesis wrote none)."""
    low, high = 0, st.read(SET_COUNT)  # find the first index whose effective height is above `height`
    while low < high:
        mid = (low + high) // 2
        if _set_head(st, mid)[0] <= height:
            low = mid + 1
        else:
            high = mid
    return _set_members(st, low - 1) if low else []


class _Reader:
    """Reads of the Staking account's storage that leave the state untouched (no warm marks,
    which a transaction executed on the same state afterwards would otherwise see)."""

    def __init__(self, state) -> None:
        self.state = state

    def read(self, slot: int) -> int:
        return self.state.get_storage(STAKING, slot)


def consensus_set(state, height: int) -> list[tuple[bytes, int]]:
    """(address, voting power) of the validators that sign `height`, in CometBFT's order (what
    `consensus.ValidatorSet` sorts them into), from the state of any block from height - 1 up to
    height - 1 + `validator_set_delay_blocks` (later changes are not scheduled yet), or any later
    block (the schedule keeps past sets). This is what the node builds each height's
    ValidatorSet from, and the order a signer bitmap follows. Only reads `state`."""
    return scheduled_set(_Reader(state), height)


def mark_set_changed(st: Store) -> None:
    """A stake moved in this block: the block hook derives the set again at its end."""
    st.write(SET_CHANGED, 1)


def _schedule(index: int, effective: int, members: list[tuple[bytes, int]]) -> dict[int, int]:
    """Storage words of set `index` of the schedule, the last one (written by the caller)."""
    t = slot_of(SETS, index)
    words = {SET_COUNT: index + 1, t: pack([(effective, 64), (len(members), 16)])}
    words.update({t + 1 + j: pack([(int.from_bytes(a, "big"), 160), (p, 96)]) for j, (a, p) in enumerate(members)})
    return words


def update_validator_set(state, header, genesis) -> None:
    """Block hook: after a block that changed stake, schedule the set the stakes now call for at
    height `block + validator_set_delay_blocks`, unless it is the last one scheduled or empty."""
    st = Store(state, STAKING)
    if st.read(SET_CHANGED) == 0:
        return
    st.write(SET_CHANGED, 0)
    if st.read(SET_FOLLOWS_STAKE) != 1:
        return
    econ = Store(state, ECONOMICS)
    members = stake_set(st, econ)
    count = st.read(SET_COUNT)
    if not members or (count and _set_members(st, count - 1) == members):
        return
    for slot, value in _schedule(count, header.block_number + read_param(econ, "validator_set_delay_blocks"),
                                 members).items():
        st.write(slot, value)


def genesis_storage(genesis) -> dict[int, int]:
    """The Staking account's storage at genesis: staked genesis validators registered with their
    stakes, and the schedule's first set (every genesis validator, from height 1)."""
    staked = all(v.stake for v in genesis.validators)
    words: dict[int, int] = {SET_FOLLOWS_STAKE: int(staked)} if staked else {}
    if staked:
        for i, v in enumerate(genesis.validators):
            s = validator_slot(v.address)
            words[slot_of(LIST, i)] = int.from_bytes(v.address, "big")
            words[s] = v.stake
            words[s + 2] = pack([(v.commission_ppm, 32), (v.capabilities, 8), (1, 8)])
        words[COUNT] = len(genesis.validators)
        words[TOTAL] = sum(v.stake for v in genesis.validators)
    members = sorted(((v.address, v.power) for v in genesis.validators), key=lambda m: (-m[1], m[0]))
    words.update(_schedule(0, 1, members))
    return words


# --- signer bitmaps: block N + 1's extraData names who signed block N's commit --------------

def signer_bitmap(members: Sequence[bytes], signers: Iterable[bytes]) -> bytes:
    """The bitmap of `signers` over `members` (a height's set in order): bit i (byte i // 8, bit
    i % 8, least significant first) set when member i signed; ceil(n / 8) bytes."""
    index = {address: i for i, address in enumerate(members)}
    out = bytearray((len(members) + 7) // 8)
    for signer in signers:
        if signer not in index:
            raise ValueError(f"signer {to_checksum_address(signer)} is not in the set")
        out[index[signer] // 8] |= 1 << index[signer] % 8
    return bytes(out)


def bitmap_signers(members: Sequence[bytes], bitmap: bytes) -> list[bytes]:
    """The members a bitmap names; ValueError unless it is exactly ceil(n / 8) bytes with no bit
    set beyond the n members."""
    n = len(members)
    if len(bitmap) != (n + 7) // 8:
        raise ValueError(f"signer bitmap is {len(bitmap)} bytes, the set of {n} validators takes {(n + 7) // 8}")
    if n % 8 and bitmap[-1] >> n % 8:
        raise ValueError(f"signer bitmap sets bits beyond the {n} validators")
    return [a for i, a in enumerate(members) if bitmap[i // 8] >> i % 8 & 1]


def block_signers(state, header) -> tuple[list[tuple[bytes, int]], set[bytes]] | None:
    """(the set of the parent's height, those of it that signed the parent's commit) from the
    header's signer bitmap; None when the header carries none (empty extraData: no commit info)
    or the chain's set is fixed at genesis (a devnet: its extraData stays free, as Ethereum's).
    A bitmap that is malformed or names 2/3 of the power or less (no commit does) makes the block
    invalid: ValidationError."""
    if not header.extra_data or state.get_storage(STAKING, SET_FOLLOWS_STAKE) != 1:
        return None
    height = header.block_number - 1
    members = consensus_set(state, height)
    try:
        signers = bitmap_signers([a for a, _ in members], header.extra_data)
    except ValueError as e:
        raise ValidationError(f"block #{header.block_number}: extraData: {e} (height {height})") from None
    signed = set(signers)
    power, total = sum(p for a, p in members if a in signed), sum(p for _, p in members)
    if power * 3 <= total * 2:
        raise ValidationError(f"block #{header.block_number}: extraData names signers of {power} of {total} voting "
                              f"power at height {height}; a commit holds more than 2/3")
    return members, signed


def distribute(st: Store, validator: bytes, reward: int) -> tuple[int, int]:
    """Split `reward` of `validator` (block hook): (to the validator now, pooled for delegators)."""
    s = validator_slot(validator)
    self_stake, delegated, commission, _, _ = validator_info(st, validator)
    if delegated == 0 or reward == 0:
        return reward, 0
    pooled = (reward - reward * commission // PPM) * delegated // (self_stake + delegated)
    increment = pooled * REWARD_SCALE // delegated
    st.write(s + 4, st.read(s + 4) + increment)
    return reward - pooled, pooled


def _settle(call: Call, v: bytes) -> int:
    """Pay the sender's accrued delegation rewards from `v`; returns the amount."""
    st = call.store
    amount = st.read(slot_of(DELEGATIONS, call.sender, v))
    acc = st.read(validator_slot(v) + 4)
    debt_slot = slot_of(DEBT, call.sender, v)
    pending = amount * acc // REWARD_SCALE - st.read(debt_slot)
    if pending > 0:
        st.pay(call.sender, pending)
        credit_reward(call.store_of(ECONOMICS), call.sender, pending)
        call.emit("RewardsClaimed", delegator=call.sender, validator=v, amount=pending)
    return pending


def _reset_debt(call: Call, v: bytes) -> None:
    st = call.store
    acc = st.read(validator_slot(v) + 4)
    st.write(slot_of(DEBT, call.sender, v), st.read(slot_of(DELEGATIONS, call.sender, v)) * acc // REWARD_SCALE)


def slash(call: Call, validator: bytes, reason: bytes, share: str = "slash_ppm") -> int:
    """Take the `share` parameter (ppm) of `validator`'s self stake to the treasury; returns the
    amount. Used by the inference module (a submitter proven wrong) and by consensus evidence."""
    st, econ = call.store_of(STAKING), call.store_of(ECONOMICS)
    s = validator_slot(validator)
    self_stake = st.read(s)
    amount = self_stake * read_param(econ, share) // PPM
    if amount == 0:
        return 0
    st.write(s, self_stake - amount)
    st.add(s + 3, amount)
    st.add(TOTAL, -amount)
    mark_set_changed(st)
    st.pay(read_param(econ, "treasury").to_bytes(20, "big"), amount)
    call.emit_from(MODULE, "Slashed", validator=validator, amount=amount, reason=reason)
    return amount


def register_validator(call: Call, commission_ppm, capabilities):
    st, econ = call.store, call.store_of(ECONOMICS)
    require(commission_ppm <= PPM, f"commissionPpm {commission_ppm} above {PPM}")
    require(capabilities & ~CAPABILITY_MASK == 0, f"unknown capability bits {capabilities:#x}")
    minimum = read_param(econ, "min_validator_stake")
    require(call.value >= minimum, f"stake {call.value} below the minimum {minimum} wei")
    s = validator_slot(call.sender)
    _, _, registered, jailed = unpack(st.read(s + 2), META_WIDTHS)
    require(registered == 0, "validator already registered")
    require(jailed == 0, f"address is jailed (block {jailed}) and cannot validate again")
    index = st.read(COUNT)
    st.write(slot_of(LIST, index), int.from_bytes(call.sender, "big"))
    st.write(COUNT, index + 1)
    st.write(s, call.value)
    st.write(s + 2, pack([(commission_ppm, 32), (capabilities, 8), (1, 8)]))
    st.add(TOTAL, call.value)
    mark_set_changed(st)
    call.emit("ValidatorRegistered", validator=call.sender, stake=call.value, commissionPpm=commission_ppm,
              capabilities=capabilities)


def delegate(call: Call, validator):
    st = call.store
    v = to_canonical_address(validator)
    require(call.value > 0, "delegation amount is zero")
    s = validator_slot(v)
    _, _, registered, jailed = unpack(st.read(s + 2), META_WIDTHS)
    require(registered == 1, f"unknown validator {validator}")
    require(jailed == 0, f"validator {to_checksum_address(v)} is jailed (block {jailed})")
    if v == call.sender:
        st.add(s, call.value)
    else:
        _settle(call, v)
        st.add(s + 1, call.value)
        st.add(slot_of(DELEGATIONS, call.sender, v), call.value)
        _reset_debt(call, v)
    st.add(TOTAL, call.value)
    mark_set_changed(st)
    call.emit("Delegated", delegator=call.sender, validator=validator, amount=call.value)


def undelegate(call: Call, validator, amount):
    st, econ = call.store, call.store_of(ECONOMICS)
    v = to_canonical_address(validator)
    require(amount > 0, "amount is zero")
    s = validator_slot(v)
    require(unpack(st.read(s + 2), META_WIDTHS)[2] == 1, f"unknown validator {validator}")
    if v == call.sender:
        held_slot = s
    else:
        held_slot = slot_of(DELEGATIONS, call.sender, v)
    held = st.read(held_slot)
    require(amount <= held, f"amount {amount} exceeds the {held} wei staked")
    release = call.timestamp + read_param(econ, "unbonding_period_s")
    if v != call.sender:
        _settle(call, v)
    st.write(held_slot, held - amount)
    if v != call.sender:
        st.add(s + 1, -amount)
        _reset_debt(call, v)
    st.add(TOTAL, -amount)
    mark_set_changed(st)
    u = slot_of(UNBONDING, call.sender)
    st.add(u, amount)
    st.write(u + 1, release)
    call.emit("Undelegated", delegator=call.sender, validator=validator, amount=amount, releaseTime=release)


def withdraw(call: Call):
    st = call.store
    u = slot_of(UNBONDING, call.sender)
    amount, release = st.read(u), st.read(u + 1)
    require(amount > 0, "nothing unbonding")
    require(call.timestamp >= release, f"still unbonding until {release}")
    st.write(u, 0)
    st.write(u + 1, 0)
    st.pay(call.sender, amount)
    call.emit("Withdrawn", account=call.sender, amount=amount)
    return amount


def claim_rewards(call: Call, validator):
    v = to_canonical_address(validator)
    require(validator_info(call.store, v)[4], f"unknown validator {validator}")
    amount = _settle(call, v)
    require(amount > 0, "no rewards to claim")
    _reset_debt(call, v)
    return amount


def pending_rewards(call: Call, delegator, validator):
    d, v = to_canonical_address(delegator), to_canonical_address(validator)
    st = call.store
    acc = st.read(validator_slot(v) + 4)
    return st.read(slot_of(DELEGATIONS, d, v)) * acc // REWARD_SCALE - st.read(slot_of(DEBT, d, v))


def submit_evidence(call: Call, data):
    """Slash and jail a validator proven to have signed two different votes for one (height,
    round, type): `data` is the RLP of a `consensus.evidence.DuplicateVoteEvidence`."""
    st, econ = call.store, call.store_of(ECONOMICS)
    require(len(data) <= MAX_EVIDENCE_BYTES, f"evidence is {len(data)} bytes, above the {MAX_EVIDENCE_BYTES}-byte limit")
    call.computation.consume_gas(2 * ECRECOVER_GAS, "native ecrecover (evidence)")
    try:
        evidence = DuplicateVoteEvidence.decode(bytes(data))
    except ConsensusError as e:
        raise revert(f"malformed evidence: {e}") from None
    height, number = evidence.height, call.block_number
    require(height < number, f"evidence for height {height} is not from before this block ({number})")
    max_age = read_param(econ, "evidence_max_age_blocks")
    require(number - height <= max_age, f"evidence for height {height} is older than {max_age} blocks "
                                        f"(evidence_max_age_blocks) at block {number}")
    digest = evidence.hash()
    seen = st.read(slot_of(EVIDENCE, digest))
    require(seen == 0, f"evidence 0x{digest.hex()} was already submitted in block {seen}")
    try:
        offender = verify_evidence(evidence, call.state.execution_context.chain_id)
    except ConsensusError as e:
        raise revert(f"invalid evidence: {e}") from None
    members = scheduled_set(st, height)
    require(any(a == offender for a, _ in members),
            f"{to_checksum_address(offender)} was not a validator at height {height}")
    s = validator_slot(offender)
    commission, caps, registered, jailed = unpack(st.read(s + 2), META_WIDTHS)
    require(jailed == 0, f"validator {to_checksum_address(offender)} is already jailed (block {jailed})")
    st.write(slot_of(EVIDENCE, digest), number)
    st.write(s + 2, pack([(commission, 32), (caps, 8), (registered, 8), (number, 64)]))
    slash(call, offender, digest, "evidence_slash_ppm")  # nothing to take from a fixed set's unstaked member
    mark_set_changed(st)
    call.emit("Jailed", validator=offender, height=height, evidenceHash=digest)


def consensus_set_view(call: Call, height):
    members = scheduled_set(call.store, height)
    return [to_checksum_address(a) for a, _ in members], [p for _, p in members]


def jailed_at_view(call: Call, validator):
    return jailed_at(call.store, to_canonical_address(validator))


def evidence_block(call: Call, evidence_hash):
    return call.store.read(slot_of(EVIDENCE, evidence_hash))


def validator_count(call: Call):
    return call.store.read(COUNT)


def validator_at(call: Call, index):
    require(index < call.store.read(COUNT), f"validator index {index} out of range")
    return call.store.read(slot_of(LIST, index)).to_bytes(20, "big")


def get_validator(call: Call, validator):
    st = call.store
    v = to_canonical_address(validator)
    self_stake, delegated, commission, caps, registered = validator_info(st, v)
    require(registered, f"unknown validator {validator}")
    return (self_stake, delegated, commission, caps, is_active(st, call.store_of(ECONOMICS), v),
            st.read(validator_slot(v) + 3))


def delegation(call: Call, delegator, validator):
    return call.store.read(slot_of(DELEGATIONS, to_canonical_address(delegator), to_canonical_address(validator)))


def unbonding(call: Call, account):
    u = slot_of(UNBONDING, to_canonical_address(account))
    return call.store.read(u), call.store.read(u + 1)


def total_stake(call: Call):
    return call.store.read(TOTAL)


MODULE = NativeModule("Staking", STAKING, {
    "registerValidator": register_validator,
    "delegate": delegate,
    "undelegate": undelegate,
    "withdraw": withdraw,
    "claimRewards": claim_rewards,
    "pendingRewards": pending_rewards,
    "validatorCount": validator_count,
    "validatorAt": validator_at,
    "getValidator": get_validator,
    "delegation": delegation,
    "unbonding": unbonding,
    "totalStake": total_stake,
    "submitEvidence": submit_evidence,
    "consensusSet": consensus_set_view,
    "jailedAt": jailed_at_view,
    "evidenceBlock": evidence_block,
})
