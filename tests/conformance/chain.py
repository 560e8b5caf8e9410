"""The execution-apis test chain (genesis.json + chain.rlp) loaded into an in-memory py-evm chain.

Shared by the genesis and tracing tests, which need the chain but not a node process."""
import functools
import json
import pathlib

import rlp
from eth.db.atomic import AtomicDB
from rlp.codec import consume_item

import genesis
import vm
from genesis import geth

FIXTURES = pathlib.Path(__file__).resolve().parents[3] / "shared" / "conformance" / "execution-apis"
TESTS = FIXTURES / "tests"


def raw_blocks() -> list[bytes]:
    """chain.rlp split into its concatenated RLP blocks."""
    data = (TESTS / "chain.rlp").read_bytes()
    blocks, pos = [], 0
    while pos < len(data):
        _, _, end = consume_item(data, pos)
        blocks.append(data[pos:end])
        pos = end
    return blocks


def resolved_genesis() -> genesis.Genesis:
    raw = json.loads((TESTS / "genesis.json").read_text())
    return geth.resolve_forks(geth.from_geth(raw), (geth.HeaderFields.from_block_rlp(b) for b in raw_blocks()))


@functools.lru_cache(maxsize=1)
def imported_chain():
    """An in-memory chain holding all of chain.rlp (about 1 s)."""
    g = resolved_genesis()
    chain = vm.build_chain_class(g).from_genesis(AtomicDB(), vm.genesis_params(g), vm.genesis_state(g))
    for raw in raw_blocks():
        number = geth.HeaderFields.from_block_rlp(raw).block_number
        block = rlp.decode(raw, sedes=chain.get_vm_class_for_block_number(number).get_block_class())
        chain.import_block(block)
    return chain
