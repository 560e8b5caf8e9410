"""Staked genesis validators (issue 13 item 4): `genesis.testnet(addresses)` and the `validators`
section with stakes, which register each validator in the Staking module from block 1. Errors
name the bad validator or value."""
import json

import pytest
from eth_utils import keccak, to_checksum_address

import genesis
from genesis import STAKING_ADDRESS, GenesisError

OPEN = 10**18
ADDRESSES = [keccak(b"validator %d" % i)[12:] for i in range(4)]


def _testnet_dict(**kw) -> dict:
    return json.loads(genesis.to_json(genesis.testnet(ADDRESSES, **kw)))


def test_testnet_stakes_every_validator_out_of_liquidity():
    g = genesis.testnet(ADDRESSES, stake=[1000 * OPEN, 2000 * OPEN, 1000 * OPEN, 500 * OPEN])
    assert [(v.address, v.power, v.stake) for v in g.validators] == [
        (ADDRESSES[0], 1000, 1000 * OPEN), (ADDRESSES[1], 2000, 2000 * OPEN), (ADDRESSES[2], 1000, 1000 * OPEN),
        (ADDRESSES[3], 500, 500 * OPEN)]
    assert g.accounts[STAKING_ADDRESS].balance == 4500 * OPEN
    assert all(g.accounts[a].balance == genesis.devnet().accounts.get(a, genesis.Account(0)).balance + 1000 * OPEN
               for a in ADDRESSES)
    assert g.group_total("liquidity") == genesis.devnet().group_total("liquidity")  # moved, not minted
    assert g.chain_id == genesis.devnet().chain_id


def test_a_testnet_genesis_survives_its_json():
    g = genesis.testnet(ADDRESSES, stake=5000 * OPEN, chain_id=4242)
    assert genesis.from_dict(json.loads(genesis.to_json(g))) == g
    v = json.loads(genesis.to_json(g))["validators"][0]
    assert v == {"address": to_checksum_address(ADDRESSES[0]), "power": 5000, "stake": hex(5000 * OPEN),
                 "commissionPpm": 0, "capabilities": 0}


def test_power_defaults_to_the_stake_in_whole_open():
    d = _testnet_dict()
    for v in d["validators"]:
        del v["power"]
    assert [v.power for v in genesis.from_dict(d).validators] == [1000] * 4


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["validators"][1].update(power=7), "power 7 must be its stake in whole OPEN"),
    (lambda d: d["validators"][1].pop("stake"), "either every validator has a stake or none has"),
    (lambda d: d["validators"][2].update(stake="0x1"), "stake 1 below economics.minValidatorStake"),
    (lambda d: d["validators"][2].update(stake="ten"), r"validators\[2\]: stake 'ten' is not an integer"),
    (lambda d: d["validators"].append(dict(d["validators"][0])), "appears twice"),
    (lambda d: d["validators"][0].update(commissionPpm=1_000_001), "commissionPpm must be 0..1000000"),
    (lambda d: d["economics"].update(maxValidators=3), "4 validators, more than the 3 that may sign"),
    (lambda d: d["economics"].update(maxValidators=257), "maxValidators 257 must be 1..256"),
    (lambda d: d["economics"].update(validatorSetDelayBlocks=0), "validatorSetDelayBlocks 0 must be at least 1"),
    (lambda d: d["economics"].update(evidenceSlashPpm=1_000_001), "evidenceSlashPpm must be <= 1000000"),
    (lambda d: d["economics"].update(evidenceMaxAgeBlocks=0), "evidenceMaxAgeBlocks >= 1"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_bad_validators_are_named(mutate, message):
    d = _testnet_dict()
    mutate(d)
    with pytest.raises(GenesisError, match=message):
        genesis.from_dict(d)


def test_the_staking_account_must_hold_exactly_the_stakes():
    d = _testnet_dict()
    staking, liquidity = to_checksum_address(STAKING_ADDRESS), next(
        a for a, acct in d["alloc"].items() if acct.get("group") == "liquidity" and int(acct["balance"], 16) > 10**25)
    d["alloc"][staking]["balance"] = hex(int(d["alloc"][staking]["balance"], 16) + 1)
    d["alloc"][liquidity]["balance"] = hex(int(d["alloc"][liquidity]["balance"], 16) - 1)  # supply still adds up
    with pytest.raises(GenesisError, match="must hold exactly the validators' stakes"):
        genesis.from_dict(d)
    devnet = json.loads(genesis.to_json(genesis.devnet()))
    devnet["alloc"][staking] = {"balance": "0x1", "group": "liquidity"}
    devnet["alloc"][liquidity]["balance"] = hex(int(devnet["alloc"][liquidity]["balance"], 16) - 1)
    with pytest.raises(GenesisError, match=r"must hold exactly the validators' stakes \(0\)"):
        genesis.from_dict(devnet)  # an unstaked genesis: OPEN there would be lost to the supply count


def test_testnet_refusals():
    with pytest.raises(GenesisError, match="at least one validator"):
        genesis.testnet([])
    with pytest.raises(GenesisError, match="2 stakes for 4 validators"):
        genesis.testnet(ADDRESSES, stake=[OPEN * 1000] * 2)
    with pytest.raises(GenesisError, match="more than the liquidity group holds"):
        genesis.testnet(ADDRESSES, stake=10**9 * OPEN)
