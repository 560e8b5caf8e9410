"""The single-validator development network: the same ten dev accounts anvil and hardhat use.

Keys come from the well-known "test test ... junk" mnemonic (BIP-44 m/44'/60'/0'/0/i), so wallets
and tools that know anvil's accounts recognise ours. They are public: never use them elsewhere.
The validator (block proposer, recipient of tips and the reserve release) has a key of its own,
from the same mnemonic's second BIP-44 account (m/44'/60'/1'/0/0), so it is none of the ten user
accounts (as anvil's coinbase is not) and a user's balance moves only by what the user does.
A devnet runs the real rules with short windows (DEVNET_ECONOMICS), so a newcomer sees a proof
finalised and its fee split within seconds.
"""
import functools

from eth_account import Account
from eth_utils import keccak, to_canonical_address

from genesis.governance import DEVNET_GOVERNANCE, TIMELOCK_ADDRESS
from genesis.params import (
    ALLOCATION_SHARES_PPM, PPM, RESERVE_ADDRESS, TOTAL_SUPPLY, Account as GenesisAccount, Economics, Genesis,
    Validator,
)

DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_CHAIN_ID = 7167
DEV_ACCOUNT_COUNT = 10
DEV_ACCOUNT_BALANCE = 10_000 * 10**18  # like anvil's default
VALIDATOR_PATH = "m/44'/60'/1'/0/0"
DEVNET_ECONOMICS = Economics(dispute_window_s=10, job_timeout_s=300, unbonding_period_s=60, training_verify_s=300)
"""The real economics with windows short enough to watch: disputes 10 s, unbonding 60 s; a job may
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


def devnet(chain_id: int = DEV_CHAIN_ID, block_time: float = 1, base_fee_sink: str = "burn",
           economics: Economics = DEVNET_ECONOMICS) -> Genesis:
    """A valid devnet genesis: `dev_validator()` validates; the dev balances come out of liquidity."""
    share = {g: TOTAL_SUPPLY * ppm // PPM for g, ppm in ALLOCATION_SHARES_PPM.items()}
    devs = [to_canonical_address(a) for a, _ in dev_accounts()]
    accounts = {
        RESERVE_ADDRESS: GenesisAccount(share["reserve"], "reserve"),
        _named_address("investors"): GenesisAccount(share["investors"], "investors"),
        _named_address("team"): GenesisAccount(share["team"], "team"),
        _named_address("liquidity"): GenesisAccount(share["liquidity"] - DEV_ACCOUNT_BALANCE * len(devs), "liquidity"),
    }
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
