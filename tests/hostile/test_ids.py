"""JSON-RPC ids come back byte for byte as sent (go-ethereum keeps them as raw JSON); ids that
JSON-RPC 2.0 does not allow (objects, arrays, booleans) get -32600 with a null id."""
from __future__ import annotations

import json

import pytest
import trio

from node.rpc.dispatch import Dispatcher, method_table
from tests.hostile.conftest import RawWebSocket, http, post

# (id as sent, in JSON text)
ECHOED = [
    b"1180591620717411303424", b"18446744073709551616", b"18446744073709551615", b"-9223372036854775809",
    b"-0", b"0", b"1", b"-1", b"7", b"1.5", b"1.50", b"-0.0", b"1e400", b"1E2", b"2e-3", b"123456789012345678901234567890",
    b'"abc"', b'""', b'"\\u0041"', b'"a\\"b"', b'"\\\\"', b'"\xc3\xa9t\xc3\xa9"', b'"\\ud83d\\ude00"', b'"0x1"',
    b"null",
]
INVALID = [b"true", b"false", b"{}", b'{"a":1}', b"[]", b"[1]"]


def _dispatcher() -> Dispatcher:
    return Dispatcher(method_table({"eth_chainId": lambda: "0x1c00", "boom": lambda: 1 / 0}))


def _answer(body: bytes) -> bytes:
    return trio.run(_dispatcher().handle_body, body)


def _request(raw_id: bytes, method: str = "eth_chainId") -> bytes:
    return b'{"jsonrpc":"2.0","method":"' + method.encode() + b'","params":[],"id":' + raw_id + b"}"


@pytest.mark.parametrize("raw_id", ECHOED, ids=[i.decode("utf-8", "replace") for i in ECHOED])
def test_id_is_echoed_byte_for_byte(raw_id):
    assert _answer(_request(raw_id)) == b'{"jsonrpc":"2.0","id":' + raw_id + b',"result":"0x1c00"}'
    # also in errors: unknown method, bad params, and a method that fails
    assert _answer(_request(raw_id, "nope")).startswith(b'{"jsonrpc":"2.0","id":' + raw_id + b',"error":{"code":-32601')
    assert _answer(_request(raw_id, "boom")).startswith(b'{"jsonrpc":"2.0","id":' + raw_id + b',"error":{"code":-32603')


@pytest.mark.parametrize("raw_id", INVALID, ids=[i.decode() for i in INVALID])
def test_ids_json_rpc_does_not_allow_are_invalid_requests(raw_id):
    answer = json.loads(_answer(_request(raw_id)))
    assert answer == {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "invalid request"}}


def test_batch_ids_each_echoed():
    items = [_request(i) for i in ECHOED] + [b"5", _request(b"true"), b'{"jsonrpc":"2.0","method":"eth_chainId"}']
    answer = _answer(b" [ " + b" ,\n ".join(items) + b" ] ")
    parts = json.loads(answer)
    assert len(parts) == len(ECHOED) + 2
    for raw_id in ECHOED:  # each answer carries the id's own text
        assert b'{"jsonrpc":"2.0","id":' + raw_id + b',"result":"0x1c00"}' in answer


def test_repeated_and_escaped_id_members_and_whitespace():
    # the parser keeps the last of repeated members; an escaped member name is still "id"
    assert _answer(b'{"id":1,"jsonrpc":"2.0","id": -0 ,"method":"eth_chainId"}') == \
        b'{"jsonrpc":"2.0","id":-0,"result":"0x1c00"}'
    assert _answer(b'{"jsonrpc":"2.0","\\u0069d":"x","method":"eth_chainId"}') == \
        b'{"jsonrpc":"2.0","id":"x","result":"0x1c00"}'
    # strings holding JSON-like text do not confuse the scan
    from node.rpc.dispatch import raw_ids

    body = b'{"jsonrpc":"2.0","params":["{\\"id\\":5}",{"id":9}],"method":"eth_chainId","id":"\\"id\\":"}'
    assert raw_ids(body, batch=False) == [b'"\\"id\\":"']


def test_ids_over_http_and_websocket(node):
    big = b"1180591620717411303424"
    status, _, answer = http(node, post(_request(big)))
    assert status == 200 and answer.startswith(b'{"jsonrpc":"2.0","id":' + big + b",")
    ws = RawWebSocket(node.port)
    try:
        for raw_id in (b"-0", b"18446744073709551616", b'"\\u0041"'):
            ws.send(_request(raw_id).decode())
            assert ws.recv().startswith('{"jsonrpc":"2.0","id":' + raw_id.decode() + ",")
    finally:
        ws.close()
