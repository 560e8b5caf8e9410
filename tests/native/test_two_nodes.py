"""Two nodes (node.chain.Node on LevelDB) agree: one produces blocks full of native-module
transactions from its mempool, the other imports them and ends on the same state root; a block
whose state root was tampered with is refused by the importer."""
import pytest
import rlp
from tests.native.conftest import OPEN, H
from eth_utils import ValidationError
from eth_account import Account

import genesis
from node.chain import Node
from node.sdk import ADDRESSES, encode_call


def _raw(key: str, nonce: int, module: str, data: bytes, value: int = 0) -> bytes:
    tx = {"type": 2, "chainId": genesis.devnet().chain_id, "nonce": nonce, "to": ADDRESSES[module], "value": value,
          "gas": 1_000_000, "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9, "data": data}
    return bytes(Account.sign_transaction(tx, key).raw_transaction)


def test_importer_reaches_the_producers_state_root(tmp_path):
    g = genesis.devnet()
    keys = [k for _, k in genesis.dev_accounts()]
    with Node.init(tmp_path / "a", g) as producer, Node.init(tmp_path / "b", g) as importer:
        batches = [
            [_raw(keys[0], 0, "Datanets", encode_call("Datanets", "createDatanet", "d", H(1), 0, "MIT", 0, 0, 10**6, [])),
             *[_raw(keys[v], 0, "Staking", encode_call("Staking", "registerValidator", 0, 1), 200 * OPEN) for v in (4, 5, 6)]],
            [_raw(keys[2], i, "Datanets", encode_call("Datanets", "contribute", 1, H(10 + i), 100)) for i in range(5)],
            [_raw(keys[0], 1 + i, "Datanets", encode_call("Datanets", "curate", 1, H(10 + i), True, 50)) for i in range(3)]
            + [_raw(keys[7], 0, "Staking", encode_call("Staking", "delegate", genesis.dev_accounts()[4][0]), OPEN)],
            [_raw(keys[0], 4, "Datanets", encode_call("Datanets", "publishVersion", 1))],
        ]
        for batch in batches:
            for raw in batch:
                producer.mempool.add_raw(raw)
            block = producer.produce_block()
            assert len(block.transactions) == len(batch)
            assert all(r.state_root == b"\x01" for r in producer.receipts(block.header))  # status: success
            copy = rlp.decode(rlp.encode(block), sedes=importer.block_class)  # as it travels between nodes
            importer.import_block(copy)
            assert importer.head().state_root == producer.head().state_root
        assert importer.head().hash == producer.head().hash
        tampered = producer.produce_block()
        bad = tampered.copy(header=tampered.header.copy(state_root=b"\x11" * 32))
        with pytest.raises(ValidationError):
            importer.import_block(bad)
        assert importer.head().block_number == producer.head().block_number - 1
