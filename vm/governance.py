"""GOPEN, the OPEN Timelock and the OPEN Governor as genesis predeploys.

OpenZeppelin's contracts set immutables and storage in their constructors (the token address, the
EIP-712 domain, roles, settings), so copying runtime bytecode into the genesis alloc would leave
them unset. Instead the creation code (vm/governance.json, rebuilt byte for byte from source by
tests/governance/build.py) runs once in an in-memory py-evm state with the chain's id, at the fixed
addresses of `genesis.governance`, and the resulting code and storage become genesis accounts.
"""
from __future__ import annotations

import functools
import json
import pathlib

from eth.chains.base import MiningChain
from eth.constants import CREATE_CONTRACT_ADDRESS, ZERO_ADDRESS
from eth.db.atomic import AtomicDB
from eth.vm.forks.prague import PragueVM
from eth.vm.message import Message
from eth_abi import encode

from genesis import Account, Genesis
from genesis.governance import GOPEN_ADDRESS, GOVERNOR_ADDRESS, TIMELOCK_ADDRESS, Governance

ARTIFACT = pathlib.Path(__file__).with_name("governance.json")
_DEPLOY_GAS = 30_000_000


@functools.cache
def artifact() -> dict:
    """{solc, openzeppelin, settings, contracts: {GOPEN|OpenTimelock|OpenGovernor: {abi, bytecode}}}."""
    return json.loads(ARTIFACT.read_text())


def abi(name: str) -> list:
    return artifact()["contracts"][name]["abi"]


def _creation(name: str, types: list[str], args: list) -> bytes:
    return bytes.fromhex(artifact()["contracts"][name]["bytecode"][2:]) + encode(types, args)


class PredeployError(RuntimeError):
    """A governance constructor reverted: the genesis settings are unusable."""


@functools.lru_cache(maxsize=8)
def predeploy_accounts(chain_id: int, settings: Governance) -> dict[bytes, Account]:
    """Code and storage of GOPEN, the Timelock and the Governor after their constructors ran."""
    chain = MiningChain.configure(vm_configuration=((0, PragueVM),), chain_id=chain_id).from_genesis(
        AtomicDB(), {"difficulty": 0, "gas_limit": _DEPLOY_GAS, "timestamp": 0}, {})
    state = chain.get_vm().state
    written: dict[bytes, set[int]] = {}
    set_storage = state.set_storage

    def recording_set_storage(address: bytes, slot: int, value: int) -> None:
        written.setdefault(address, set()).add(slot)
        set_storage(address, slot, value)

    state.set_storage = recording_set_storage  # the storage slots to copy are the ones written
    deploys = (
        (GOPEN_ADDRESS, _creation("GOPEN", [], [])),
        (TIMELOCK_ADDRESS, _creation("OpenTimelock", ["uint256", "address[]", "address[]", "address"],
                                     [settings.timelock_delay_s, [GOVERNOR_ADDRESS], [ZERO_ADDRESS], ZERO_ADDRESS])),
        (GOVERNOR_ADDRESS, _creation("OpenGovernor", ["address", "address", "uint48", "uint32", "uint256", "uint256"],
                                     [GOPEN_ADDRESS, TIMELOCK_ADDRESS, settings.voting_delay_blocks,
                                      settings.voting_period_blocks, settings.proposal_threshold,
                                      settings.quorum_percent])),
    )
    for address, code in deploys:
        message = Message(gas=_DEPLOY_GAS, to=CREATE_CONTRACT_ADDRESS, sender=ZERO_ADDRESS, value=0, data=b"",
                          code=code, create_address=address)
        context = state.get_transaction_context_class()(gas_price=0, origin=ZERO_ADDRESS)
        computation = state.computation_class.apply_create_message(state, message, context)
        if computation.is_error:
            raise PredeployError(f"governance predeploy at 0x{address.hex()} failed: {computation.error!r}")
    return {
        address: Account(0, nonce=1, code=state.get_code(address),
                         storage={slot: state.get_storage(address, slot) for slot in sorted(written.get(address, ()))
                                  if state.get_storage(address, slot)})
        for address, _ in deploys
    }


def genesis_accounts(genesis: Genesis) -> dict[bytes, Account]:
    """The predeploys for `genesis` (none when it has no governance settings)."""
    if genesis.governance is None:
        return {}
    return predeploy_accounts(genesis.chain_id, genesis.governance)
