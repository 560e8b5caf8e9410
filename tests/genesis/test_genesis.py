import dataclasses
import json
import re

import pytest
from eth_account import Account
from eth_utils import to_canonical_address

import genesis
from genesis import RESERVE_ADDRESS, TOTAL_SUPPLY, GenesisError


def _devnet_dict() -> dict:
    return json.loads(genesis.to_json(genesis.devnet()))


def test_supply_is_exactly_one_billion_open_split_by_group() -> None:
    g = genesis.devnet()
    assert TOTAL_SUPPLY == 1_000_000_000 * 10**18
    assert sum(g.allocations.values()) == TOTAL_SUPPLY
    assert g.group_total("reserve") == 617_100_000 * 10**18 == g.allocations[RESERVE_ADDRESS]
    assert g.group_total("investors") == 182_900_000 * 10**18
    assert g.group_total("team") == 150_000_000 * 10**18
    assert g.group_total("liquidity") == 50_000_000 * 10**18


def test_dev_accounts_are_anvils() -> None:
    accounts = genesis.dev_accounts()
    assert len(accounts) == 10
    assert accounts[0] == ("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
                           "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
    assert accounts[9][0] == "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"
    g = genesis.devnet()
    for address, _ in accounts:
        assert g.allocations[to_canonical_address(address)] == 10_000 * 10**18
    # the validator (proposer, reward recipient) is none of the user accounts, as anvil's coinbase is not
    validator, key = genesis.dev_validator()
    assert g.validators == (genesis.Validator(to_canonical_address(validator), 1),)
    assert validator not in {a for a, _ in accounts} and Account.from_key(key).address == validator


def test_devnet_windows_are_short_and_overridable() -> None:
    g = genesis.devnet()
    assert (g.economics.dispute_window_s, g.economics.job_timeout_s) == (10, 300)
    assert genesis.Economics().dispute_window_s == 600  # init/run genesis files keep the real windows
    g2 = genesis.with_params(g, {"dispute_window_s": "3", "minValidatorStake": "1.5OPEN", "chain_id": "0x1c00"})
    assert (g2.economics.dispute_window_s, g2.economics.min_validator_stake, g2.chain_id) == (3, 15 * 10**17, 7168)
    for overrides, message in [
        ({"dispute_window": "3"}, "--param dispute_window: unknown parameter; known: fee_split_contributors_ppm"),
        ({"dispute_window_s": "soon"}, "--param dispute_window_s='soon': not an integer"),
        ({"dispute_window_s": "-1"}, "economics.dispute_window_s must not be negative"),
        ({"fee_split_treasury_ppm": "0"}, "fee split (500000, 200000, 200000, 0) must sum to 1000000"),
        ({"attribution_methods": "0x41"}, "enables unknown method id(s) [0, 6]"),
        ({"base_fee_sink": "void"}, "baseFeeSink 'void' must be 'burn' or 'treasury'"),
    ]:
        with pytest.raises(genesis.GenesisError, match=re.escape(message)):
            genesis.with_params(g, overrides)


def test_json_round_trip(tmp_path) -> None:
    g = genesis.devnet(base_fee_sink="treasury")
    path = tmp_path / "genesis.json"
    path.write_text(genesis.to_json(g))
    assert genesis.load(path) == g


def test_genesis_without_governance_round_trips_with_any_treasury() -> None:
    d = _devnet_dict()
    d.update(governance=None, treasury="0x" + "11" * 20)
    g = genesis.from_dict(d)
    assert g.governance is None and genesis.from_dict(json.loads(genesis.to_json(g))) == g


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(chainId=1612), "chainId 1612"),
    (lambda d: d.update(chainId=161201), "chainId 161201"),
    (lambda d: d.update(chainId="seven"), "chainId 'seven' is not an integer"),
    (lambda d: d.update(fork="cancun"), "fork 'cancun'"),
    (lambda d: d.update(baseFeeSink="void"), "baseFeeSink 'void'"),
    (lambda d: d.update(gasLimit="0x1"), "gasLimit 1"),
    (lambda d: d.update(baseFeePerGas=0), "baseFeePerGas 0"),
    (lambda d: d.update(treasury="0x1234"), "treasury '0x1234'"),
    (lambda d: d.update(validators=[]), "validators must not be empty"),
    (lambda d: d["validators"][0].update(power=0), "power 0"),
    (lambda d: d["economics"].update(feeSplitTreasuryPpm=100_001), "fee split"),
    (lambda d: d["economics"].update(bogus=1), "unknown economics field"),
    (lambda d: d.pop("alloc"), "missing object 'alloc'"),
    (lambda d: d.update(treasury="0x" + "11" * 20), "must be the governance Timelock"),
    (lambda d: d["governance"].update(quorumPercent=0), "quorumPercent 0 must be 1..100"),
    (lambda d: d["governance"].update(votingPeriodBlocks=0), "votingPeriodBlocks 0"),
    (lambda d: d["governance"].update(vetoes=1), "unknown governance field"),
    (lambda d: d.update(governance=[]), "governance must be an object or null"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_invalid_fields_are_named(mutate, message) -> None:
    d = _devnet_dict()
    mutate(d)
    with pytest.raises(GenesisError, match=message):
        genesis.from_dict(d)


def test_one_wei_too_many_or_too_few_is_refused() -> None:
    d = _devnet_dict()
    first_dev = genesis.dev_accounts()[0][0]
    d["alloc"][first_dev]["balance"] = hex(int(d["alloc"][first_dev]["balance"], 16) + 1)
    with pytest.raises(GenesisError, match=f"sum to {TOTAL_SUPPLY + 1} wei"):
        genesis.from_dict(d)
    d["alloc"][first_dev]["balance"] = hex(int(d["alloc"][first_dev]["balance"], 16) - 2)
    with pytest.raises(GenesisError, match=f"sum to {TOTAL_SUPPLY - 1} wei"):
        genesis.from_dict(d)


def test_group_shares_are_enforced() -> None:
    d = _devnet_dict()
    team = next(a for a, v in d["alloc"].items() if v.get("group") == "team")
    investors = next(a for a, v in d["alloc"].items() if v.get("group") == "investors")
    d["alloc"][team]["balance"] = hex(int(d["alloc"][team]["balance"], 16) - 10**18)
    d["alloc"][investors]["balance"] = hex(int(d["alloc"][investors]["balance"], 16) + 10**18)
    with pytest.raises(GenesisError, match="group 'investors'"):
        genesis.from_dict(d)


def test_reserve_must_sit_at_the_reserve_account() -> None:
    d = _devnet_dict()
    reserve = d["alloc"].pop(next(a for a in d["alloc"] if to_canonical_address(a) == RESERVE_ADDRESS))
    d["alloc"]["0x" + "ab" * 20] = reserve
    with pytest.raises(GenesisError, match="whole reserve must sit"):
        genesis.from_dict(d)


def test_load_errors_name_the_path(tmp_path) -> None:
    with pytest.raises(GenesisError, match="cannot read .*nope.json"):
        genesis.load(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(GenesisError, match="bad.json.* is not valid JSON"):
        genesis.load(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(GenesisError, match="top level must be a JSON object"):
        genesis.load(bad)


def test_param_overrides_reach_the_governance_settings() -> None:
    g = genesis.with_params(genesis.devnet(), {"voting_period_blocks": "5", "timelockDelaySeconds": "3"})
    assert (g.governance.voting_period_blocks, g.governance.timelock_delay_s) == (5, 3)
    with pytest.raises(GenesisError, match="quorumPercent 0 must be 1..100"):
        genesis.with_params(genesis.devnet(), {"quorum_percent": "0"})
    with pytest.raises(GenesisError, match="has no governance"):
        genesis.with_params(dataclasses.replace(genesis.devnet(), governance=None), {"quorum_percent": "10"})
