"""The consensus parameters in state: the evidence slash and max age are governable within bounds
(Economics.setParam, run as the Timelock would call it); the set's delay and size are not."""
import pytest
from eth.exceptions import Revert
from eth_utils import to_checksum_address

from genesis.governance import GOVERNABLE_PARAMS, TIMELOCK_ADDRESS
from tests.native.native_chain import NativeChain, revert_reason
from tests.staking.conftest import staked_chain

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
