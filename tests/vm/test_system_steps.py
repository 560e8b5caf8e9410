"""Block production runs the system steps block import runs (EIP-4788 beacon root, EIP-2935
parent hash, EIP-7002/7251 requests), so on a genesis with the Prague system contracts a built
block re-imports on another chain with the same state root and requests hash."""
import dataclasses
import hashlib
import time

from eth.db.atomic import AtomicDB
from eth.vm.forks.cancun.constants import BEACON_ROOTS_ADDRESS, HISTORY_BUFFER_LENGTH
from eth.vm.forks.prague.constants import (
    HISTORY_SERVE_WINDOW, HISTORY_STORAGE_ADDRESS, WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS, WITHDRAWAL_REQUEST_TYPE,
)
from eth_utils import to_canonical_address, to_checksum_address

import genesis
import vm
from genesis.system import system_accounts

COINBASE = to_canonical_address(genesis.dev_accounts()[0][0])
EMPTY_REQUESTS_HASH = hashlib.sha256().digest()  # EIP-7685: no requests of any type


def _with_system_contracts():
    g = genesis.devnet()
    return dataclasses.replace(g, accounts={**g.accounts, **system_accounts()})


def _chain(g):
    return vm.build_chain_class(g).from_genesis(AtomicDB(), vm.genesis_params(g), vm.genesis_state(g))


def test_built_blocks_run_the_system_steps_and_reimport(dev_accounts, sign_tx) -> None:
    g = _with_system_contracts()
    producer, follower = _chain(g), _chain(g)
    decode = producer.get_vm().get_transaction_builder().decode
    key = dev_accounts[1][1]
    # a withdrawal request: 48-byte validator key + 8-byte amount, paying the queue's fee (1 wei when empty)
    pubkey, amount = b"\xaa" * 48, (5).to_bytes(8, "big")
    request = decode(sign_tx(key, 0, to=to_checksum_address(WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS), value=1,
                             data="0x" + (pubkey + amount).hex(), gas=200_000))
    start = int(time.time())
    blocks = []
    for i, txs in enumerate(([request], [decode(sign_tx(key, 1))], [])):
        block, receipts = vm.build_block(producer, txs, start + i, COINBASE)
        assert [r.state_root for r in receipts] == [b"\x01"] * len(txs)  # each succeeded
        imported, _ = vm.import_block(follower, block)
        assert imported.header == block.header
        blocks.append(block)
    assert follower.get_canonical_head().state_root == producer.get_canonical_head().state_root
    # the request was dequeued by the end-of-block system call into the header's requests hash
    source = to_canonical_address(dev_accounts[1][0])
    requests = [WITHDRAWAL_REQUEST_TYPE + source + pubkey + amount[::-1]]  # the queue writes the amount little-endian
    assert blocks[0].header.requests_hash == _requests_hash(requests)
    assert [b.header.requests_hash for b in blocks[1:]] == [EMPTY_REQUESTS_HASH] * 2
    state = producer.get_vm(blocks[-1].header).state
    for block in blocks:
        number, timestamp = block.number, block.header.timestamp
        assert state.get_storage(HISTORY_STORAGE_ADDRESS, (number - 1) % HISTORY_SERVE_WINDOW) == \
            int.from_bytes(block.header.parent_hash, "big")
        assert state.get_storage(BEACON_ROOTS_ADDRESS, timestamp % HISTORY_BUFFER_LENGTH) == timestamp


def _requests_hash(requests: list[bytes]) -> bytes:
    outer = hashlib.sha256()
    for r in requests:
        outer.update(hashlib.sha256(r).digest())
    return outer.digest()


def test_a_devnet_without_the_contracts_builds_the_same_blocks_as_before(dev_accounts, sign_tx) -> None:
    """Without the system contracts the steps change nothing: empty requests, untouched addresses."""
    g = genesis.devnet()
    chain = _chain(g)
    tx = chain.get_vm().get_transaction_builder().decode(sign_tx(dev_accounts[1][1], 0))
    block, _ = vm.build_block(chain, [tx], int(time.time()), COINBASE)
    assert block.header.requests_hash == EMPTY_REQUESTS_HASH
    state = chain.get_vm(block.header).state
    assert [state.get_code(a) for a in system_accounts()] == [b""] * 4
    assert state.get_storage(HISTORY_STORAGE_ADDRESS, 0) == 0
    vm.import_block(_chain(g), block)
