"""Flooding clients, each run as its own process (`python -m tests.hostile.attackers KIND PORT
SECONDS [ADDRESS]`) so the client whose latency is measured shares no interpreter with them.
Each keeps up its attack for SECONDS and then exits; it prints how much it sent."""
from __future__ import annotations

import json
import os
import random
import socket
import struct
import sys
import threading
import time

from wsproto import ConnectionType, WSConnection
from wsproto.events import Request, TextMessage


def _post(body: bytes) -> bytes:
    return (b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body)


def _rpc(method: str, *params, id_=1) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": id_, "method": method, "params": list(params)}).encode()


def _connect(port: int) -> socket.socket | None:
    try:
        return socket.create_connection(("127.0.0.1", port), timeout=10)
    except OSError:
        return None


def _reset(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def connections(port: int, until: float, count: int = 3000) -> int:
    """Open many connections and hold them without sending anything."""
    held = []
    while len(held) < count and time.monotonic() < until:
        sock = _connect(port)
        if sock is None:
            time.sleep(0.05)
            continue
        held.append(sock)
    while time.monotonic() < until:
        time.sleep(0.1)
    for sock in held:
        sock.close()
    return len(held)


def slowloris(port: int, until: float, count: int = 400) -> int:
    """Many connections, each sending its request head one byte a second."""
    head = b"POST / HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 10_000
    socks = [s for s in (_connect(port) for _ in range(count)) if s is not None]
    sent = 0
    while time.monotonic() < until:
        for sock in socks:
            try:
                sock.send(head[sent % len(head):sent % len(head) + 1])
            except OSError:
                pass
        sent += 1
        time.sleep(1.0)
    for sock in socks:
        sock.close()
    return len(socks)


def never_read_http(port: int, until: float, address: str, count: int = 40) -> int:
    """Pipelined requests with large answers, none of them read; then a reset."""
    request = _post(_rpc("eth_call", {"to": address}, "latest"))
    sent = 0
    while time.monotonic() < until:
        socks = [s for s in (_connect(port) for _ in range(count)) if s is not None]
        for sock in socks:
            sock.setblocking(False)
            try:
                for _ in range(50):
                    sock.send(request)
                    sent += 1
            except OSError:
                pass
        time.sleep(min(3.0, max(0.0, until - time.monotonic())))
        for sock in socks:
            _reset(sock)
    return sent


def _ws(port: int) -> tuple[socket.socket, WSConnection] | None:
    sock = _connect(port)
    if sock is None:
        return None
    ws = WSConnection(ConnectionType.CLIENT)
    try:
        sock.sendall(ws.send(Request(host="localhost", target="/")))
        ws.receive_data(sock.recv(65536))
        list(ws.events())
    except OSError:
        sock.close()
        return None
    return sock, ws


def never_read_ws(port: int, until: float, address: str, count: int = 40) -> int:
    """WebSocket clients sending requests with large answers, reading none, then resetting
    (the issue's second crash case, many at once)."""
    sent = 0
    while time.monotonic() < until:
        clients = [c for c in (_ws(port) for _ in range(count)) if c is not None]
        for sock, ws in clients:
            sock.setblocking(False)
            frame = ws.send(TextMessage(data=_rpc("eth_call", {"to": address}, "latest").decode()))
            try:
                for _ in range(30):
                    sock.send(frame)
                    sent += 1
            except OSError:
                pass
        time.sleep(min(2.0, max(0.0, until - time.monotonic())))
        for sock, _ in clients:
            _reset(sock)
    return sent


def _hammer(port: int, until: float, body: bytes, counter: list) -> None:
    request = _post(body)
    sock = None
    while time.monotonic() < until:
        try:
            if sock is None:
                sock = _connect(port)
                if sock is None:
                    time.sleep(0.05)
                    continue
            sock.sendall(request)
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = sock.recv(65536)
                if not chunk:
                    raise OSError("closed")
                buf += chunk
            head, _, rest = buf.partition(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            while len(rest) < length:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    raise OSError("closed")
                rest += chunk
            counter[0] += 1
        except (OSError, IndexError, ValueError):
            if sock is not None:
                sock.close()
            sock = None


def _threads(port: int, until: float, body: bytes, count: int) -> int:
    counter = [0]
    threads = [threading.Thread(target=_hammer, args=(port, until, body, counter)) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counter[0]


def request_flood(port: int, until: float) -> int:
    """Keep-alive clients sending cheap requests back to back."""
    return _threads(port, until, _rpc("eth_getBalance", "0x" + "11" * 20, "latest"), 16)


def batch_flood(port: int, until: float) -> int:
    """Batches of 1,000 requests (geth's batch limit) back to back."""
    batch = json.dumps([{"jsonrpc": "2.0", "id": i, "method": "eth_getBalance",
                         "params": ["0x" + "11" * 20, "latest"]} for i in range(1000)]).encode()
    return _threads(port, until, batch, 4)


def heavy_calls(port: int, until: float) -> int:
    """eth_calls that run to the gas cap (an endless loop: JUMPDEST PUSH1 0 JUMP)."""
    return _threads(port, until, _rpc("eth_call", {"data": "0x5b600056", "gas": hex(50_000_000)}, "latest"), 8)


def garbage(port: int, until: float) -> int:
    """Random bytes, half-requests and resets on fresh connections."""
    rng = random.Random(7)
    sent = 0
    while time.monotonic() < until:
        sock = _connect(port)
        if sock is None:
            continue
        try:
            sock.sendall(rng.choice([os.urandom(rng.randrange(1, 4096)), b"POST / HTTP/1.1\r\nContent-Length: 99\r\n\r\n{",
                                     b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
                                     _post(b"[" * 100_000), _post(os.urandom(2000))]))
            sent += 1
        except OSError:
            pass
        if rng.random() < 0.5:
            _reset(sock)
        else:
            sock.close()
    return sent


KINDS = {"connections": connections, "slowloris": slowloris, "never_read_http": never_read_http,
         "never_read_ws": never_read_ws, "request_flood": request_flood, "batch_flood": batch_flood,
         "heavy_calls": heavy_calls, "garbage": garbage}

if __name__ == "__main__":
    kind, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    extra = sys.argv[4:]
    done = KINDS[kind](port, time.monotonic() + seconds, *extra)
    print(json.dumps({"kind": kind, "sent": done}), flush=True)
