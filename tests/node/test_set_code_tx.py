"""EIP-7702 (type-4) transactions through the pool, the block builder and the JSON-RPC read path
of an in-process node, with eth-account's `sign_authorization` and web3.py."""
import pytest
import rlp
from eth_account import Account
from eth_keys import keys
from eth_utils import to_canonical_address
from hexbytes import HexBytes
from web3.exceptions import TransactionNotFound

import genesis
from node.chain import Node
from tests.node.serving import web3_for
from tests.rpc.nodes import call

GWEI = 10**9
DEV = genesis.dev_accounts()
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
STORE_ADDRESS = "0x63305f55005f526004601cf3"  # runtime ADDRESS PUSH0 SSTORE STOP: slot 0 := self
PAY_CALLER_ALL = "0x685f5f5f5f47335af1005f5260096017f3"  # runtime CALL(gas, CALLER, SELFBALANCE)


@pytest.fixture
def served(tmp_path):
    with Node.init(tmp_path / "data", genesis.devnet()) as node, web3_for(node) as w3:
        yield node, w3


def _raw(w3, key: str, nonce: int, **fields) -> bytes:
    tx = {"type": 2, "chainId": w3.eth.chain_id, "nonce": nonce, "value": 0, "gas": 200_000,
          "maxFeePerGas": 10 * GWEI, "maxPriorityFeePerGas": GWEI, **fields}
    return bytes(Account.sign_transaction(tx, key).raw_transaction)


def _deploy(node, w3, init_code: str) -> str:
    sender = DEV[9]
    tx_hash = w3.eth.send_raw_transaction(_raw(w3, sender[1], w3.eth.get_transaction_count(sender[0]), data=init_code))
    node.produce_block()
    return w3.eth.get_transaction_receipt(tx_hash)["contractAddress"]


def _authorize(w3, key: str, delegate: str, nonce: int = 0, chain_id: int | None = None):
    return Account.sign_authorization(
        {"chainId": w3.eth.chain_id if chain_id is None else chain_id, "address": delegate, "nonce": nonce}, key)


def test_a_delegation_sets_the_code_and_runs_in_the_authority(served, tmp_path) -> None:
    node, w3 = served
    delegate = _deploy(node, w3, STORE_ADDRESS)
    authority = Account.create()  # no funds: the sponsor pays
    auth = _authorize(w3, authority.key, delegate)
    tx_hash = w3.eth.send_raw_transaction(
        _raw(w3, DEV[1][1], 0, type=4, to=authority.address, authorizationList=[auth]))
    pending = w3.eth.get_transaction(tx_hash)
    assert pending["type"] == 4 and pending["blockNumber"] is None
    block = node.produce_block()
    assert w3.eth.get_code(authority.address) == HexBytes("0xef0100" + delegate[2:].lower())
    # the delegated code ran in the authority's account, in the same transaction
    assert w3.eth.get_storage_at(authority.address, 0) == HexBytes("0x" + "00" * 12 + authority.address[2:].lower())
    assert w3.eth.get_transaction_count(authority.address) == 1
    mined = w3.eth.get_transaction(tx_hash)
    assert mined["blockNumber"] == block.number and mined["type"] == 4
    assert [dict(a) for a in mined["authorizationList"]] == [{
        "chainId": w3.eth.chain_id, "address": delegate, "nonce": 0, "yParity": auth.y_parity, "r": auth.r,
        "s": auth.s}]
    assert w3.eth.get_block(block.number, True)["transactions"] == [mined]
    receipt = w3.eth.get_transaction_receipt(tx_hash)
    assert receipt["type"] == 4 and receipt["status"] == 1
    assert w3.eth.get_block_receipts(block.number) == [receipt]
    with Node.init(tmp_path / "other", genesis.devnet()) as other:  # a second node imports both blocks
        for number in range(1, block.number + 1):
            other.import_block(node.block_by_number(number))
        assert other.head().state_root == node.head().state_root


def test_a_bad_authorization_is_skipped_not_the_transaction(served) -> None:
    """EIP-7702: an authorization that does not verify is skipped; the others apply."""
    node, w3 = served
    delegate = "0x" + "33" * 20
    high_s, other_chain, stale, good = (Account.create() for _ in range(4))
    malleable = _authorize(w3, high_s.key, delegate)
    list_ = [
        {"chainId": malleable.chain_id, "address": delegate, "nonce": 0, "yParity": 1 - malleable.y_parity,
         "r": malleable.r, "s": SECP256K1_N - malleable.s},  # the same signature with s above n/2
        _authorize(w3, other_chain.key, delegate, chain_id=w3.eth.chain_id + 1),
        _authorize(w3, stale.key, delegate, nonce=1),
        _authorize(w3, good.key, delegate),
    ]
    tx_hash = w3.eth.send_raw_transaction(_raw(w3, DEV[1][1], 0, type=4, to=DEV[2][0], authorizationList=list_))
    node.produce_block()
    assert w3.eth.get_transaction_receipt(tx_hash)["status"] == 1
    assert [w3.eth.get_code(a.address) for a in (high_s, other_chain, stale)] == [b"", b"", b""]
    assert [w3.eth.get_transaction_count(a.address) for a in (high_s, other_chain, stale)] == [0, 0, 0]
    assert w3.eth.get_code(good.address) == HexBytes("0xef0100" + "33" * 20)
    assert len(w3.eth.get_transaction(tx_hash)["authorizationList"]) == 4


def _set_code_raw(node, key: str, to: bytes, authorizations: list, nonce: int = 0) -> str:
    """A signed type-4 transaction built with py-evm, which signs what eth-account refuses to."""
    builder = node.evm_chain().get_vm_class_for_block_number(1).get_transaction_builder()
    unsigned = builder.new_unsigned_set_code_transaction(
        chain_id=node.chain_id, nonce=nonce, max_priority_fee_per_gas=GWEI, max_fee_per_gas=10 * GWEI,
        gas=200_000, to=to, value=0, data=b"", access_list=[], authorization_list=authorizations)
    return "0x" + unsigned.as_signed_transaction(keys.PrivateKey(HexBytes(key))).encode().hex()


def test_malformed_set_code_transactions_are_refused(served) -> None:
    node, w3 = served
    auth = _authorize(w3, Account.create().key, "0x" + "33" * 20)
    fields = {"chain_id": auth.chain_id, "address": to_canonical_address(auth.address), "nonce": auth.nonce,
              "y_parity": auth.y_parity, "r": auth.r, "s": auth.s}
    to = to_canonical_address(DEV[2][0])
    cases = [
        (_set_code_raw(node, DEV[1][1], to, []), "EIP-7702 transaction with empty auth list"),
        (_set_code_raw(node, DEV[1][1], b"", [fields]), "EIP-7702 transaction cannot be used to create contract"),
        (_set_code_raw(node, DEV[1][1], to, [{**fields, "y_parity": 256}]), "rlp: authorization 0"),
        (_set_code_raw(node, DEV[1][1], to, [{**fields, "nonce": 2**64}]), "rlp: authorization 0"),
    ]
    good = HexBytes(_set_code_raw(node, DEV[1][1], to, [fields]))
    items = rlp.decode(good[1:])
    for broken in ([*items[:9], [items[9][0][:5]], *items[10:]],  # an authorization missing its s
                   [*items[:9], items[9][0], *items[10:]]):  # an authorization in place of the list
        cases.append(("0x" + (good[:1] + rlp.encode(broken)).hex(), "rlp: "))
    url = w3.provider.endpoint_uri
    for raw, message in cases:
        error = call(url, "eth_sendRawTransaction", raw)["error"]
        assert error["code"] == -32000 and error["message"].startswith(message), (message, error)
    assert len(node.mempool) == 0 and w3.eth.get_transaction_count(DEV[1][0], "pending") == 0
    # the same construction with a good list is accepted: the refusals are about the fields
    assert "result" in call(url, "eth_sendRawTransaction", _set_code_raw(node, DEV[1][1], to, [fields]))


def test_a_sender_drained_through_its_delegation_is_left_out_of_the_block(served) -> None:
    """A delegated account's balance can go to another sender's transaction earlier in the same
    block: its own pooled transaction no longer validates, is left out, and leaves the pool
    (geth drops unpayable transactions); the block is built all the same."""
    node, w3 = served
    drain = _deploy(node, w3, PAY_CALLER_ALL)
    victim = DEV[6]
    w3.eth.send_raw_transaction(_raw(w3, victim[1], 0, type=4, to=victim[0],
                                     authorizationList=[_authorize(w3, victim[1], drain, nonce=1)]))
    node.produce_block()
    assert w3.eth.get_code(victim[0]) == HexBytes("0xef0100" + drain[2:].lower())
    own = w3.eth.send_raw_transaction(_raw(w3, victim[1], 2, to=DEV[3][0], value=1, gas=21_000))
    drainer = w3.eth.send_raw_transaction(_raw(w3, DEV[1][1], 0, to=victim[0], maxPriorityFeePerGas=2 * GWEI))
    block = node.produce_block()
    assert [HexBytes(t) for t in w3.eth.get_block(block.number)["transactions"]] == [drainer]
    assert w3.eth.get_balance(victim[0]) == 0
    assert len(node.mempool) == 0
    with pytest.raises(TransactionNotFound):
        w3.eth.get_transaction(own)


def test_delegated_accounts_get_one_transaction_in_flight(served) -> None:
    """geth's pool rules for accounts whose balance anyone may move through delegated code: an
    account with a delegation, or one a pooled transaction delegates, has one transaction in
    flight (replaceable), no nonce gaps; an authority with several pooled ones is reserved."""
    node, w3 = served
    url = w3.provider.endpoint_uri
    delegated, pending_auth, busy = DEV[7], DEV[8], DEV[4]

    def send(raw: bytes) -> dict:
        return call(url, "eth_sendRawTransaction", "0x" + raw.hex())

    w3.eth.send_raw_transaction(_raw(w3, DEV[1][1], 0, type=4, to=DEV[2][0],
                                     authorizationList=[_authorize(w3, delegated[1], "0x" + "33" * 20)]))
    node.produce_block()
    assert w3.eth.get_code(delegated[0]) == HexBytes("0xef0100" + "33" * 20)
    assert send(_raw(w3, delegated[1], 2, to=DEV[3][0]))["error"]["message"] == \
        "gapped-nonce tx from delegated accounts"
    assert "result" in send(_raw(w3, delegated[1], 1, to=DEV[3][0]))
    assert send(_raw(w3, delegated[1], 2, to=DEV[3][0]))["error"]["message"] == \
        "in-flight transaction limit reached for delegated accounts"
    assert "result" in send(_raw(w3, delegated[1], 1, to=DEV[3][0], maxFeePerGas=20 * GWEI,
                                 maxPriorityFeePerGas=2 * GWEI))  # a replacement is allowed
    # a delegation still in the pool counts too
    assert "result" in send(_raw(w3, DEV[1][1], 1, type=4, to=DEV[2][0],
                                 authorizationList=[_authorize(w3, pending_auth[1], "0x" + "33" * 20)]))
    own = send(_raw(w3, pending_auth[1], 0, to=DEV[3][0]))["result"]
    assert send(_raw(w3, pending_auth[1], 1, to=DEV[3][0]))["error"]["message"] == \
        "in-flight transaction limit reached for delegated accounts"
    # an account with several pooled transactions cannot be named as an authority
    for n in range(2):
        assert "result" in send(_raw(w3, busy[1], n, to=DEV[3][0]))
    refused = send(_raw(w3, DEV[2][1], 0, type=4, to=DEV[3][0],
                        authorizationList=[_authorize(w3, busy[1], "0x" + "33" * 20, nonce=2)]))
    assert refused["error"] == {"code": -32000, "message": "authority already reserved"}
    # a delegation replaced by a plain transaction no longer restricts its authority
    free = DEV[5]
    assert "result" in send(_raw(w3, DEV[2][1], 0, type=4, to=DEV[3][0],
                                 authorizationList=[_authorize(w3, free[1], "0x" + "33" * 20)]))
    assert "result" in send(_raw(w3, DEV[2][1], 0, to=DEV[3][0], maxFeePerGas=20 * GWEI,
                                 maxPriorityFeePerGas=2 * GWEI))
    for n in range(2):
        assert "result" in send(_raw(w3, free[1], n, to=DEV[3][0]))
    assert len(node.mempool) == 8
    block = node.produce_block()
    # The delegation went first (its sender came to the pool first) and took the authority's
    # nonce 0, so the authority's own nonce-0 transaction no longer validates: left out and
    # dropped, as geth's miner and pool do. The one-in-flight rule bounds such losses to one.
    assert len(block.transactions) == 7 and own not in {"0x" + t.hash.hex() for t in block.transactions}
    assert len(node.mempool) == 0
    assert w3.eth.get_code(pending_auth[0]) == HexBytes("0xef0100" + "33" * 20)
    assert w3.eth.get_transaction_count(pending_auth[0]) == 1
    assert "result" in send(_raw(w3, pending_auth[1], 1, to=DEV[3][0]))
