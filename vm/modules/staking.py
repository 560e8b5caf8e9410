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

Rules: a validator is active while its self stake is at least `min_validator_stake`. A
validator's own `delegate`/`undelegate` moves its self stake. Undelegated OPEN unbonds for
`unbonding_period_s` (one entry per account: amounts add up, the release time moves to the
latest). Slashing takes a share of the self stake and pays it to the treasury.

Rewards: of a validator's block reward, its commission and its self stake's pro-rata share go to
the validator; the delegated share is pooled in this account and accrues to delegators through
a reward-per-delegated-wei accumulator (settled on every delegate, undelegate and claimRewards).
Rounding dust of the accumulator stays in this account.
"""
from eth_utils import to_canonical_address

from vm.modules.abi import Call, NativeModule
from vm.modules.storage import Store, pack, require, slot_of, unpack
from vm.modules.system import ECONOMICS, PPM, STAKING, credit_reward, read_param

COUNT, LIST, VALIDATORS, DELEGATIONS, UNBONDING, TOTAL, DEBT = range(7)
REWARD_SCALE = 10**27
CAP_GPU_INFERENCE = 1
"""Capability bit: serves OpenLoRA inference (may submit results)."""
CAPABILITY_MASK = 0b11
META_WIDTHS = (32, 8, 8)


def validator_slot(address: bytes) -> int:
    return slot_of(VALIDATORS, address)


def validator_info(st: Store, address: bytes) -> tuple[int, int, int, int, bool]:
    """(selfStake, delegatedStake, commissionPpm, capabilities, registered)."""
    s = validator_slot(address)
    commission, caps, registered = unpack(st.read(s + 2), META_WIDTHS)
    return st.read(s), st.read(s + 1), commission, caps, bool(registered)


def is_active(st: Store, econ: Store, address: bytes, capability: int = 0) -> bool:
    """A registered validator with enough self stake (and the given capability bits)."""
    self_stake, _, _, caps, registered = validator_info(st, address)
    return registered and self_stake >= read_param(econ, "min_validator_stake") and caps & capability == capability


def active_validators(st: Store, econ: Store) -> list[tuple[bytes, int]]:
    """(address, total stake) of every active validator, in registration order."""
    out = []
    for i in range(st.read(COUNT)):
        addr = st.read(slot_of(LIST, i)).to_bytes(20, "big")
        if is_active(st, econ, addr):
            self_stake, delegated, *_ = validator_info(st, addr)
            out.append((addr, self_stake + delegated))
    return out


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


def slash(call: Call, validator: bytes, reason: bytes) -> int:
    """Take `slash_ppm` of `validator`'s self stake to the treasury; returns the amount.
    Used by the inference module (a submitter proven wrong) and, later, consensus evidence."""
    st, econ = call.store_of(STAKING), call.store_of(ECONOMICS)
    s = validator_slot(validator)
    self_stake = st.read(s)
    amount = self_stake * read_param(econ, "slash_ppm") // PPM
    if amount == 0:
        return 0
    st.write(s, self_stake - amount)
    st.add(s + 3, amount)
    st.add(TOTAL, -amount)
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
    require(unpack(st.read(s + 2), META_WIDTHS)[2] == 0, "validator already registered")
    index = st.read(COUNT)
    st.write(slot_of(LIST, index), int.from_bytes(call.sender, "big"))
    st.write(COUNT, index + 1)
    st.write(s, call.value)
    st.write(s + 2, pack([(commission_ppm, 32), (capabilities, 8), (1, 8)]))
    st.add(TOTAL, call.value)
    call.emit("ValidatorRegistered", validator=call.sender, stake=call.value, commissionPpm=commission_ppm,
              capabilities=capabilities)


def delegate(call: Call, validator):
    st = call.store
    v = to_canonical_address(validator)
    require(call.value > 0, "delegation amount is zero")
    s = validator_slot(v)
    require(unpack(st.read(s + 2), META_WIDTHS)[2] == 1, f"unknown validator {validator}")
    if v == call.sender:
        st.add(s, call.value)
    else:
        _settle(call, v)
        st.add(s + 1, call.value)
        st.add(slot_of(DELEGATIONS, call.sender, v), call.value)
        _reset_debt(call, v)
    st.add(TOTAL, call.value)
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
})
