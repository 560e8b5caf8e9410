"""Property test of the JSON-RPC layer over a real Node (LevelDB in a temp dir): any JSON as
params to any method gets a result or a JSON-RPC error, never an internal error (-32603, an
unhandled exception) and never a change to the chain."""
import json

import orjson
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import genesis
from node.chain import Node
from node.rpc import RpcConfig
from node.rpc.dispatch import Dispatcher, method_table
from node.rpc.namespaces import RpcContext, build_methods
from node.rpc.filters import FilterHub

HEXISH = st.one_of(
    st.sampled_from(["latest", "earliest", "pending", "safe", "finalized", "0x", "0x0", "0x00", "0x1", "-0x1"]),
    st.binary(max_size=40).map(lambda b: "0x" + b.hex()),
    st.text(alphabet="0123456789abcdefxX", max_size=70).map(lambda t: "0x" + t),
)
JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
              st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20), HEXISH),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(["to", "from", "data", "input", "gas", "value",
                                                             "blockHash", "blockNumber", "fromBlock", "toBlock",
                                                             "address", "topics", "requireCanonical"]),
                                            inner, max_size=4)),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def rpc(tmp_path_factory):
    node = Node.init(tmp_path_factory.mktemp("fuzz"), genesis.devnet())
    node.produce_block()
    ctx = RpcContext(node=node, config=RpcConfig())
    ctx.hub = FilterHub(lambda n, c: [], timeout=300)
    methods = build_methods(ctx, ("eth", "net", "web3"))
    yield node, Dispatcher(method_table(methods)), sorted(methods)
    node.close()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_params_get_an_answer(rpc, data):
    node, dispatcher, names = rpc
    method = data.draw(st.sampled_from(names))
    params = data.draw(st.lists(JSON, max_size=4))
    head = node.head().hash
    body = json.dumps({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}).encode()
    answer = orjson.loads(trio.run(dispatcher.handle_body, body))
    assert answer["id"] == 7
    assert ("result" in answer) != ("error" in answer)
    if "error" in answer:
        assert answer["error"]["code"] != -32603, (method, params, answer)
    assert node.head().hash == head
