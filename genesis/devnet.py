"""The single-validator development network: the same ten dev accounts anvil and hardhat use.

Keys come from the well-known "test test ... junk" mnemonic (BIP-44 m/44'/60'/0'/0/i), so wallets
and tools that know anvil's accounts recognise ours. They are public: never use them elsewhere.
The validator (block proposer, recipient of tips and the reserve release) has a key of its own,
from the same mnemonic's second BIP-44 account (m/44'/60'/1'/0/0), so it is none of the ten user
accounts (as anvil's coinbase is not) and a user's balance moves only by what the user does.
A devnet runs the real rules with short windows (DEVNET_ECONOMICS), so a newcomer sees a proof
finalised and its fee split within seconds.
"""
import dataclasses
import functools
from collections.abc import Iterable, Sequence

from eth_account import Account
from eth_utils import keccak, to_canonical_address

from genesis.governance import DEVNET_GOVERNANCE, TIMELOCK_ADDRESS
from genesis.params import (
    ALLOCATION_SHARES_PPM, DECIMALS, L2_BRIDGE_ADDRESS, PPM, RESERVE_ADDRESS, STAKING_ADDRESS, TOTAL_SUPPLY,
    Account as GenesisAccount, Economics, Genesis, GenesisError, Validator,
)
from genesis.system import system_accounts

DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_CHAIN_ID = 7167
DEV_ACCOUNT_COUNT = 10
DEV_ACCOUNT_BALANCE = 10_000 * 10**18  # like anvil's default
VALIDATOR_PATH = "m/44'/60'/1'/0/0"
DEVNET_ECONOMICS = Economics(dispute_window_s=10, job_timeout_s=300, unbonding_period_s=60, training_verify_s=300,
                             proof_timeout_s=120)
"""The real economics with windows short enough to watch: disputes 10 s, unbonding 60 s, a job's
attribution proof due 120 s after it succeeded (or the job is settled without one); a job may
take 300 s to serve (a CPU loading SmolLM2 needs a minute or more; a timeout only matters for refunds);
a trained run is open to verification for 300 s (its verifiers replay on a CPU too)
(`openledger devnet --param NAME=VALUE` overrides any of them; `init`/`run` take a genesis file)."""


def _named_address(label: str) -> bytes:
    """A keyless address for an allocation group that has no real holder on a devnet."""
    return keccak(b"openledger/genesis/" + label.encode())[12:]


@functools.cache
def dev_accounts() -> tuple[tuple[str, str], ...]:
    """(checksum address, 0x private key) of the ten dev accounts, in anvil's order."""
    Account.enable_unaudited_hdwallet_features()
    out = []
    for i in range(DEV_ACCOUNT_COUNT):
        acct = Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}")
        out.append((acct.address, "0x" + bytes(acct.key).hex()))
    return tuple(out)


@functools.cache
def dev_validator() -> tuple[str, str]:
    """(checksum address, 0x private key) of the devnet's validator: not one of the ten dev accounts."""
    Account.enable_unaudited_hdwallet_features()
    acct = Account.from_mnemonic(DEV_MNEMONIC, account_path=VALIDATOR_PATH)
    return acct.address, "0x" + bytes(acct.key).hex()


DEVNET_BRIDGE_ESCROW = 1_000_000 * 10**18
"""What `openledger devnet --l1` escrows in the L2 bridge account: the OPEN that circulates on the
L1 (docs/settlement.md)."""


def devnet(chain_id: int = DEV_CHAIN_ID, block_time: float = 1, base_fee_sink: str = "burn",
           economics: Economics = DEVNET_ECONOMICS, bridge_escrow: int = 0) -> Genesis:
    """A valid devnet genesis: `dev_validator()` validates; the dev balances come out of liquidity,
    and so does `bridge_escrow`, the L2 bridge account's balance (0: a devnet without an L1)."""
    share = {g: TOTAL_SUPPLY * ppm // PPM for g, ppm in ALLOCATION_SHARES_PPM.items()}
    devs = [to_canonical_address(a) for a, _ in dev_accounts()]
    accounts = {
        RESERVE_ADDRESS: GenesisAccount(share["reserve"], "reserve"),
        _named_address("investors"): GenesisAccount(share["investors"], "investors"),
        _named_address("team"): GenesisAccount(share["team"], "team"),
        _named_address("liquidity"): GenesisAccount(
            share["liquidity"] - DEV_ACCOUNT_BALANCE * len(devs) - bridge_escrow, "liquidity"),
    }
    if bridge_escrow:
        accounts[L2_BRIDGE_ADDRESS] = GenesisAccount(bridge_escrow, "liquidity")
    accounts.update({d: GenesisAccount(DEV_ACCOUNT_BALANCE, "liquidity") for d in devs})
    return Genesis(
        chain_id=chain_id,
        gas_limit=30_000_000,
        base_fee=10**9,
        block_time=block_time,
        base_fee_sink=base_fee_sink,
        treasury=TIMELOCK_ADDRESS,  # the ecosystem treasury is spent only by governance
        accounts=accounts,
        validators=(Validator(to_canonical_address(dev_validator()[0]), 1),),
        economics=economics,
        governance=DEVNET_GOVERNANCE,
    )


TESTNET_STAKE = 1_000 * 10**18
"""Each testnet validator's genesis self stake (power 1,000)."""
TESTNET_VALIDATOR_BALANCE = 1_000 * 10**18
"""OPEN each testnet validator holds besides its stake, for the gas of its own transactions."""


def testnet(validators: Iterable[bytes | str], stake: int | Sequence[int] = TESTNET_STAKE,
            chain_id: int = DEV_CHAIN_ID, block_time: float = 1, economics: Economics = DEVNET_ECONOMICS,
            commission_ppm: int = 0, balance: int = TESTNET_VALIDATOR_BALANCE) -> Genesis:
    """A shared genesis for a network of validators (`openledger testnet --validators N`): the
    devnet's accounts, each address registered in the Staking module with `stake` (one for all,
    or one per validator; power is the stake in whole OPEN) and funded with `balance`, all
    signing from block 1. Stakes and balances come out of the liquidity group, so the supply is
    unchanged. The Prague system contracts are deployed, so EIP-4788 keeps each block's
    parentBeaconBlockRoot (the hash of its parent's commit)."""
    addresses = [to_canonical_address(a) for a in validators]
    if not addresses:
        raise GenesisError("testnet: at least one validator address is needed")
    stakes = [stake] * len(addresses) if isinstance(stake, int) else list(stake)
    if len(stakes) != len(addresses):
        raise GenesisError(f"testnet: {len(stakes)} stakes for {len(addresses)} validators")
    base = devnet(chain_id=chain_id, block_time=block_time, economics=economics)
    accounts = dict(base.accounts)
    liquidity = _named_address("liquidity")
    taken = sum(stakes) + balance * len(addresses)
    if accounts[liquidity].balance < taken:
        raise GenesisError(f"testnet: {len(addresses)} validators with {sum(stakes)} wei staked and {balance} "
                           f"held each need more than the liquidity group holds")
    accounts[liquidity] = GenesisAccount(accounts[liquidity].balance - taken, "liquidity")
    for address in addresses:
        held = accounts.get(address, GenesisAccount(0, "liquidity"))
        accounts[address] = dataclasses.replace(held, balance=held.balance + balance, group=held.group or "liquidity")
    accounts[STAKING_ADDRESS] = GenesisAccount(sum(stakes), "liquidity")
    accounts.update(system_accounts())
    return dataclasses.replace(
        base, accounts=accounts,
        validators=tuple(Validator(a, s // 10**DECIMALS, s, commission_ppm) for a, s in zip(addresses, stakes)))
