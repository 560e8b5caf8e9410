"""OPEN economics: per-block release from the ecosystem reserve, team and investor vesting, the
reward ledger, and burned-fee accounting. Integer arithmetic only.

Supply identity (checked after every block in tests):
  circulating + reserve + locked + burned == TOTAL_SUPPLY, where reserve is the reserve account's
  balance, locked the vesting account's, burned the base fees destroyed so far (counted here),
  and circulating every other balance.

Schedules count blocks at the genesis block time (a month is 30 days): block n releases
`reserve_initial * min(n, B) // B - released` where B is `reserve_release_months` of blocks, so
the release is linear and sums exactly to the reserve. Of a block's release, `work_reward_ppm`
goes in equal parts to the providers of verified work finalised in that block (when there are
any); the rest goes to validators pro rata to total stake, each validator keeping its
commission and its self stake's share and pooling its delegators' share in the Staking account
(`staking.distribute`); every integer remainder goes to the block's proposer (coinbase), who also
takes the validators' part while none is staked.

Which validators: when the header carries a signer bitmap (extraData, block N + 1 naming who
signed block N's commit, `staking.block_signers`), the members of the set of height N, each
weighted by its current stake if still active (a jailed or unstaked member weighs nothing); a
member that signed is paid its part, and the part of a member that did not sign goes to the
treasury (as Cosmos sends what absent validators forgo to its community pool): missing a block
costs the validator, not the supply. Without a bitmap (blocks before consensus, block 1, any block
of a chain whose set is fixed at genesis, such as a devnet's) every active validator is paid, as
before the network had consensus.
Vesting: nothing before `vesting_cliff_months`, then linear over `vesting_linear_months`.

Storage (slots in the Economics account; 0..len(Params) hold the parameters, see system.py):
  100 burned   101 released   102 workCount[block]   103 work[block][index] -> address
  104 rewards[address]   105 vesting[beneficiary] -> v: v+0 total; v+1 claimed
"""
from eth_utils import to_canonical_address

from genesis import RESERVE_ADDRESS
from genesis.governance import GOVERNABLE_PARAMS, TIMELOCK_ADDRESS
from vm.modules import staking
from vm.modules.abi import Call, NativeModule
from vm.modules.storage import Store, require, slot_of
from vm.modules.system import (
    ECONOMICS, MONTH_S, PARAM_FIELDS, PARAMS_BASE_SLOT, PARAMS_CONFIGURED_SLOT, PPM, REWARDS_SLOT, STAKING, VESTING, credit_reward,
    params_from_genesis, params_storage, read_param,
)

BURNED, RELEASED, WORK_COUNT, WORK, _, VESTING_SLOT = range(100, 106)  # 104: REWARDS_SLOT (system.py)


def months_in_blocks(econ: Store, months: int) -> int:
    return max(1, months * MONTH_S * 1000 // read_param(econ, "block_time_ms"))


def record_work(econ: Store, block_number: int, provider: bytes) -> None:
    """Note a provider of verified work in this block (paid from this block's reserve release)."""
    count_slot = slot_of(WORK_COUNT, block_number)
    count = econ.read(count_slot)
    econ.write(slot_of(WORK, block_number, count), int.from_bytes(provider, "big"))
    econ.write(count_slot, count + 1)


def vested_amount(total: int, block_number: int, cliff_blocks: int, linear_blocks: int) -> int:
    """Vested part of `total` at `block_number`: nothing before the cliff, then linear."""
    if block_number < cliff_blocks:
        return 0
    return total * min(block_number - cliff_blocks, linear_blocks) // linear_blocks


def vested(econ: Store, total: int, block_number: int) -> int:
    cliff = read_param(econ, "vesting_cliff_months") * MONTH_S * 1000 // read_param(econ, "block_time_ms")
    return vested_amount(total, block_number, cliff, months_in_blocks(econ, read_param(econ, "vesting_linear_months")))


def release_block_reward(state, header, genesis) -> None:
    """Block hook: count burned base fees, release this block's share of the reserve, pay it."""
    econ = Store(state, ECONOMICS)
    if econ.read(PARAMS_CONFIGURED_SLOT) == 0:  # genesis did not write them: take them from genesis now
        for slot, value in params_storage(params_from_genesis(genesis)).items():
            econ.write(slot, value)
    if genesis.base_fee_sink == "burn" and header.gas_used:
        econ.add(BURNED, header.gas_used * header.base_fee_per_gas)
    commit = staking.block_signers(state, header)  # checks the bitmap even when nothing is released
    initial = read_param(econ, "reserve_initial")
    span = months_in_blocks(econ, read_param(econ, "reserve_release_months"))
    released = econ.read(RELEASED)
    amount = min(initial * min(header.block_number, span) // span - released, state.get_balance(RESERVE_ADDRESS))
    if amount <= 0:
        return
    econ.write(RELEASED, released + amount)
    state.delta_balance(RESERVE_ADDRESS, -amount)
    payouts: dict[bytes, int] = {}
    workers = [econ.read(slot_of(WORK, header.block_number, i)).to_bytes(20, "big")
               for i in range(econ.read(slot_of(WORK_COUNT, header.block_number)))]
    work_share = amount * read_param(econ, "work_reward_ppm") // PPM if workers else 0
    for w in workers:
        payouts[w] = payouts.get(w, 0) + work_share // len(workers)
    stakes = Store(state, STAKING)
    if commit is None:
        validators, signers = staking.active_validators(stakes, econ), None
    else:
        members, signers = commit
        validators = [(a, staking.reward_weight(stakes, econ, a)) for a, _ in members]
    validator_share = amount - work_share
    total_stake = sum(stake for _, stake in validators)
    pooled = forgone = 0
    for addr, stake in validators:
        part = validator_share * stake // total_stake if total_stake else 0  # none staked: all to the proposer
        if signers is not None and addr not in signers:
            forgone += part
            continue
        own, to_delegators = staking.distribute(stakes, addr, part)
        payouts[addr] = payouts.get(addr, 0) + own
        pooled += to_delegators
    if forgone:
        treasury = read_param(econ, "treasury").to_bytes(20, "big")
        payouts[treasury] = payouts.get(treasury, 0) + forgone
    payouts[header.coinbase] = payouts.get(header.coinbase, 0) + amount - pooled - sum(payouts.values())
    state.delta_balance(STAKING, pooled)  # delegators claim it from the staking account
    for addr, value in payouts.items():
        state.delta_balance(addr, value)
        credit_reward(econ, addr, value)


def vesting_storage(genesis) -> tuple[dict[int, int], dict[bytes, int]]:
    """(economics storage of the vesting schedules, beneficiary -> locked amount) at genesis:
    every team and investor allocation vests."""
    storage, locked = {}, {}
    for addr, acct in genesis.accounts.items():
        if acct.group in ("team", "investors") and acct.balance:
            storage[slot_of(VESTING_SLOT, addr)] = acct.balance
            locked[addr] = acct.balance
    return storage, locked


def claim_vested(call: Call):
    st = call.store
    v = slot_of(VESTING_SLOT, call.sender)
    total = st.read(v)
    require(total > 0, "sender has no vesting schedule")
    claimed = st.read(v + 1)
    amount = vested(st, total, call.block_number) - claimed
    require(amount > 0, "nothing vested to claim yet")
    st.write(v + 1, claimed + amount)
    call.store_of(VESTING).pay(call.sender, amount)
    call.emit("VestingClaimed", beneficiary=call.sender, amount=amount)
    return amount


def vesting_of(call: Call, beneficiary):
    v = slot_of(VESTING_SLOT, to_canonical_address(beneficiary))
    total, claimed = call.store.read(v), call.store.read(v + 1)
    return total, claimed, vested(call.store, total, call.block_number) - claimed


def rewards_of(call: Call, account):
    return call.store.read(slot_of(REWARDS_SLOT, to_canonical_address(account)))


def supply(call: Call):
    return (call.state.get_balance(RESERVE_ADDRESS), call.state.get_balance(VESTING), call.store.read(BURNED),
            call.store.read(RELEASED))


def set_param(call: Call, name, value):
    """Governance moves a parameter: it takes effect for every later transaction, on every node."""
    require(call.sender == TIMELOCK_ADDRESS, "setParam: only the governance Timelock may change parameters")
    require(name in GOVERNABLE_PARAMS, f"setParam: {name!r} is not a governable parameter "
                                       f"(governable: {', '.join(sorted(GOVERNABLE_PARAMS))})")
    low, high = GOVERNABLE_PARAMS[name]
    require(low <= value <= high, f"setParam: {name} must be between {low} and {high}, got {value}")
    slot = PARAMS_BASE_SLOT + PARAM_FIELDS.index(name)
    old = read_param(call.store, name)
    call.store.write(PARAMS_CONFIGURED_SLOT, 1)
    call.store.write(slot, value)
    if name == "min_validator_stake":  # who is active may change: the set is derived again
        staking.mark_set_changed(call.store_of(STAKING))
    call.emit("ParamChanged", name=name, oldValue=old, newValue=value)


def get_param(call: Call, name):
    require(name in PARAM_FIELDS, f"getParam: unknown parameter {name!r}")
    return read_param(call.store, name)


MODULE = NativeModule("Economics", ECONOMICS, {
    "setParam": set_param,
    "getParam": get_param,
    "claimVested": claim_vested,
    "vestingOf": vesting_of,
    "rewardsOf": rewards_of,
    "supply": supply,
})
