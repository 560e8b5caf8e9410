"""JSON-RPC over WebSocket: requests, batches, and eth_subscribe (newHeads, logs,
newPendingTransactions) fed by real blocks; the newHeads shape is compared with anvil's."""
import json
import time

import pytest
import tests.rpc.scenario as scenario
from tests.rpc.nodes import call
from websockets.sync.client import connect

TIMEOUT = 30


def ws_url(node) -> str:
    return node.url.replace("http://", "ws://")


def request(ws, method, *params, id_=1):
    ws.send(json.dumps({"jsonrpc": "2.0", "id": id_, "method": method, "params": list(params)}))
    while True:
        message = json.loads(ws.recv(timeout=TIMEOUT))
        if message.get("id") == id_:
            return message


def next_notification(ws, sid):
    while True:
        message = json.loads(ws.recv(timeout=TIMEOUT))
        if message.get("method") == "eth_subscription" and message["params"]["subscription"] == sid:
            return message["params"]["result"]


def transfer(node, key_index: int, nonce: int) -> str:
    raw = scenario.sign(scenario.KEYS[key_index], type=2, nonce=nonce, to=scenario.SINK, value=5, gas=21_000,
                        maxFeePerGas=3 * scenario.GWEI, maxPriorityFeePerGas=scenario.GWEI)
    return call(node.url, "eth_sendRawTransaction", "0x" + raw.hex())["result"]


def test_requests_and_errors_over_websocket(ours):
    with connect(ws_url(ours)) as ws:
        assert request(ws, "eth_chainId")["result"] == call(ours.url, "eth_chainId")["result"]
        ws.send('[{"jsonrpc":"2.0","id":7,"method":"net_version"},{"jsonrpc":"2.0","id":8,"method":"nope_x"}]')
        batch = json.loads(ws.recv(timeout=TIMEOUT))
        assert [m["id"] for m in batch] == [7, 8] and batch[1]["error"]["code"] == -32601
        ws.send("{not json")
        assert json.loads(ws.recv(timeout=TIMEOUT))["error"] == {"code": -32700, "message": "parse error"}
        assert request(ws, "eth_subscribe", "nonsense")["error"]["code"] == -32601
        assert request(ws, "eth_subscribe", "logs", {"address": "0x12"})["error"]["code"] == -32602
        assert request(ws, "eth_unsubscribe", "0x" + "00" * 16)["error"]["message"] == "subscription not found"
        assert request(ws, "eth_subscribe")["error"]["code"] == -32602


@pytest.mark.parametrize("key_index", [5])
def test_subscriptions_follow_new_blocks(ours, key_index):
    with connect(ws_url(ours)) as ws, connect(ws_url(ours)) as other:
        heads = request(ws, "eth_subscribe", "newHeads")["result"]
        logs = request(ws, "eth_subscribe", "logs", {"address": scenario.SINK})["result"]
        pending = request(ws, "eth_subscribe", "newPendingTransactions")["result"]
        other_heads = request(other, "eth_subscribe", "newHeads")["result"]
        tx_hash = transfer(ours, key_index, 0)
        assert next_notification(ws, pending) == tx_hash
        head = next_notification(ws, heads)
        receipt = call(ours.url, "eth_getTransactionReceipt", tx_hash)["result"]
        assert head["hash"] == receipt["blockHash"] and head["number"] == receipt["blockNumber"]
        block = call(ours.url, "eth_getBlockByHash", head["hash"], False)["result"]
        assert head == {k: v for k, v in block.items() if k not in ("size", "transactions", "uncles", "withdrawals")}
        assert next_notification(other, other_heads)["hash"] == head["hash"]
        assert request(ws, "eth_unsubscribe", heads)["result"] is True
        assert request(ws, "eth_unsubscribe", heads)["error"]["message"] == "subscription not found"
        other.close()  # a client gone mid-subscription must not disturb the others
        transfer(ours, key_index, 1)
        assert next_notification(ws, pending)
    # the transfers to SINK carry no logs: the logs subscription stayed silent, and the node lives on
    assert logs and call(ours.url, "eth_blockNumber")["result"]


def test_log_subscription_delivers_matching_logs(ours):
    from tests.rpc.solc import compile_contract
    from web3 import Web3

    abi, bytecode = compile_contract("Store")
    w3 = Web3()
    deploy = w3.eth.contract(abi=abi, bytecode=bytecode).constructor(1).build_transaction(
        {"gas": 1, "gasPrice": 1, "chainId": scenario.CHAIN_ID})["data"]
    key = scenario.KEYS[6]
    raw = scenario.sign(key, type=2, nonce=0, data=deploy, gas=500_000, maxFeePerGas=3 * scenario.GWEI,
                        maxPriorityFeePerGas=scenario.GWEI)
    tx_hash = call(ours.url, "eth_sendRawTransaction", "0x" + raw.hex())["result"]
    address = None
    for _ in range(300):
        receipt = call(ours.url, "eth_getTransactionReceipt", tx_hash)["result"]
        if receipt:
            address = receipt["contractAddress"]
            break
        time.sleep(0.05)
    contract = w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi)
    with connect(ws_url(ours)) as ws:
        sid = request(ws, "eth_subscribe", "logs", {"address": address})["result"]
        raw = scenario.sign(key, type=2, nonce=1, to=Web3.to_checksum_address(address),
                            data=contract.encode_abi("store", [5, "ws"]), gas=200_000,
                            maxFeePerGas=3 * scenario.GWEI, maxPriorityFeePerGas=scenario.GWEI)
        stored = call(ours.url, "eth_sendRawTransaction", "0x" + raw.hex())["result"]
        entry = next_notification(ws, sid)
    assert entry["transactionHash"] == stored and entry["address"] == address.lower()
    assert int(entry["topics"][2], 16) == 5 and entry["removed"] is False


def test_new_heads_shape_matches_anvil(ours, anvil):
    shapes = []
    for node, key_index in ((ours, 7), (anvil, 7)):
        with connect(ws_url(node)) as ws:
            sid = request(ws, "eth_subscribe", "newHeads")["result"]
            transfer(node, key_index, 0)
            shapes.append(scenario.shape(next_notification(ws, sid)))
    anvil_shape = {k: v for k, v in shapes[1].items() if k not in ("totalDifficulty", "size", "transactions", "uncles", "withdrawals")}
    assert shapes[0] == anvil_shape


def test_web3_websocket_provider_subscription(ours):
    """web3.py's own WebSocket client: calls, a newHeads subscription, and a receipt."""
    import asyncio

    from web3 import AsyncWeb3, WebSocketProvider

    async def scenario_over_ws():
        async with AsyncWeb3(WebSocketProvider(ws_url(ours))) as w3:
            assert await w3.eth.chain_id == scenario.CHAIN_ID
            sid = await w3.eth.subscribe("newHeads")
            raw = scenario.sign(scenario.KEYS[4], type=2, nonce=0, to=scenario.SINK, value=1, gas=21_000,
                                maxFeePerGas=3 * scenario.GWEI, maxPriorityFeePerGas=scenario.GWEI)
            tx_hash = await w3.eth.send_raw_transaction(raw)
            async for message in w3.socket.process_subscriptions():
                assert message["subscription"] == sid
                head = message["result"]
                break
            receipt = await w3.eth.wait_for_transaction_receipt(tx_hash, timeout=TIMEOUT)
            assert await w3.eth.unsubscribe(sid) is True
            return head, receipt

    head, receipt = asyncio.run(scenario_over_ws())
    assert receipt["status"] == 1 and receipt["blockNumber"] == head["number"]
