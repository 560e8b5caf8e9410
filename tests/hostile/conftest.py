"""Fixtures and raw clients for the hostile-input suite: real `openledger devnet` processes (as
`make run` starts them) driven over raw sockets, so nothing in a client library smooths the input."""
from __future__ import annotations

import json
import pathlib
import socket
import time
from collections.abc import Iterator

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

from tests.rpc.nodes import NodeProcess, call, devnet_process

HEAD_END = b"\r\n\r\n"


def start_devnet(tmp: pathlib.Path, *flags: str, block_time: float = 1, port: int | None = None) -> NodeProcess:
    """`openledger devnet` as `make run` starts it, on a fresh data dir and a free port (or `port`)."""
    if port is None:
        return devnet_process(tmp, "--block-time", str(block_time), *flags).wait_ready()
    from tests.rpc.nodes import openledger

    cmd = openledger("devnet", "--datadir", str(tmp), "--http.port", str(port), "--block-time", str(block_time), *flags)
    return NodeProcess(cmd, port, tmp.with_name(tmp.name + ".log")).wait_ready()


def start_run_node(tmp: pathlib.Path, *flags: str, port: int | None = None) -> NodeProcess:
    """`openledger init` a devnet genesis into a data dir, then `openledger run` on it (the
    production command, with go-ethereum's defaults for browsers)."""
    import subprocess

    import genesis
    from tests.rpc.nodes import ROOT, free_port, openledger

    tmp.mkdir(parents=True, exist_ok=True)
    spec = tmp / "genesis.json"
    spec.write_text(genesis.to_json(genesis.devnet()))
    subprocess.run(openledger("init", str(spec), "--datadir", str(tmp / "data")), cwd=ROOT, check=True,
                   capture_output=True)
    port = port or free_port()
    cmd = openledger("run", "--datadir", str(tmp / "data"), "--http.port", str(port), "--block-time", "1", *flags)
    return NodeProcess(cmd, port, tmp / "run.log").wait_ready()


@pytest.fixture(scope="session")
def node(tmp_path_factory) -> Iterator[NodeProcess]:
    """One devnet (1 s blocks) that every hostile test in the session attacks: it must still be
    running at the end."""
    n = start_devnet(tmp_path_factory.mktemp("hostile") / "devnet")
    yield n
    alive = n.proc.poll() is None
    n.stop()
    assert alive, f"the node exited: {n.log.read_text(errors='replace')[-3000:]}"


RETURNS_1MIB = bytes.fromhex("62100000" "6000f3")  # runtime: PUSH3 0x100000 PUSH1 0 RETURN (1 MiB of zeros)


def deploy(n: NodeProcess, runtime: bytes, key_index: int = 9) -> str:
    """Deploy `runtime` (at most 32 bytes) from a dev account; its address once mined."""
    from tests.conftest import DEV_ACCOUNTS, sign

    assert len(runtime) <= 32
    initcode = (bytes([0x60 + len(runtime) - 1]) + runtime + bytes.fromhex("600052")
                + bytes([0x60, len(runtime), 0x60, 32 - len(runtime), 0xF3]))
    address, key = DEV_ACCOUNTS[key_index]
    nonce = int(n.rpc("eth_getTransactionCount", address, "pending"), 16)
    raw = sign(key, nonce, to=None, value=0, data=initcode, gas=200_000)
    tx_hash = n.rpc("eth_sendRawTransaction", "0x" + raw.hex())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        receipt = n.rpc("eth_getTransactionReceipt", tx_hash)
        if receipt is not None:
            assert receipt["status"] == "0x1", receipt
            return receipt["contractAddress"]
        time.sleep(0.1)
    raise AssertionError("deployment not mined")


def assert_alive(n: NodeProcess) -> None:
    """The process is up and another client still gets answers."""
    assert n.proc.poll() is None, f"the node exited with {n.proc.returncode}: {n.log.read_text(errors='replace')[-3000:]}"
    assert "result" in call(n.url, "eth_blockNumber", timeout=30)


def read_response(sock: socket.socket, buf: bytearray) -> tuple[int, dict[str, str], bytes]:
    """(status, lower-cased headers, body) of one HTTP response; leftover bytes stay in `buf`."""
    while HEAD_END not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a response")
        buf += chunk
    head, _, rest = bytes(buf).partition(HEAD_END)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers.get("content-length", 0))
    rest = bytearray(rest)
    while len(rest) < length:
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("closed inside a response body")
        rest += chunk
    buf[:] = rest[length:]
    return status, headers, bytes(rest[:length])


def http(n: NodeProcess, raw: bytes, timeout: float = 60) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes on a fresh connection; the first response."""
    with socket.create_connection(("127.0.0.1", n.port), timeout=timeout) as sock:
        sock.sendall(raw)
        return read_response(sock, bytearray())


def post(body: bytes, headers: str = "Content-Type: application/json\r\n", host: str = "localhost") -> bytes:
    return f"POST / HTTP/1.1\r\nHost: {host}\r\n{headers}Content-Length: {len(body)}\r\n\r\n".encode() + body


def rpc(method: str, *params, id_=1) -> dict:
    return {"jsonrpc": "2.0", "id": id_, "method": method, "params": list(params)}


def body(obj) -> bytes:
    return json.dumps(obj).encode()


class RawWebSocket:
    """A WebSocket client over a plain socket (wsproto framing), for clients that misbehave."""

    def __init__(self, port: int, headers: list[tuple[bytes, bytes]] = (), timeout: float = 30) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.sock.sendall(self.ws.send(Request(host="localhost", target="/", extra_headers=list(headers))))
        self.accepted = False
        self.refused = None
        self.pending: list = []  # events that came with the handshake's answer
        deadline = time.monotonic() + timeout
        while not self.accepted and self.refused is None and time.monotonic() < deadline:
            data = self.sock.recv(65536)
            if not data:
                break
            self.ws.receive_data(data)
            for event in self.ws.events():
                if isinstance(event, AcceptConnection):
                    self.accepted = True
                elif not self.accepted and self.refused is None:
                    self.refused = event
                else:
                    self.pending.append(event)

    def _events(self):
        while self.pending:
            yield self.pending.pop(0)
        yield from self.ws.events()

    def send(self, text: str) -> None:
        self.sock.sendall(self.ws.send(TextMessage(data=text)))

    def frame(self, text: str) -> bytes:
        return self.ws.send(TextMessage(data=text))

    def recv(self) -> str:
        parts = []
        while True:
            for event in self._events():
                if isinstance(event, TextMessage):
                    parts.append(event.data)
                    if event.message_finished:
                        return "".join(parts)
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed")
            self.ws.receive_data(data)

    def close_code(self) -> int | None:
        """Read until the server's close frame; its code (None if the socket just closed)."""
        from wsproto.events import CloseConnection

        while True:
            for event in self._events():
                if isinstance(event, CloseConnection):
                    return event.code
            data = self.sock.recv(65536)
            if not data:
                return None
            self.ws.receive_data(data)

    def reset(self) -> None:
        """Close with RST instead of FIN (SO_LINGER 0), as a crashed or hostile client does."""
        import struct

        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self) -> None:
        self.sock.close()
