"""The node as a real process: `openledger devnet` over HTTP, restarts, and SIGKILL crash safety."""
import random
import threading
import time

import pytest

GWEI = 10**9


def test_devnet_serves_a_wallet_and_restarts_on_its_data(devnet_factory, dev_accounts, sign_tx) -> None:
    from web3 import Web3

    devnet = devnet_factory(block_time=0).start()  # automine
    w3 = Web3(Web3.HTTPProvider(devnet.url))
    assert w3.eth.chain_id == 7167
    alice, bob = dev_accounts[1][0], "0x" + "22" * 20
    tx_hash = w3.eth.send_raw_transaction(sign_tx(dev_accounts[1][1], 0, to=bob, value=12345))
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=20)
    assert receipt.status == 1 and w3.eth.get_balance(bob) == 12345
    assert w3.eth.get_transaction_count(alice) == 1
    devnet.stop()
    devnet.start()
    assert w3.eth.get_transaction_receipt(tx_hash).blockHash == receipt.blockHash
    assert w3.eth.get_balance(bob) == 12345


def _sender(devnet, sign, seen, stop):
    """Send transfers and collect every receipt a client saw: tx hash -> block hash."""
    nonce = int(devnet.rpc("eth_getTransactionCount", sign.address, "pending"), 16)
    sent = []
    while not stop.is_set():
        try:
            sent.append(devnet.rpc("eth_sendRawTransaction", "0x" + sign(nonce).hex(), timeout=2))
            nonce += 1
            for h in list(sent):
                r = devnet.rpc("eth_getTransactionReceipt", h, timeout=2)
                if r is not None:
                    seen[h] = r["blockHash"]
                    sent.remove(h)
        except (OSError, AssertionError):
            return  # the node was killed under us
        time.sleep(0.02)


def _check_chain(devnet, seen) -> int:
    head = int(devnet.rpc("eth_blockNumber"), 16)
    parent = None
    for n in range(head + 1):
        block = devnet.rpc("eth_getBlockByNumber", hex(n), True)
        assert block is not None, f"block {n} of {head} missing"
        assert parent is None or block["parentHash"] == parent, f"block {n} does not link to its parent"
        parent = block["hash"]
        for tx in block["transactions"]:
            receipt = devnet.rpc("eth_getTransactionReceipt", tx["hash"])
            assert receipt is not None and receipt["blockHash"] == block["hash"], f"receipt of {tx['hash']} missing"
            assert devnet.rpc("eth_getTransactionByHash", tx["hash"])["blockNumber"] == hex(n)
    for tx_hash, block_hash in seen.items():
        receipt = devnet.rpc("eth_getTransactionReceipt", tx_hash)
        assert receipt is not None and receipt["blockHash"] == block_hash, f"receipt {tx_hash} a client saw is gone"
    return head


class _Signer:
    def __init__(self, account, sign_tx) -> None:
        self.address, self._key, self._sign = account[0], account[1], sign_tx

    def __call__(self, nonce: int) -> bytes:
        return self._sign(self._key, nonce)


def _crash_loop(devnet_factory, dev_accounts, sign_tx, kills: int) -> None:
    rng = random.Random(7)
    devnet = devnet_factory(block_time=0.2)
    seen: dict[str, str] = {}
    heads = []
    for round_ in range(kills):
        devnet.start()
        heads.append(_check_chain(devnet, seen))
        stop = threading.Event()
        signer = _Signer(dev_accounts[1 + round_ % 2], sign_tx)
        worker = threading.Thread(target=_sender, args=(devnet, signer, seen, stop))
        worker.start()
        time.sleep(rng.uniform(0.3, 1.5))
        devnet.kill()
        stop.set()
        worker.join()
    devnet.start()
    heads.append(_check_chain(devnet, seen))
    assert heads == sorted(heads) and heads[-1] > 0 and seen, (heads, len(seen))


def test_sigkill_at_random_moments_keeps_a_consistent_chain(devnet_factory, dev_accounts, sign_tx) -> None:
    _crash_loop(devnet_factory, dev_accounts, sign_tx, kills=5)


@pytest.mark.slow
def test_sigkill_twenty_times(devnet_factory, dev_accounts, sign_tx) -> None:
    _crash_loop(devnet_factory, dev_accounts, sign_tx, kills=20)
