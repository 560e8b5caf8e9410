"""Transaction gossip in batches (node/network.py): what a peer may send in a tx message."""
import pytest
import rlp
from eth_account import Account

import genesis
from node.network import TX_BATCH_BYTES, check_tx_bytes, encode_tx_batch, split_tx_message


def _raw(nonce: int) -> bytes:
    key = genesis.dev_accounts()[0][1]
    tx = {"type": 2, "chainId": genesis.devnet().chain_id, "nonce": nonce, "to": b"\x11" * 20, "value": 1,
          "gas": 21_000, "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9}
    return bytes(Account.sign_transaction(tx, key).raw_transaction)


def _legacy() -> bytes:
    key = genesis.dev_accounts()[0][1]
    tx = {"chainId": genesis.devnet().chain_id, "nonce": 0, "to": b"\x11" * 20, "value": 1, "gas": 21_000,
          "gasPrice": 10**11}
    return bytes(Account.sign_transaction(tx, key).raw_transaction)


def test_a_batch_reads_back_and_a_lone_transaction_travels_as_before():
    raws = [_raw(n) for n in range(5)] + [_legacy()]
    assert split_tx_message(encode_tx_batch(raws)) == raws
    assert encode_tx_batch(raws[:1]) == raws[0]  # one transaction: the message a node sent before batches
    assert split_tx_message(raws[0]) == [raws[0]]
    assert split_tx_message(_legacy()) == [_legacy()]  # a legacy one is an RLP list, not a batch
    assert len(encode_tx_batch([raws[0]] * (TX_BATCH_BYTES // len(raws[0])))) < 128 * 1024  # under the p2p limit


@pytest.mark.parametrize("data, why", [
    (b"", "empty"),
    (rlp.encode(rlp.encode([])), "non-empty RLP list"),
    (rlp.encode(rlp.encode([b""])), "non-empty RLP list"),
    (rlp.encode(rlp.encode([[b"\x02"]])), "non-empty RLP list"),
    (rlp.encode(rlp.encode([rlp.encode(rlp.encode([b"\x02x", b"\x02y"]))])), "non-empty RLP list"),  # nested
    (rlp.encode(b"\x02x"), "not RLP"),
    (b"\x85ab", "not RLP"),
    (rlp.encode(rlp.encode([b"\x02x"])) + b"\x00", "not RLP"),
])
def test_malformed_batches_are_refused(data, why):
    with pytest.raises(ValueError, match=why):
        check_tx_bytes(data)
