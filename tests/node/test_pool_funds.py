"""The pool counts a sender's funds over all its pooled transactions (pending and queued), and
that count follows replacements, removals and mined blocks."""
from eth_account import Account

from node.mempool import TxPoolError

GWEI = 10**9
FEE = 21_000 * 3 * GWEI  # gas * maxFeePerGas of conftest's sign()


def _admitted(node, raw: bytes) -> bool:
    try:
        node.mempool.add_raw(raw)
        return True
    except TxPoolError as e:
        assert e.message.startswith("insufficient funds for gas * price + value"), e.message
        return False


def test_funds_are_counted_over_pooled_transactions_as_they_change(node, dev_accounts, sign_tx) -> None:
    funder, account = dev_accounts[1][1], Account.create()
    budget = 10 * (FEE + 10**15)  # exactly ten transfers of 10**15 wei
    node.mempool.add_raw(sign_tx(funder, 0, to=account.address, value=budget))
    node.produce_block()
    spend = [sign_tx(account.key, n, value=10**15) for n in range(10)]
    assert all(_admitted(node, raw) for raw in spend[:9])
    assert not _admitted(node, sign_tx(account.key, 9, value=10**15 + 1))  # one wei over
    assert _admitted(node, spend[9])
    assert not _admitted(node, sign_tx(account.key, 11, value=0))  # queued ones count too
    # a replacement is counted instead of the transaction it replaces
    cheaper = sign_tx(account.key, 9, value=0, maxFeePerGas=int(3.3 * GWEI), maxPriorityFeePerGas=int(1.1 * GWEI))
    assert _admitted(node, cheaper)
    freed = 10**15 + FEE - 21_000 * int(3.3 * GWEI)
    assert not _admitted(node, sign_tx(account.key, 10, value=freed - FEE + 1))
    assert _admitted(node, sign_tx(account.key, 10, value=freed - FEE))  # exactly what the replacement freed
    # a removed transaction stops counting (the later ones, sent back to the queue, still count)
    node.mempool.remove(node.mempool.content()[bytes.fromhex(account.address[2:])][5].hash)
    assert not _admitted(node, sign_tx(account.key, 11, value=10**15 + 1))
    assert _admitted(node, sign_tx(account.key, 11, value=10**15))
    # mined transactions stop counting: the state balance has paid for them
    node.produce_block()
    assert len(node.mempool) == 6  # nonces 0-4 mined; 6-11 queued behind the removed 5
    assert _admitted(node, sign_tx(account.key, 5, value=0))
