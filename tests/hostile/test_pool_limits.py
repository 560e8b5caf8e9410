"""The pool's limits are go-ethereum's (#11 item 3): no cap on one account's executable
transactions (was 1,024), `--txpool.globalslots` 5120 and `--txpool.globalqueue` 1024 for all,
`--txpool.accountslots` / `--txpool.accountqueue` per account, and the largest accounts trimmed
first, levelled together, when the executable ones pass the global limit (truncatePending);
queued ones past the global limit are dropped from the accounts heard from longest ago."""
from __future__ import annotations

import json
import time

import pytest
from eth_account import Account

import genesis
from node.chain import Node
from node.cli import build_parser
from tests.conftest import sign
from tests.hostile.conftest import body, http, post

DEV = genesis.dev_accounts()


@pytest.fixture
def pool_node(tmp_path):
    node = Node.init(tmp_path / "d", genesis.devnet())
    yield node
    node.close()


def _count(node, index: int) -> int:
    return len(node.mempool.content().get(bytes.fromhex(DEV[index][0][2:]), []))


def test_defaults_are_geths():
    from node.cli.chain import _pool_config
    from node.mempool import PoolConfig

    assert PoolConfig() == PoolConfig(account_slots=16, global_slots=5120, account_queue=64, global_queue=1024)
    args = build_parser().parse_args(["run", "--datadir", "d", "--txpool.globalslots", "100", "--txpool.accountslots",
                                      "4", "--txpool.globalqueue", "7", "--txpool.accountqueue", "3", "--txpool.nolocals",
                                      "--txpool.journal", "j.rlp", "--txpool.rejournal", "30m"])
    assert _pool_config(args) == PoolConfig(account_slots=4, global_slots=100, account_queue=3, global_queue=7,
                                            journal="j.rlp", rejournal=1800.0, no_locals=True)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["devnet", "--txpool.globalslots", "0"])


def test_largest_accounts_are_trimmed_first_and_levelled(pool_node):
    from node.mempool import PoolConfig

    node = pool_node
    node.mempool.configure(PoolConfig(global_slots=100, account_slots=16))
    for n in range(80):
        node.mempool.add_raw(sign(DEV[1][1], n))
    for n in range(40):
        node.mempool.add_raw(sign(DEV[2][1], n))
    assert (_count(node, 1), _count(node, 2)) == (60, 40)  # the largest gave way until the total fit
    for n in range(10):
        node.mempool.add_raw(sign(DEV[3][1], n))
    # the largest keeps giving way while it is larger than the next; the small one keeps all it sent
    assert (_count(node, 1), _count(node, 2), _count(node, 3)) == (50, 40, 10)
    for n in range(10, 30):  # once the two are level they are trimmed together
        node.mempool.add_raw(sign(DEV[3][1], n))
    assert (_count(node, 1), _count(node, 2), _count(node, 3)) == (35, 35, 30)
    assert node.mempool.counts() == (100, 0) and node.mempool.stats["trimmed_pending"] == 50
    # nonces stay contiguous: each account lost its highest ones
    for index in (1, 2):
        nonces = [t.nonce for t in node.mempool.content()[bytes.fromhex(DEV[index][0][2:])]]
        assert nonces == list(range(len(nonces)))


def test_trimming_stops_at_account_slots(pool_node):
    from node.mempool import PoolConfig

    node = pool_node
    node.mempool.configure(PoolConfig(global_slots=20, account_slots=8))
    for index in (1, 2, 3):
        for n in range(8):
            node.mempool.add_raw(sign(DEV[index][1], n))
    # 24 executable, over the 20 slots, but nobody holds more than account_slots: geth keeps them
    assert node.mempool.counts() == (24, 0)


def test_queue_over_the_global_limit_drops_the_oldest_accounts(pool_node):
    from node.mempool import PoolConfig

    node = pool_node
    node.mempool.configure(PoolConfig(global_queue=10, account_queue=8))
    for n in range(1, 7):
        node.mempool.add_raw(sign(DEV[1][1], n))  # heard from first
    time.sleep(0.01)
    for n in range(1, 7):
        node.mempool.add_raw(sign(DEV[2][1], n))
    queued = node.mempool.queued()
    assert len(queued[bytes.fromhex(DEV[1][0][2:])]) == 4 and len(queued[bytes.fromhex(DEV[2][0][2:])]) == 6
    assert [t.nonce for t in queued[bytes.fromhex(DEV[1][0][2:])]] == [1, 2, 3, 4]  # highest nonces went
    assert node.mempool.counts() == (0, 10)


def test_full_pool_a_future_transaction_does_not_push_out_an_executable_one(pool_node):
    from node.mempool import PoolConfig

    node = pool_node
    node.mempool.configure(PoolConfig(global_slots=2, global_queue=1))
    node.mempool.add_raw(sign(DEV[1][1], 0))
    node.mempool.add_raw(sign(DEV[2][1], 0))
    node.mempool.add_raw(sign(DEV[3][1], 0))
    with pytest.raises(Exception) as info:
        node.mempool.add_raw(sign(DEV[4][1], 5, maxPriorityFeePerGas=2 * 10**9))
    assert info.value.message == "future transaction tries to replace pending"


def test_one_sender_thousands_in_flight_over_rpc(node):
    """#11: `account limit exceeded` at 1,024 before; anvil and geth accept thousands."""
    account = Account.create()
    funder = DEV[8]
    nonce = int(node.rpc("eth_getTransactionCount", funder[0], "pending"), 16)
    tx_hash = node.rpc("eth_sendRawTransaction", "0x" + sign(funder[1], nonce, to=account.address, value=10**20).hex())
    deadline = time.monotonic() + 60
    while node.rpc("eth_getTransactionReceipt", tx_hash) is None:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    raws = [sign(account.key, n, value=1) for n in range(1500)]
    accepted = 0
    for start in range(0, len(raws), 500):
        batch = [{"jsonrpc": "2.0", "id": n, "method": "eth_sendRawTransaction", "params": ["0x" + r.hex()]}
                 for n, r in enumerate(raws[start:start + 500], start)]
        status, _, answer = http(node, post(body(batch)), timeout=300)
        answers = json.loads(answer)
        errors = [a["error"] for a in answers if "error" in a]
        assert not errors, errors[:3]
        accepted += len(answers)
    assert accepted == 1500
    deadline = time.monotonic() + 300
    while int(node.rpc("eth_getTransactionCount", account.address, "latest"), 16) < 1500:
        assert time.monotonic() < deadline, "not all mined"
        time.sleep(1)
