"""`ol_getCommit`, the `safe`/`finalized` tags and `eth_syncing` on a real `openledger devnet`
process (block time 0: a block per transaction, decided by the single validator's consensus),
and a kill -9 / restart on the same data dir that keeps producing blocks with commits."""
import time

from eth_utils import keccak

from consensus import Commit, Validator, ValidatorSet, verify_commit
from genesis import dev_accounts, dev_validator
from tests.conftest import sign

DEV_KEYS = [k for _, k in dev_accounts()]


def _wait_block(node, number: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while int(node.rpc("eth_blockNumber"), 16) < number:
        assert time.monotonic() < deadline, f"no block {number} within {seconds}s"
        time.sleep(0.05)


def _send(node, nonce: int) -> None:
    node.rpc("eth_sendRawTransaction", "0x" + sign(DEV_KEYS[1], nonce, to=b"\x42" * 20, value=1, gas=21_000).hex())


def test_commits_over_json_rpc_and_a_crash_restart(devnet_factory):
    node = devnet_factory(block_time=0).start()
    for nonce in range(2):
        _send(node, nonce)
        _wait_block(node, nonce + 1)
    head = node.rpc("eth_getBlockByNumber", "latest", False)
    assert node.rpc("eth_getBlockByNumber", "finalized", False)["hash"] == head["hash"]
    assert node.rpc("eth_getBlockByNumber", "safe", False)["hash"] == head["hash"]
    assert node.rpc("eth_syncing") is False

    validator = bytes.fromhex(dev_validator()[0][2:])
    one = node.rpc("ol_getCommit", "0x1")
    assert one["height"] == "0x1" and one["blockHash"] == node.rpc("eth_getBlockByNumber", "0x1", False)["hash"]
    assert [s["validator"] for s in one["signatures"]] == [dev_validator()[0]]
    commit = Commit.decode(bytes.fromhex(one["rlp"][2:]))
    assert one["hash"] == "0x" + keccak(bytes.fromhex(one["rlp"][2:])).hex() == "0x" + commit.hash().hex()
    # block 2 commits to it: a wallet-visible header field carries the hash, extraData the signers
    two = node.rpc("eth_getBlockByNumber", "0x2", False)
    assert two["parentBeaconBlockRoot"] == one["hash"] and two["extraData"] == "0x01" and one["canonical"] is True
    assert verify_commit(ValidatorSet([Validator(validator, 1)]), int(node.rpc("eth_chainId"), 16), 1,
                         bytes.fromhex(one["blockHash"][2:]), commit) == (validator,)
    latest = node.rpc("ol_getCommit", "latest")
    assert latest["height"] == "0x2" and latest["canonical"] is False  # no block 3 yet to name it
    assert node.rpc("ol_getCommit", "0x0") is None  # genesis was not decided by anyone
    err = node.post('{"jsonrpc":"2.0","id":1,"method":"ol_getCommit","params":["0x99"]}')
    assert err["error"]["message"] == "header not found"
    err = node.post('{"jsonrpc":"2.0","id":1,"method":"ol_getCommit","params":["soon"]}')
    assert err["error"]["code"] == -32602

    node.kill()  # kill -9 between blocks: the signer state and the chain are on disk
    node.start()
    _send(node, 2)
    _wait_block(node, 3)
    three = node.rpc("eth_getBlockByNumber", "0x3", False)
    assert three["parentBeaconBlockRoot"] == node.rpc("ol_getCommit", "0x2")["hash"]
    assert node.rpc("ol_getCommit", "0x3")["height"] == "0x3"
