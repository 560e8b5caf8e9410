"""Traces and Otterscan answers of our node and anvil on the same scenario, in the same run.

Both nodes get the same signed transactions (tests/tracing/scenario.py: value calls, static and
delegate calls, CREATE, CREATE2, logs, reverts bubbled and caught, a refused value transfer,
SELFDESTRUCT), so every answer can be compared. Where anvil departs from go-ethereum or from
Otterscan's documented API we follow those, and the comparison names the difference:
- struct logger: geth leaves `returnData` out when empty, anvil sends "0x"; geth's CREATE and
  CREATE2 gasCost excludes the gas handed to the new contract, anvil's includes it;
- ots_traceTransaction: Otterscan's API lists CREATE, CREATE2 and SELFDESTRUCT entries; anvil
  lists call entries only;
- receipts: anvil adds `blobGasPrice` to receipts of non-blob transactions; blocks: anvil adds
  `totalDifficulty` (geth dropped it) and fills `logsBloom`, which Otterscan's API sets to null.
Values that depend on the chain itself (hashes, timestamps, base fees) are left out.
"""
import shutil
import sys

import pytest

import genesis
from tests.rpc.nodes import ANVIL, CHAIN_ID, NodeProcess, call, free_port, start_anvil
from tests.rpc import solc
from tests.tracing import scenario

RUN_NODE = """
import sys
from node.app import NodeConfig, run_node
from node.rpc import RpcConfig
import genesis
run_node(NodeConfig(sys.argv[1], genesis.devnet(), 0.0,
                    RpcConfig(port=int(sys.argv[2]), apis=("eth", "net", "web3", "debug", "ots", "erigon"))))
"""
NAMES = ("deploy", "make", "forward", "borrow", "catch", "revert", "make2", "retire")
CALL_TYPES = ("CALL", "STATICCALL", "DELEGATECALL", "CALLCODE")


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    if not ANVIL.exists() or not solc.available():
        pytest.skip("anvil and solc-js come from npm: run `npm install` (make test does)")
    tmp = tmp_path_factory.mktemp("vs-anvil")
    port = free_port()
    ours = NodeProcess([sys.executable, "-c", RUN_NODE, str(tmp / "ours"), str(port)], port, tmp / "ours.log")
    anvil = None
    try:
        ours.wait_ready()
        anvil = start_anvil(tmp, "--steps-tracing")
        key = genesis.dev_accounts()[5][1]
        yield (ours.url, scenario.run(ours.url, key, CHAIN_ID)), (anvil.url, scenario.run(anvil.url, key, CHAIN_ID))
    finally:
        ours.stop()
        if anvil is not None:
            anvil.stop()


def both(nodes, method, *params):
    """(ours, anvil) results; a callable param is applied to each side's scenario hashes."""
    out = []
    for url, hashes in nodes:
        response = call(url, method, *[p(hashes) if callable(p) else p for p in params])
        assert "error" not in response, (url, method, response)
        out.append(response["result"])
    return tuple(out)


@pytest.mark.parametrize("name", NAMES)
def test_call_tracer_matches_anvil(nodes, name):
    ours, anvil = both(nodes, "debug_traceTransaction", lambda h: h[name], {"tracer": "callTracer"})
    assert ours == anvil


def _geth_view(trace: dict) -> dict:
    logs = []
    for entry in trace["structLogs"]:
        entry = {k: v for k, v in entry.items() if not (k == "returnData" and v == "0x")}
        if entry["op"] in ("CREATE", "CREATE2"):
            entry.pop("gasCost")
        logs.append(entry)
    return {**trace, "structLogs": logs}


@pytest.mark.parametrize("config", [{}, {"enableMemory": True, "enableReturnData": True, "disableStorage": True}])
@pytest.mark.parametrize("name", NAMES)
def test_struct_logger_matches_anvil(nodes, name, config):
    ours, anvil = both(nodes, "debug_traceTransaction", lambda h: h[name], config)
    assert ours["structLogs"], "the scenario runs code in every transaction"
    assert _geth_view(ours) == _geth_view(anvil)


def test_create_gas_cost_is_gos_not_anvils(nodes):
    ours, anvil = both(nodes, "debug_traceTransaction", lambda h: h["make"], {})
    (mine,) = [e for e in ours["structLogs"] if e["op"] == "CREATE"]
    (theirs,) = [e for e in anvil["structLogs"] if e["op"] == "CREATE"]
    assert mine["gas"] == theirs["gas"] and mine["gasCost"] < 40_000 < theirs["gasCost"]


@pytest.mark.parametrize("name", NAMES[1:])
def test_ots_transaction_views_match_anvil(nodes, name):
    for method in ("ots_getInternalOperations", "ots_getTransactionError"):
        ours, anvil = both(nodes, method, lambda h: h[name])
        assert ours == anvil, method
    ours, anvil = both(nodes, "ots_traceTransaction", lambda h: h[name])
    assert [e for e in ours if e["type"] in CALL_TYPES] == anvil
    assert {e["type"] for e in ours} >= {"CALL"}


def test_ots_trace_lists_creates_and_selfdestructs(nodes):
    ours, _ = both(nodes, "ots_traceTransaction", lambda h: h["make2"])
    assert [e["type"] for e in ours] == ["CALL", "CREATE2"]
    ours, _ = both(nodes, "ots_traceTransaction", lambda h: h["retire"])
    assert [(e["type"], e["depth"], e["value"]) for e in ours][-1] == ("SELFDESTRUCT", 2, "0x5")


def test_ots_lookups_match_anvil(nodes):
    assert both(nodes, "ots_getApiLevel") == (8, 8)
    for args in ((lambda h: h["explorer"], "latest"), (lambda h: h["sender"], "latest")):
        ours, anvil = both(nodes, "ots_hasCode", *args)
        assert ours == anvil
    ours, anvil = both(nodes, "ots_getContractCreator", lambda h: h["explorer"])
    assert ours == anvil and ours["hash"] == nodes[0][1]["deploy"]
    for nonce in range(len(NAMES)):
        ours, anvil = both(nodes, "ots_getTransactionBySenderAndNonce", lambda h: h["sender"], nonce)
        assert ours == anvil == nodes[0][1][NAMES[nonce]]
    assert both(nodes, "ots_getTransactionBySenderAndNonce", lambda h: h["sender"], 99) == (None, None)


def _page(result: dict) -> tuple:
    return ([t["hash"] for t in result["txs"]], [(r["transactionHash"], r["status"]) for r in result["receipts"]],
            result["firstPage"], result["lastPage"])


@pytest.mark.parametrize("method, number, size", [
    ("ots_searchTransactionsBefore", 0, 3), ("ots_searchTransactionsBefore", 5, 2),
    ("ots_searchTransactionsAfter", 0, 3), ("ots_searchTransactionsAfter", 4, 2),
    ("ots_searchTransactionsBefore", 0, 50), ("ots_searchTransactionsAfter", 0, 50),
])
def test_address_history_pages_match_anvil(nodes, method, number, size):
    ours, anvil = both(nodes, method, lambda h: h["explorer"], number, size)
    assert _page(ours) == _page(anvil)
    assert set(ours["txs"][0]) == set(anvil["txs"][0])
    assert set(ours["receipts"][0]) == set(anvil["receipts"][0]) - {"blobGasPrice"}


def test_block_views_match_anvil(nodes):
    ours, anvil = both(nodes, "ots_getBlockDetails", 2)
    assert set(ours["block"]) == set(anvil["block"]) - {"totalDifficulty"}
    assert ours["issuance"] == anvil["issuance"] and ours["block"]["logsBloom"] is None
    assert ours["block"]["transactionCount"] == anvil["block"]["transactionCount"] == 1
    ours, anvil = both(nodes, "ots_getBlockTransactions", 2, 0, 5)
    assert [t["input"] for t in ours["fullblock"]["transactions"]] == \
        [t["input"] for t in anvil["fullblock"]["transactions"]] == ["0xc6dad082"]
    assert set(ours["receipts"][0]) == set(anvil["receipts"][0]) - {"blobGasPrice"}
    assert ours["receipts"][0]["logs"] is None


@pytest.mark.parametrize("method, params, code", [
    ("debug_traceTransaction", ["0x" + "00" * 32], -32000),
    ("debug_traceTransaction", [lambda h: h["make"], {"tracer": "fooTracer"}], -32602),
    ("debug_traceTransaction", [lambda h: h["make"], {"timeout": "soon"}], -32602),
    ("debug_traceBlockByNumber", ["0x99999"], -32000),
    ("debug_traceBlockByHash", ["0x" + "11" * 32], -32000),
    ("ots_getInternalOperations", ["0x" + "00" * 32], -32000),
    ("ots_getBlockTransactions", [2, 0, 0], -32602),
    ("ots_searchTransactionsBefore", ["0x1234", 0, 5], -32602),
    ("ots_getBlockDetails", [99999], -32000),
])
def test_bad_input_is_an_error_not_a_crash(nodes, method, params, code):
    url, hashes = nodes[0]
    response = call(url, method, *[p(hashes) if callable(p) else p for p in params])
    assert response["error"]["code"] == code, response
    assert "result" in call(url, "eth_blockNumber")
