"""The consensus parameters in state: the evidence slash and max age are governable within bounds
(Economics.setParam, run as the Timelock would call it); the set's delay and size are not."""
import json
import pathlib

import pytest
from eth.exceptions import Revert
from eth_utils import keccak, to_checksum_address

from genesis.governance import GOPEN_ADDRESS, GOVERNABLE_PARAMS, GOVERNOR_ADDRESS, TIMELOCK_ADDRESS
from tests.native.native_chain import CONTRACTS, W3, NativeChain, revert_reason
from tests.staking.conftest import ADDRS, KEYS, OPEN, evidence, members, staked_chain

ROOT = pathlib.Path(__file__).resolve().parents[2]

TIMELOCK = to_checksum_address(TIMELOCK_ADDRESS)


def _set_param(nc, name, value, sender=TIMELOCK) -> str | None:
    """setParam executed on the head's state (eth_call): None if it succeeds, else the reason."""
    try:
        nc.call("Economics", "setParam", name, value, sender=sender)
    except Revert as e:
        return revert_reason(e.args[0])
    return None


@pytest.mark.parametrize("name, low, high", [("evidence_slash_ppm", 0, 1_000_000),
                                             ("evidence_max_age_blocks", 1, 10_000_000)])
def test_evidence_params_are_governable_within_bounds(name, low, high):
    nc = NativeChain()
    assert GOVERNABLE_PARAMS[name] == (low, high)
    assert _set_param(nc, name, low) is None and _set_param(nc, name, high) is None
    for bad in (low - 1, high + 1) if low else (high + 1,):
        assert _set_param(nc, name, bad) == f"setParam: {name} must be between {low} and {high}, got {bad}"
    assert _set_param(nc, name, high, sender=nc.addresses[0]) == \
        "setParam: only the governance Timelock may change parameters"


@pytest.mark.parametrize("name", ["validator_set_delay_blocks", "max_validators"])
def test_the_sets_delay_and_size_are_fixed_at_genesis(name):
    nc = staked_chain()
    assert "is not a governable parameter" in _set_param(nc, name, 5)
    assert nc.call("Economics", "getParam", name) == {"validator_set_delay_blocks": 2, "max_validators": 100}[name]
    assert nc.call("Economics", "getParam", "evidence_slash_ppm") == 50_000  # 5% by default


def _governance_contract(nc, name: str, address: bytes):
    abi = json.loads((ROOT / "vm" / "governance.json").read_text())["contracts"][name]["abi"]
    return W3.eth.contract(address=to_checksum_address(address), abi=abi)


def _execute_by_governance(nc, calls: list[bytes], description: str) -> None:
    """Wrap OPEN into GOPEN, propose `calls` to Economics, vote, queue, execute: the real Governor
    and Timelock of the devnet's governance (1-block delay, 20-block vote, 10 s timelock)."""
    gopen = _governance_contract(nc, "GOPEN", GOPEN_ADDRESS)
    governor = _governance_contract(nc, "OpenGovernor", GOVERNOR_ADDRESS)
    key, voter = nc.keys[0], nc.addresses[0]

    def send(contract, fn, *args, value=0):
        data = bytes.fromhex(contract.encode_abi(fn, args=list(args))[2:])
        r = nc.mine([nc.sign(key, contract.address, data, value, gas=2_000_000)])[0]
        assert r.ok, (fn, r.computation.output)

    send(gopen, "deposit", value=1_000 * OPEN)
    send(gopen, "delegate", voter)
    economics = [CONTRACTS["Economics"].address] * len(calls)
    proposal = (economics, [0] * len(calls), calls, keccak(text=description))
    send(governor, "propose", economics, [0] * len(calls), calls, description)
    for _ in range(2):
        nc.mine([])
    pid = nc.call_contract(governor, "hashProposal", *proposal)
    send(governor, "castVote", pid, 1)
    for _ in range(nc.genesis.governance.voting_period_blocks):
        nc.mine([])
    send(governor, "queue", *proposal)
    nc.mine([], advance=nc.genesis.governance.timelock_delay_s + 1)
    send(governor, "execute", *proposal)


def test_governance_moves_the_floor_and_the_slash_and_the_chain_follows():
    """A real proposal raises min_validator_stake above validator 1's stake and the evidence slash to
    20%: validator 1 leaves the set two blocks after the execution, and evidence slashes 20%."""
    nc = staked_chain((3000, 1000, 3000, 3000))
    econ = CONTRACTS["Economics"]
    calls = [bytes.fromhex(econ.encode_abi("setParam", args=[name, value])[2:])
             for name, value in (("min_validator_stake", 2000 * OPEN), ("evidence_slash_ppm", 200_000))]
    _execute_by_governance(nc, calls, "raise the floor, slash harder")
    n = nc.chain.get_canonical_head().block_number
    assert ADDRS[1] in members(nc, n + 1) and ADDRS[1] not in members(nc, n + 2)
    r = nc.send(nc.keys[7], "Staking", "submitEvidence", evidence(KEYS[0], n))
    assert r.ok and r.events("Staking", "Slashed")[0]["amount"] == 600 * OPEN
