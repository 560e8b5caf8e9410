"""What wallets do before they sign, with web3.py and eth-account against a devnet process: a
second transaction estimated with the pending nonce while the first waits in the pool (calls
skip the nonce check, as go-ethereum's do), eth_fillTransaction answered as go-ethereum answers
it, and estimates that count the access list's and the authorizations' intrinsic gas."""
import pytest
from eth_account import Account
from eth_utils import keccak
from web3 import Web3
from web3.exceptions import Web3RPCError

import genesis
from tests.rpc.nodes import devnet_process

SINK = "0x" + "22" * 20
SLOTS = ["0x" + "00" * 31 + "01", "0x" + "00" * 31 + "02"]
CHAIN_ID = genesis.devnet().chain_id
DEV = genesis.dev_accounts()


@pytest.fixture(scope="module")
def idle(tmp_path_factory):
    """A devnet that makes no block for an hour: what is sent stays pending."""
    node = devnet_process(tmp_path_factory.mktemp("idle") / "data", "--block-time", "3600").wait_ready()
    yield Web3(Web3.HTTPProvider(node.url))
    node.stop()


@pytest.fixture(scope="module")
def w3(ours):
    """Our node with automine."""
    return Web3(Web3.HTTPProvider(ours.url))


def transfer(w3: Web3, key: str, nonce: int, **fields) -> bytes:
    tx = {"type": 2, "chainId": CHAIN_ID, "nonce": nonce, "to": SINK, "value": 1, "gas": 21_000,
          "maxFeePerGas": 3 * 10**9, "maxPriorityFeePerGas": 10**9}
    if "gasPrice" in fields:
        del tx["maxFeePerGas"], tx["maxPriorityFeePerGas"]
    tx.update(fields)
    return w3.eth.send_raw_transaction(Account.sign_transaction(tx, key).raw_transaction)


def test_calls_and_estimates_take_the_pending_nonce(idle):
    address, key = DEV[2]
    transfer(idle, key, 0)
    pending = idle.eth.get_transaction_count(address, "pending")
    assert pending == 1 and idle.eth.get_transaction_count(address) == 0
    request = {"from": address, "to": SINK, "value": 1, "nonce": pending}
    assert idle.eth.estimate_gas(request) == 21_000
    assert idle.eth.call(request) == b""
    assert idle.eth.create_access_list(request)["gasUsed"] == 21_000
    simulated = idle.eth.simulate_v1({"blockStateCalls": [{"calls": [request]}]}, "latest")
    assert simulated[0]["calls"][0]["status"] == 1


def test_an_estimate_counts_the_access_list(w3):
    address, key = DEV[3]
    access = [{"address": "0x" + "33" * 20, "storageKeys": SLOTS}]
    request = {"from": address, "to": SINK, "value": 1, "accessList": access}
    gas = w3.eth.estimate_gas(request)
    assert gas == 21_000 + 2_400 + 2 * 1_900  # EIP-2930
    nonce = w3.eth.get_transaction_count(address)
    tx_hash = transfer(w3, key, nonce, type=1, gasPrice=3 * 10**9, gas=gas, accessList=access)
    assert w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)["status"] == 1


def test_an_estimate_counts_the_authorizations(w3):
    address, key = DEV[4]
    nonce = w3.eth.get_transaction_count(address)
    auth = Account.sign_authorization({"chainId": CHAIN_ID, "address": SINK, "nonce": nonce + 1}, key)
    request = {"from": address, "to": address, "authorizationList": [auth]}
    gas = w3.eth.estimate_gas(request)
    assert gas == 21_000 + 25_000  # EIP-7702: PER_EMPTY_ACCOUNT_COST per authorization
    tx = {"type": 4, "chainId": CHAIN_ID, "nonce": nonce, "to": address, "value": 0, "gas": gas,
          "maxFeePerGas": 3 * 10**9, "maxPriorityFeePerGas": 10**9, "authorizationList": [auth]}
    tx_hash = w3.eth.send_raw_transaction(Account.sign_transaction(tx, key).raw_transaction)
    assert w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)["status"] == 1
    assert w3.eth.get_code(address) == bytes.fromhex("ef0100" + SINK[2:])


def fill(w3: Web3, request: dict) -> dict:
    response = w3.provider.make_request("eth_fillTransaction", [request])
    if "error" in response:
        raise Web3RPCError(str(response["error"]))
    return response["result"]


def test_fill_transaction_answers_as_geth(idle):
    address, key = DEV[5]
    transfer(idle, key, 0)  # stays pending: the filled nonce is the pool's
    base_fee = idle.eth.get_block("latest")["baseFeePerGas"]
    filled = fill(idle, {"from": address, "to": SINK, "value": "0x5"})
    tx = filled["tx"]
    assert list(tx) == ["type", "chainId", "nonce", "to", "gas", "gasPrice", "maxPriorityFeePerGas",
                        "maxFeePerGas", "value", "input", "accessList", "v", "r", "s", "yParity", "hash"]
    assert tx["type"] == "0x2" and tx["chainId"] == hex(CHAIN_ID) and tx["nonce"] == "0x1"
    assert tx["gas"] == hex(21_000) and tx["gasPrice"] is None and tx["value"] == "0x5"
    assert tx["maxPriorityFeePerGas"] == hex(10**9) and tx["maxFeePerGas"] == hex(10**9 + 2 * base_fee)
    assert tx["v"] == tx["r"] == tx["s"] == tx["yParity"] == "0x0" and tx["accessList"] == []
    assert "0x" + keccak(hexstr=filled["raw"]).hex() == tx["hash"]
    # a wallet signs what it got and sends it
    signed = Account.sign_transaction({
        "type": 2, "chainId": CHAIN_ID, "nonce": 1, "to": SINK, "value": 5, "gas": 21_000, "data": "0x",
        "maxFeePerGas": int(tx["maxFeePerGas"], 16), "maxPriorityFeePerGas": int(tx["maxPriorityFeePerGas"], 16),
    }, key)
    assert idle.eth.send_raw_transaction(signed.raw_transaction) == signed.hash


def test_fill_transaction_kinds_and_refusals(idle):
    address = DEV[6][0]
    legacy = fill(idle, {"from": address, "to": SINK, "gasPrice": "0x77359400", "nonce": "0x9"})["tx"]
    assert (legacy["type"], legacy["gasPrice"], legacy["maxFeePerGas"], legacy["nonce"]) == \
        ("0x0", "0x77359400", None, "0x9")
    assert "chainId" not in legacy and "yParity" not in legacy
    given = fill(idle, {"from": address, "to": SINK, "gas": "0x6000", "maxFeePerGas": "0x9",
                        "maxPriorityFeePerGas": "0x2"})["tx"]
    assert (given["gas"], given["maxFeePerGas"], given["maxPriorityFeePerGas"]) == ("0x6000", "0x9", "0x2")
    for request, message in [
        ({"from": address}, "contract creation without any data provided"),
        ({"from": address, "to": SINK, "maxFeePerGas": "0x1", "maxPriorityFeePerGas": "0x2"},
         "maxFeePerGas (0x1) < maxPriorityFeePerGas (0x2)"),
        ({"from": address, "to": SINK, "gasPrice": "0x0"}, "gasPrice must be non-zero after london fork"),
        ({"from": address, "to": SINK, "chainId": "0x1"}, f"chainId does not match node's (have=1, want={CHAIN_ID})"),
    ]:
        with pytest.raises(Web3RPCError, match=message.replace("(", r"\(").replace(")", r"\)")):
            fill(idle, request)
