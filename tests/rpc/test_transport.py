"""The HTTP/1.1 and JSON-RPC 2.0 layer over raw sockets: keep-alive, pipelining, limits,
malformed input. Every bad request gets an answer (never a crash, never HTTP 500) and the node
keeps serving afterwards."""
import json
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.rpc.nodes import call

HEAD_END = b"\r\n\r\n"


def post(body: bytes, *, headers: str = "Content-Type: application/json\r\n", version: str = "HTTP/1.1") -> bytes:
    return (f"POST / {version}\r\nHost: localhost\r\n{headers}Content-Length: {len(body)}\r\n\r\n").encode() + body


def read_response(sock: socket.socket, buf: bytearray) -> tuple[int, dict, bytes]:
    """(status, headers, body) of one response from `sock`; leftover bytes stay in `buf`."""
    while HEAD_END not in buf:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before a response"
        buf += chunk
    head, _, rest = bytes(buf).partition(HEAD_END)
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers.get("content-length", 0))
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk
        rest += chunk
    buf[:] = rest[length:]
    return status, headers, rest[:length]


def exchange(url: str, raw: bytes) -> tuple[int, dict, bytes]:
    host, port = url[7:].split(":")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(raw)
        return read_response(sock, bytearray())


def rpc_body(method: str, params=(), id_=1) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": id_, "method": method, "params": list(params)}).encode()


def test_keep_alive_and_pipelining(ours):
    host, port = ours.url[7:].split(":")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        buf = bytearray()
        for i in range(5):  # sequential on one connection
            sock.sendall(post(rpc_body("eth_chainId", id_=i)))
            status, headers, body = read_response(sock, buf)
            assert status == 200 and headers["content-type"] == "application/json"
            assert json.loads(body) == {"jsonrpc": "2.0", "id": i, "result": hex(ours_chain_id())}
        sock.sendall(b"".join(post(rpc_body("net_version", id_=i)) for i in range(10)))  # pipelined
        ids = [json.loads(read_response(sock, buf)[2])["id"] for _ in range(10)]
        assert ids == list(range(10))


def ours_chain_id() -> int:
    from tests.rpc.nodes import CHAIN_ID
    return CHAIN_ID


def test_body_split_across_packets(ours):
    host, port = ours.url[7:].split(":")
    raw = post(rpc_body("web3_sha3", ["0x68656c6c6f"]))
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        for i in range(0, len(raw), 7):
            sock.sendall(raw[i:i + 7])
        status, _, body = read_response(sock, bytearray())
    assert status == 200
    assert json.loads(body)["result"] == "0x1c8aff950685c2ed4bc3174f3472287b56d9517b9c948127319a09a7a36deac8"


def test_oversized_body_is_refused_with_413(ours):
    status, headers, body = exchange(ours.url, post(b"[" + b"1," * (3 * 1024 * 1024) + b"1]"))
    assert status == 413
    assert json.loads(body)["error"]["code"] == -32600
    assert call(ours.url, "eth_chainId")["result"]  # still serving


@pytest.mark.parametrize("raw, status", [
    (b"GARBAGE\r\n\r\n", 400),
    (b"POST / HTTP/2.0\r\nContent-Length: 2\r\n\r\n{}", 505),
    (b"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nno colon here\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}", 400),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411),
    (b"PUT / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405),
    (b"POST / HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}", 415),
    (b"POST / HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n", 431),
])
def test_malformed_http_gets_a_4xx(ours, raw, status):
    got, headers, _ = exchange(ours.url, raw)
    assert got == status
    assert headers.get("connection") == "close"
    assert call(ours.url, "eth_chainId")["result"]


def test_http_1_0_closes_and_get_is_a_health_check(ours):
    status, headers, _ = exchange(ours.url, post(rpc_body("net_listening"), version="HTTP/1.0"))
    assert status == 200 and headers["connection"] == "close"
    status, headers, _ = exchange(ours.url, post(rpc_body("net_listening"), version="HTTP/1.0",
                                                  headers="Connection: keep-alive\r\n"))
    assert status == 200 and headers["connection"] == "keep-alive"
    status, _, body = exchange(ours.url, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert status == 200 and body == b""


def test_expect_100_continue(ours):
    host, port = ours.url[7:].split(":")
    body = rpc_body("eth_blockNumber")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(f"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: {len(body)}\r\n\r\n".encode())
        buf = bytearray()
        status, _, _ = read_response(sock, buf)
        assert status == 100
        sock.sendall(body)
        status, _, answer = read_response(sock, buf)
    assert status == 200 and "result" in json.loads(answer)


def rpc_raw(url: str, body: bytes):
    status, _, answer = exchange(url, post(body))
    assert status == 200
    return json.loads(answer) if answer else None


@pytest.mark.parametrize("body, code", [
    (b"{", -32700),
    (b'{"jsonrpc":"2.0","method":"eth_chainId","id":1', -32700),
    (b"\xff\xfe", -32700),
    (b"", -32700),
    (b"42", -32600),
    (b'"eth_chainId"', -32600),
    (b'{"jsonrpc":"2.0","id":1}', -32600),
    (b'{"jsonrpc":"2.0","id":1,"method":5}', -32600),
    (b'{"jsonrpc":"1.0","id":1,"method":"eth_chainId"}', -32600),
    (b'{"jsonrpc":"2.0","id":{"a":1},"method":"eth_chainId"}', -32600),
    (b'{"jsonrpc":"2.0","id":1,"method":"eth_nope","params":[]}', -32601),
    (b'{"jsonrpc":"2.0","id":1,"method":"debug_traceTransaction","params":[]}', -32601),
    (b'{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}', -32601),
    (b'{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":{"a":1}}', -32602),
    (b'{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":"0x00"}', -32602),
    (b"[]", -32600),
])
def test_jsonrpc_errors(ours, body, code):
    answer = rpc_raw(ours.url, body)
    assert answer["jsonrpc"] == "2.0"
    assert answer["error"]["code"] == code
    assert "Traceback" not in answer["error"]["message"]
    if code in (-32700,):
        assert answer["id"] is None


def test_batches(ours):
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
        {"jsonrpc": "2.0", "id": "two", "method": "eth_nope"},
        5,
        {"jsonrpc": "2.0", "method": "eth_chainId", "params": []},  # notification: no answer
        {"jsonrpc": "2.0", "id": 3, "method": "eth_getBalance", "params": ["0x12"]},
        {"jsonrpc": "2.0", "id": 4, "method": "web3_sha3", "params": ["0x"]},
    ]
    answers = rpc_raw(ours.url, json.dumps(batch).encode())
    assert [a.get("id") for a in answers] == [1, "two", None, 3, 4]
    assert answers[0]["result"] == hex(ours_chain_id())
    assert answers[1]["error"]["code"] == -32601
    assert answers[2]["error"]["code"] == -32600
    assert answers[3]["error"] == {"code": -32602, "message": "invalid argument 0: hex string has length 2, want 40 for common.Address"}
    assert answers[4]["result"] == "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    # only notifications: nothing to answer
    assert rpc_raw(ours.url, b'[{"jsonrpc":"2.0","method":"eth_chainId"}]') is None
    too_many = [{"jsonrpc": "2.0", "id": i, "method": "eth_chainId"} for i in range(1001)]
    assert rpc_raw(ours.url, json.dumps(too_many).encode())["error"] == {"code": -32600, "message": "batch too large"}


def test_node_identity(ours):
    assert call(ours.url, "web3_clientVersion")["result"].startswith("openledger/v")
    assert call(ours.url, "net_version")["result"] == str(ours_chain_id())
    assert call(ours.url, "net_listening")["result"] is True
    assert call(ours.url, "net_peerCount")["result"] == "0x0"
    assert call(ours.url, "eth_accounts")["result"] == []


def test_arity_errors_name_the_argument(ours):
    assert call(ours.url, "eth_getBalance")["error"] == {"code": -32602, "message": "missing value for required argument 0"}
    assert call(ours.url, "eth_chainId", 1)["error"] == {"code": -32602, "message": "too many arguments, want at most 0"}
    assert call(ours.url, "eth_getBlockByNumber", "0x0")["error"]["message"] == "missing value for required argument 1"
    assert call(ours.url, "eth_getBlockByNumber", "0x00", False)["error"]["message"] == \
        "invalid argument 0: hex number with leading zero digits"


def test_cors_and_idle_timeout(tmp_path):
    import sys
    import time

    from tests.rpc.nodes import NodeProcess, free_port

    port, ws_port = free_port(), free_port()
    code = ("import sys, genesis\nfrom node.app import NodeConfig, run_node\nfrom node.rpc import RpcConfig\n"
            "run_node(NodeConfig(sys.argv[1], genesis.devnet(), 0, RpcConfig(port=int(sys.argv[2]), "
            "cors_origins=('https://wallet.example',), idle_timeout=1.0, ws_port=int(sys.argv[3]))))")
    node = NodeProcess([sys.executable, "-c", code, str(tmp_path / "d"), str(port), str(ws_port)],
                       port, tmp_path / "log").wait_ready()
    try:
        from websockets.sync.client import connect

        with connect(f"ws://127.0.0.1:{ws_port}") as ws:  # the extra --ws.port listener
            ws.send(rpc_body("eth_chainId").decode())
            assert json.loads(ws.recv(timeout=20))["result"] == hex(ours_chain_id())
        status, headers, _ = exchange(node.url, b"OPTIONS / HTTP/1.1\r\nOrigin: https://wallet.example\r\n\r\n")
        assert status == 204 and headers["access-control-allow-origin"] == "https://wallet.example"
        status, headers, _ = exchange(node.url, post(rpc_body("eth_chainId"), headers="Origin: https://evil.example\r\n"))
        assert status == 200 and "access-control-allow-origin" not in headers
        with socket.create_connection(("127.0.0.1", port), timeout=20) as idle:  # slow loris
            idle.sendall(b"POST / HTTP/1.1\r\nContent-Len")
            started = time.monotonic()
            assert idle.recv(100) == b""  # closed by the server
            assert time.monotonic() - started < 15
        assert call(node.url, "eth_chainId")["result"]
    finally:
        assert node.stop() == 0  # SIGTERM is a clean shutdown
    assert "JSON-RPC listening on http://127.0.0.1:" in (tmp_path / "log").read_text()


RAW_REQUESTS = st.one_of(
    st.binary(max_size=2048),
    st.builds(lambda verb, head, body: verb + b" / HTTP/1.1\r\n" + head + b"\r\n\r\n" + body,
              st.sampled_from([b"POST", b"GET", b"OPTIONS", b"post", b""]),
              st.binary(max_size=300), st.binary(max_size=300)),
    st.builds(lambda length, body: b"POST / HTTP/1.1\r\nContent-Length: " + length + b"\r\n\r\n" + body,
              st.sampled_from([b"0", b"5", b"99999999999999999999", b"-1", b"0x10", b" 7 ", b""]),
              st.binary(max_size=64)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=RAW_REQUESTS)
def test_arbitrary_bytes_never_break_the_server(ours, raw):
    host, port = ours.url[7:].split(":")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    if answer:
        assert answer.startswith(b"HTTP/1.1 ") and b" 500 " not in answer.split(b"\r\n", 1)[0]
    assert call(ours.url, "eth_chainId")["result"]
