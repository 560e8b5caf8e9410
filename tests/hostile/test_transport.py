"""Malformed HTTP and WebSocket framing, oversized and deeply nested bodies, slow and
never-reading clients: each ends the offender's request or connection with an answer it can
read (where it can still read one), and the node goes on serving everyone else."""
from __future__ import annotations

import json
import os
import socket
import struct

import pytest

from tests.hostile.conftest import RawWebSocket, assert_alive, body, http, post, read_response, rpc


def _frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True, rsv: int = 0,
           length: int | None = None, key: bytes | None = None) -> bytes:
    """A WebSocket frame as a client writes it, or deliberately not as it should."""
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload) if length is None else length
    head = bytes([first])
    m = 0x80 if mask else 0
    if n < 126:
        head += bytes([m | n])
    elif n < 1 << 16:
        head += bytes([m | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([m | 127]) + n.to_bytes(8, "big")
    if mask:
        key = os.urandom(4) if key is None else key
        if key != b"\0\0\0\0":
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        head += key
    return head + payload


def _ws_after(node, raw: bytes) -> bytes:
    """Open a WebSocket, send `raw`, and collect what the server sends until it closes."""
    ws = RawWebSocket(node.port)
    assert ws.accepted
    ws.sock.settimeout(15)
    received = b""
    try:
        ws.sock.sendall(raw)
        while chunk := ws.sock.recv(65536):
            received += chunk
    except (ConnectionError, socket.timeout):
        pass
    finally:
        ws.close()
    return received


@pytest.mark.parametrize("name, raw, close_code", [
    ("unmasked client frame", _frame(1, b'{"jsonrpc":"2.0"}', mask=False), 1002),
    ("reserved bits", _frame(1, b"{}", rsv=0b100), 1002),
    ("unknown opcode", _frame(3, b"x"), 1002),
    ("fragmented ping", _frame(9, b"x", fin=False), 1002),
    ("continuation first", _frame(0, b"x"), 1002),
    ("invalid UTF-8 text", _frame(1, b"\xff\xfe\xfd"), 1007),
    ("a 2^63-byte frame", _frame(2, b"\0" * (6 << 20), length=(1 << 63) - 1, key=b"\0\0\0\0"), 1009),
    ("close with a bad code", _frame(8, (999).to_bytes(2, "big")), 1002),
])
def test_malformed_websocket_framing(node, name, raw, close_code):
    received = _ws_after(node, raw)
    assert received[:1] == b"\x88", (name, received[:50])  # a close frame, not a dropped socket
    code = int.from_bytes(received[2:4], "big")
    assert code == close_code, (name, code)
    assert_alive(node)


def test_websocket_message_over_the_body_limit_in_fragments(node):
    chunk = b"[" + b"1," * 200_000
    raw = b"".join(_frame(1 if i == 0 else 0, chunk, fin=False, key=b"\0\0\0\0") for i in range(15))
    received = _ws_after(node, raw)
    assert received[:1] == b"\x88" and int.from_bytes(received[2:4], "big") == 1009
    assert_alive(node)


@pytest.mark.parametrize("depth", [100, 1_000, 10_000, 1_000_000])
def test_deeply_nested_bodies(node, depth):
    nested = b"[" * depth + b"]" * depth
    for payload in (nested, b'{"jsonrpc":"2.0","id":1,"method":"eth_call","params":' + nested + b"}"):
        if len(payload) > 5 * 1024 * 1024:
            status, _, answer = http(node, post(payload))
            assert status == 413
            continue
        status, _, answer = http(node, post(payload))
        assert status == 200
        error = json.loads(answer)
        error = error[0] if isinstance(error, list) else error
        assert error["error"]["code"] in (-32700, -32600, -32602), error
    assert_alive(node)


def test_wide_bodies_and_large_batches(node):
    # the widest array a body may carry, as a batch and as params
    wide = b"[" + b",".join([b"1"] * 1_000_000) + b"]"
    status, _, answer = http(node, post(wide))
    assert status == 200 and json.loads(answer)["error"]["message"] == "batch too large"
    status, _, answer = http(node, post(b'{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":' + wide + b"}"))
    assert json.loads(answer)["error"]["code"] == -32602
    batch = [rpc("eth_getBalance", "0x" + "11" * 20, "latest", id_=i) if i % 3 else 7 for i in range(1000)]
    status, _, answer = http(node, post(body(batch)))
    answers = json.loads(answer)
    assert len(answers) == 1000 and sum("result" in a for a in answers) == 666
    assert_alive(node)


def test_slow_clients_do_not_hold_up_the_others(node):
    slow = [socket.create_connection(("127.0.0.1", node.port), timeout=30) for _ in range(50)]
    try:
        for sock in slow:  # half a request each, and then nothing
            sock.sendall(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n{")
        assert_alive(node)  # others are answered meanwhile
    finally:
        for sock in slow:
            sock.close()


def test_never_reading_http_client_holds_only_its_own_connection(node):
    """Pipelined requests whose answers are never read: the node stops reading that connection
    (its send buffer is full) instead of buffering answers without bound."""
    request = post(body(rpc("eth_getBlockByNumber", "latest", True)))
    socks = []
    for _ in range(20):
        sock = socket.create_connection(("127.0.0.1", node.port), timeout=10)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        try:
            for _ in range(5000):
                sock.send(request)
        except BlockingIOError:
            pass
        socks.append(sock)
    assert_alive(node)
    for sock in socks:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    assert_alive(node)


def test_http_errors_answer_json_rpc_where_they_can(node):
    status, headers, answer = http(node, post(b"[" + b"1," * (3 * 1024 * 1024) + b"1]"))
    assert status == 413 and json.loads(answer)["error"]["code"] == -32600
    status, _, answer = http(node, post(b"\xff" * 100))
    assert status == 200 and json.loads(answer)["error"] == {"code": -32700, "message": "parse error"}
    # a request line and headers of every shape still get an HTTP answer
    for raw in (b"\r\n\r\n", b"POST\r\n\r\n", b"POST / HTTP/1.1\r\n: x\r\n\r\n", b"POST / HTTP/1.1\r\nHost: \xff\r\n\r\n",
                b"POST /" + b"a" * 100_000 + b" HTTP/1.1\r\n\r\n", b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", node.port), timeout=20) as sock:
            sock.sendall(raw)
            try:
                status, _, _ = read_response(sock, bytearray())
            except ConnectionError:
                status = None
        assert status is None or 400 <= status < 500, (raw[:40], status)
    assert_alive(node)
