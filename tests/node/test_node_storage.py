"""LevelDB storage: py-evm's atomic DB API over plyvel, and whole-block atomic commits."""
import pytest
from eth.db.chain import ChainDB
from eth.exceptions import HeaderNotFound

import genesis
from node.chain import Node
from node.storage import LevelDB


def test_get_set_delete_and_reopen(tmp_path) -> None:
    db = LevelDB(tmp_path / "db")
    db[b"a"] = b"1"
    assert db[b"a"] == b"1" and db.exists(b"a") and b"b" not in db
    with pytest.raises(KeyError):
        db[b"b"]
    with pytest.raises(KeyError):
        del db[b"b"]
    db.set(b"b", b"2")
    db.delete(b"a")
    db.close()
    db = LevelDB(tmp_path / "db")
    assert db.get(b"b") == b"2" and not db.exists(b"a")
    db.close()


def test_atomic_batch_commits_all_or_nothing(tmp_path) -> None:
    db = LevelDB(tmp_path / "db")
    db[b"keep"] = b"old"
    db[b"gone"] = b"x"
    with pytest.raises(RuntimeError):
        with db.atomic_batch() as batch:
            batch[b"new"] = b"1"
            batch[b"keep"] = b"changed"
            del batch[b"gone"]
            assert batch[b"new"] == b"1" and b"gone" not in batch  # visible inside the batch
            assert b"new" not in db  # not outside it
            raise RuntimeError("abort")
    assert b"new" not in db and db[b"keep"] == b"old" and db[b"gone"] == b"x"
    with db.atomic_batch() as batch:
        batch[b"new"] = b"1"
        batch[b"keep"] = b"changed"
        del batch[b"gone"]
        with pytest.raises(KeyError):
            del batch[b"never"]
    db.close()
    db = LevelDB(tmp_path / "db")
    assert db[b"new"] == b"1" and db[b"keep"] == b"changed" and b"gone" not in db
    db.close()


def test_a_block_that_fails_mid_commit_leaves_no_trace(node, dev_accounts, sign_tx) -> None:
    tx_hash = node.mempool.add_raw(sign_tx(dev_accounts[1][1], 0))

    def failing_index(batch, block, receipts):
        raise OSError("disk full")

    node.index_writers.append(failing_index)
    with pytest.raises(OSError):
        node.produce_block()
    assert node.head().block_number == 0
    chaindb = ChainDB(node._db)
    with pytest.raises(HeaderNotFound):
        chaindb.get_canonical_block_header_by_number(1)
    assert chaindb.get_canonical_head().block_number == 0
    assert node.tx_location(tx_hash) is None and node.mempool.get(tx_hash) is not None
    sender = bytes.fromhex(dev_accounts[1][0][2:])
    assert node.state_at(node.head()).get_nonce(sender) == 0
    node.index_writers.remove(failing_index)
    block = node.produce_block()
    assert node.tx_location(tx_hash) == (1, 0) and block.transactions[0].hash == tx_hash


def test_chain_survives_reopen(tmp_path, dev_accounts, sign_tx) -> None:
    with Node.init(tmp_path / "d", genesis.devnet()) as n:
        n.mempool.add_raw(sign_tx(dev_accounts[2][1], 0, value=7))
        head = n.produce_block().header
    with Node.open(tmp_path / "d") as n:
        assert n.head() == head
        assert n.state_at(head).get_balance(b"\x11" * 20) == 7
        assert len(n.receipts(head)) == 1
