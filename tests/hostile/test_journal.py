"""The pool journal (#21 case 5): transactions sent through this node's RPC survive kill -9.

Fast: the journal's own behaviour in-process, and a few kills of a real devnet under load.
Slow (`make test-all`): 100 kills under load; its count of lost transactions is in BENCHMARKS.md."""
from __future__ import annotations

import json
import os

import pytest

import genesis
from node.chain import Node
from tests.conftest import sign
from tests.hostile import crashloop

DEV = genesis.dev_accounts()


def _open(path, **config):
    from node.mempool import PoolConfig

    node = Node.init(path, genesis.devnet())
    node.mempool.configure(PoolConfig(**config))
    node.mempool.locals.open(path / "transactions.rlp")
    return node


def test_journal_append_reload_and_rotate(tmp_path):
    from node.mempool import read_journal

    node = _open(tmp_path / "d")
    raws = [sign(DEV[1][1], n) for n in range(5)] + [sign(DEV[2][1], 0)]
    hashes = [node.mempool.add_raw(raw) for raw in raws]
    journal = tmp_path / "d" / "transactions.rlp"
    assert list(read_journal(journal)) == raws  # appended before each hash went back
    node.mempool.add_raw(sign(DEV[3][1], 0), local=False)  # not sent here: not journaled
    assert len(list(read_journal(journal))) == 6
    node.produce_block()  # mines all: nothing to re-admit, and rotation forgets them
    node.mempool.add_raw(later := sign(DEV[1][1], 5))
    node.mempool.locals.close()
    node.close()

    node = _open(tmp_path / "d")
    assert node.mempool.locals.load() == (1, 6)  # five mined + one mined from DEV[2]; one re-admitted
    assert [t.hash for t in node.mempool.pending()] == [node.mempool.decode(later).hash]
    assert list(read_journal(journal)) == [later]  # rotated: only what is still tracked
    assert hashes  # (the first five were mined)
    node.mempool.locals.close()
    node.close()


def test_journal_survives_a_torn_record_and_keeps_replacements(tmp_path):
    node = _open(tmp_path / "d")
    first = sign(DEV[1][1], 0, maxFeePerGas=3 * 10**9, maxPriorityFeePerGas=10**9)
    replacement = sign(DEV[1][1], 0, maxFeePerGas=4 * 10**9, maxPriorityFeePerGas=2 * 10**9)
    node.mempool.add_raw(first)
    node.mempool.add_raw(replacement)
    node.mempool.locals.close()
    node.close()
    journal = tmp_path / "d" / "transactions.rlp"
    with open(journal, "ab") as f:
        f.write(b"\xb8\x70" + b"\x02" * 20)  # a record cut off by a crash mid-write
    node = _open(tmp_path / "d")
    admitted, dropped = node.mempool.locals.load()
    assert [t.hash for t in node.mempool.pending()] == [node.mempool.decode(replacement).hash]
    assert len(node.mempool.locals) == 1
    node.mempool.locals.close()
    node.close()


def test_tracker_resubmits_what_the_pool_dropped(tmp_path):
    node = _open(tmp_path / "d", global_slots=20, global_queue=4, account_slots=2)
    mine = [sign(DEV[1][1], n) for n in range(12)]
    for raw in mine:
        node.mempool.add_raw(raw)
    for n in range(10):  # another account's: the pool trims the largest account, ours, to make room
        node.mempool.add_raw(sign(DEV[2][1], n), local=False)
    present = {t.hash for t in node.mempool.pending()}
    assert len(present) == 20 and node.mempool.stats["trimmed_pending"] == 2
    assert not {node.mempool.decode(r).hash for r in mine} <= present
    while len(node.mempool):
        node.produce_block()
        node.mempool.locals.recheck()
    for raw in mine:
        assert node.tx_location(node.mempool.decode(raw).hash) is not None
    node.mempool.locals.close()
    node.close()


def test_nolocals_and_no_journal(tmp_path):
    from node.app import open_journal
    from node.mempool import PoolConfig

    node = Node.init(tmp_path / "d", genesis.devnet())
    open_journal(node, PoolConfig(no_locals=True))
    node.mempool.add_raw(sign(DEV[1][1], 0))
    assert not (tmp_path / "d" / "transactions.rlp").exists() and len(node.mempool.locals) == 0
    node.close()
    node = Node.init(tmp_path / "e", genesis.devnet())
    open_journal(node, PoolConfig(journal=None))
    node.mempool.add_raw(sign(DEV[1][1], 0))
    assert len(node.mempool.locals) == 1 and not list((tmp_path / "e").glob("*.rlp"))
    node.close()


def test_a_few_kills_lose_nothing(tmp_path):
    """A real devnet under load, killed with SIGKILL three times: every hash it returned is mined."""
    result = crashloop.run(tmp_path, kills=3, senders=3, seed=5, up=(1.0, 2.0))
    assert result.kills == 3 and len(result.accepted) > 10
    assert result.lost == [], f"{len(result.lost)} of {len(result.accepted)} accepted transactions lost"
    assert any("re-admitted" in line for line in result.readmitted_lines)


@pytest.mark.slow
@pytest.mark.timeout(5400)
def test_a_hundred_kills_lose_nothing(tmp_path):
    """The issue's measurement: 100 kill -9s under a steady load of transfers (BENCHMARKS.md)."""
    result = crashloop.run(tmp_path, kills=100, senders=4, seed=21, drain_timeout=300)
    report = {"kills": result.kills, "accepted": len(result.accepted), "mined": result.mined,
              "lost": len(result.lost), "replaced": result.replaced,
              "restart_s_median": sorted(result.restart_seconds)[len(result.restart_seconds) // 2],
              "readmitted": sum(int(line.split("re-admitted ")[1].split()[0]) for line in result.readmitted_lines)}
    print("crash loop:", json.dumps(report))
    out = os.environ.get("HOSTILE_REPORT")
    if out:
        with open(out, "a") as f:
            f.write(json.dumps({"crash_loop": report}) + "\n")
    assert result.kills == 100
    assert result.lost == [], f"{len(result.lost)} of {len(result.accepted)} accepted transactions lost"


def test_a_journaled_transaction_the_pool_cannot_take_yet_stays_tracked(tmp_path):
    """Re-admission into a pool too small for the journal: what is refused for now (`txpool is
    full`) stays in the journal and is resubmitted once there is room (geth's temporary rejects)."""
    node = _open(tmp_path / "d")
    raws = [sign(DEV[i][1], 0) for i in (1, 2, 3)]
    for raw in raws:
        node.mempool.add_raw(raw)
    node.mempool.locals.close()
    node.close()
    node = _open(tmp_path / "d", global_slots=1, global_queue=1)
    assert node.mempool.locals.load() == (2, 0) and len(node.mempool) == 2
    assert len(node.mempool.locals) == 3
    node.produce_block()
    assert node.mempool.locals.recheck() == (1, 2)  # the third goes in; the two mined are forgotten
    node.produce_block()
    assert all(node.tx_location(node.mempool.decode(raw).hash) for raw in raws)
    node.mempool.locals.close()
    node.close()
