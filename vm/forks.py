"""Chain classes for Ethereum chains imported from a go-ethereum genesis: py-evm's mainnet VM
classes by block number, as `genesis.forks` schedules them.

Proof-of-work seals are not checked before the merge (`NoProofConsensus`): an imported chain is
trusted history whose state roots, receipts and gas are still verified block by block. Our own
chains do not come here: `vm.chain.build_chain_class` gives them our Prague VM from block 0.
"""
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from eth.abc import VirtualMachineAPI
from eth.chains.base import MiningChain
from eth.consensus.noproof import NoProofConsensus
from eth.vm.forks import (
    ArrowGlacierVM, BerlinVM, ByzantiumVM, CancunVM, ConstantinopleVM, FrontierVM, GrayGlacierVM, HomesteadVM,
    IstanbulVM, LondonVM, MuirGlacierVM, ParisVM, PetersburgVM, PragueVM, ShanghaiVM, SpuriousDragonVM,
    TangerineWhistleVM,
)

VM_CLASSES: Mapping[str, type[VirtualMachineAPI]] = MappingProxyType({
    "frontier": FrontierVM,
    "homestead": HomesteadVM,
    "tangerine-whistle": TangerineWhistleVM,
    "spurious-dragon": SpuriousDragonVM,
    "byzantium": ByzantiumVM,
    "constantinople": ConstantinopleVM,
    "petersburg": PetersburgVM,
    "istanbul": IstanbulVM,
    "muir-glacier": MuirGlacierVM,
    "berlin": BerlinVM,
    "london": LondonVM,
    "arrow-glacier": ArrowGlacierVM,
    "gray-glacier": GrayGlacierVM,
    "paris": ParisVM,
    "shanghai": ShanghaiVM,
    "cancun": CancunVM,
    "prague": PragueVM,
})
"""py-evm fork name -> VM class (the names `genesis.geth` produces)."""

POST_MERGE = frozenset({"paris", "shanghai", "cancun", "prague"})


def build_ethereum_chain_class(genesis: Any) -> type[MiningChain]:
    """A MiningChain class running `genesis.forks` with py-evm's mainnet VMs."""
    eth = genesis.ethereum
    configuration = []
    for number, name in genesis.forks:
        try:
            vm_class = VM_CLASSES[name]
        except KeyError:
            raise ValueError(f"unknown fork {name!r} in the fork schedule") from None
        overrides: dict[str, Any] = {}
        if name not in POST_MERGE:
            overrides["consensus_class"] = NoProofConsensus
        if name == "homestead":
            overrides["support_dao_fork"] = bool(eth.dao_fork_support and eth.dao_fork_block is not None)
            if eth.dao_fork_block is not None:
                overrides["_dao_fork_block_number"] = eth.dao_fork_block
        configuration.append((number, vm_class.configure(**overrides) if overrides else vm_class))
    return MiningChain.configure(__name__="EthereumChain", vm_configuration=tuple(configuration),
                                 chain_id=genesis.chain_id)


def ethereum_genesis_params(genesis: Any) -> dict[str, Any]:
    """Header fields of block 0 as the go-ethereum genesis gives them."""
    eth = genesis.ethereum
    params = {
        "coinbase": eth.coinbase,
        "difficulty": eth.difficulty,
        "gas_limit": genesis.gas_limit,
        "timestamp": genesis.timestamp,
        "extra_data": genesis.extra_data,
        "mix_hash": eth.mix_hash,
        "nonce": eth.nonce,
    }
    if eth.base_fee is not None:
        params["base_fee_per_gas"] = eth.base_fee
    return params
