"""HTTP/1.1 (keep-alive) and WebSocket transport for JSON-RPC in the trio event loop.

Why a hand-written HTTP reader: JSON-RPC needs only POST with Content-Length, and the speed goal
(a wallet's keep-alive connection at least as fast as anvil; 16 concurrent connections at 0.3x
anvil) leaves tens of microseconds per request on these machines. h11/hypercorn spend more than
that on parsing and ASGI plumbing alone; trio's SocketStream halved a do-nothing server's
throughput against trio's socket (10.6k vs 19.3k req/s under wrk), and trio's socket in turn
costs about 25% more CPU per request than the non-blocking stdlib socket waited on with
`trio.lowlevel.wait_readable`, which is what this module uses, under one cancel scope per
connection for the idle deadline (a scope per wait cost a fifth of a trivial request). The request line and headers are
split by hand (only the few headers JSON-RPC needs are read); WebSocket framing, which is
subtle, is left to wsproto after the upgrade request has been read.
"""
from __future__ import annotations

import errno
import logging
import math
import socket

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Request,
    TextMessage,
)
from wsproto.utilities import RemoteProtocolError

from node.rpc.dispatch import Dispatcher, error_body
from node.rpc.errors import INVALID_REQUEST

log = logging.getLogger(__name__)

MAX_HEAD = 64 * 1024
RECV = 65536
DRAIN_SECONDS = 2.0
FAIRNESS_EVERY = 16  # requests served back to back on one connection before yielding
_STATUS = {
    200: b"200 OK", 204: b"204 No Content", 400: b"400 Bad Request", 405: b"405 Method Not Allowed",
    411: b"411 Length Required", 413: b"413 Payload Too Large", 415: b"415 Unsupported Media Type",
    431: b"431 Request Header Fields Too Large", 505: b"505 HTTP Version Not Supported",
}


class Transport:
    """Serves one listener's connections: JSON-RPC over HTTP POST, or WebSocket after an upgrade."""

    def __init__(self, dispatcher: Dispatcher, *, max_body: int, cors_origins: tuple[str, ...] = (),
                 ws_session_factory=None, idle_timeout: float = 120.0) -> None:
        self.dispatcher = dispatcher
        self.max_body = max_body
        self.idle_timeout = idle_timeout  # a request must arrive whole within it (slow-loris guard)
        self.cors_origins = cors_origins
        self.ws_session_factory = ws_session_factory

    def _cors(self, origin: bytes | None) -> bytes:
        if not self.cors_origins or origin is None:
            return b""
        if "*" in self.cors_origins:
            allowed = b"*"
        elif origin.decode("latin-1") in self.cors_origins:
            allowed = origin
        else:
            return b""
        return (b"Access-Control-Allow-Origin: " + allowed + b"\r\nAccess-Control-Allow-Methods: POST, GET, OPTIONS\r\n"
                b"Access-Control-Allow-Headers: Content-Type\r\nAccess-Control-Max-Age: 600\r\nVary: Origin\r\n")

    async def serve(self, listener: socket.socket, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Accept connections on a listening socket until cancelled."""
        listener.setblocking(False)
        async with trio.open_nursery() as nursery:
            task_status.started()
            try:
                while True:
                    try:
                        conn, _ = listener.accept()
                    except BlockingIOError:
                        await trio.lowlevel.wait_readable(listener)
                        continue
                    except OSError as exc:
                        if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                            log.warning("accept failed (%s); retrying shortly", exc)  # out of fds: back off
                            await trio.sleep(0.1)
                            continue
                        raise
                    conn.setblocking(False)
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    nursery.start_soon(self.handle, conn)
            finally:
                listener.close()

    async def handle(self, sock: socket.socket) -> None:
        try:
            # The slow-loris and idle guard: a connection is closed when no request has been
            # answered for `idle_timeout`, which also bounds one request's handling and answer
            # (as geth's WriteTimeout does; EVM calls stop far sooner, at `evm_timeout`). One
            # scope per connection, its deadline moved forward as requests are answered: a scope
            # per wait cost more than parsing the request.
            with trio.CancelScope(deadline=trio.current_time() + self.idle_timeout) as idle:
                await self._http(sock, idle)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            sock.close()

    async def _http(self, sock: socket.socket, idle: trio.CancelScope) -> None:
        buf = b""
        served = 0
        slack = self.idle_timeout / 16  # move the deadline only when it has aged this much
        while True:
            served += 1
            if served % FAIRNESS_EVERY == 0:  # a pipelining client must not starve the others
                await trio.lowlevel.checkpoint()
            deadline = trio.current_time() + self.idle_timeout
            if deadline - idle.deadline > slack:
                idle.deadline = deadline
            end = buf.find(b"\r\n\r\n")
            while end < 0:
                if len(buf) > MAX_HEAD:
                    await _respond(sock, 431, b"request header too large", close=True)
                    return
                # With nothing buffered the next request cannot be there yet (the client waits
                # for our answer): wait first, and save the recv that would fail with EAGAIN.
                chunk = await _recv(sock, RECV, wait_first=not buf)
                if not chunk:
                    return
                buf += chunk
                end = buf.find(b"\r\n\r\n")
            if end > MAX_HEAD:
                await _respond(sock, 431, b"request header too large", close=True)
                return
            head, buf = buf[:end], buf[end + 4:]
            lines = head.split(b"\r\n")
            parts = lines[0].split(b" ")
            if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
                await _respond(sock, 505 if len(parts) == 3 else 400, b"bad request line", close=True)
                return
            verb, version = parts[0], parts[2]
            headers = {}
            for line in lines[1:]:
                name, sep, value = line.partition(b":")
                if not sep:
                    await _respond(sock, 400, b"malformed header", close=True)
                    return
                name, value = name.strip().lower(), value.strip()
                if name == b"content-length" and headers.get(name, value) != value:
                    # two different lengths: the classic request-smuggling ambiguity, refuse it
                    await _respond(sock, 400, b"conflicting Content-Length headers", close=True)
                    return
                headers[name] = value
            connection = headers.get(b"connection", b"").lower()
            keep_alive = b"close" not in connection if version == b"HTTP/1.1" else b"keep-alive" in connection
            cors = self._cors(headers.get(b"origin"))
            # HTTP/1.0 keep-alive must be confirmed in the answer
            ok_extra = cors + (b"Connection: keep-alive\r\n" if keep_alive and version != b"HTTP/1.1" else b"")

            if verb == b"GET" and headers.get(b"upgrade", b"").lower() == b"websocket":
                if self.ws_session_factory is None:
                    await _respond(sock, 400, b"websocket not enabled", close=True)
                    return
                idle.deadline = math.inf  # a WebSocket stays open while the client keeps it
                stream = trio.SocketStream(trio.socket.from_stdlib_socket(sock))
                await self._websocket(stream, head + b"\r\n\r\n" + buf)
                return
            if verb == b"OPTIONS":
                await _respond(sock, 204, b"", extra=ok_extra, close=not keep_alive)
            elif verb == b"GET":  # health check, as geth answers a bare GET
                await _respond(sock, 200, b"", extra=ok_extra, close=not keep_alive)
            elif verb != b"POST":
                await _respond(sock, 405, b"method not allowed", close=True)
                return
            else:
                if b"transfer-encoding" in headers:
                    await _respond(sock, 411, b"chunked bodies are not supported; send Content-Length", close=True)
                    return
                try:
                    length = int(headers.get(b"content-length", b"0"))
                    if length < 0:
                        raise ValueError
                except ValueError:
                    await _respond(sock, 400, b"invalid Content-Length", close=True)
                    return
                if length > self.max_body:
                    body = error_body(None, INVALID_REQUEST, f"content length too large ({length} > {self.max_body})")
                    await _respond(sock, 413, body, json=True, extra=cors, close=True)
                    await _drain(sock, length - len(buf))
                    return
                ctype = headers.get(b"content-type", b"application/json").split(b";")[0].strip().lower()
                if ctype != b"application/json":
                    await _respond(sock, 415, b"invalid content type, only application/json is supported",
                                   extra=cors, close=True)
                    return
                if b"100-continue" in headers.get(b"expect", b"").lower():
                    await _send_all(sock, b"HTTP/1.1 100 Continue\r\n\r\n")
                if len(buf) < length:
                    body_buf = bytearray(buf)
                    while len(body_buf) < length:
                        chunk = await _recv(sock, max(RECV, length - len(body_buf)))
                        if not chunk:
                            return
                        body_buf += chunk
                    buf = bytes(body_buf)
                body, buf = buf[:length], buf[length:]
                answer = await self.dispatcher.handle_body(body)
                await _respond(sock, 200, answer or b"", json=answer is not None, extra=ok_extra,
                               close=not keep_alive)
            if not keep_alive:
                return

    async def _websocket(self, stream: trio.SocketStream, received: bytes) -> None:
        ws = WSConnection(ConnectionType.SERVER)
        ws.receive_data(received)
        session = None
        send_lock = trio.Lock()

        async def send(payload: str | bytes | None = None, event=None) -> None:
            async with send_lock:
                data = ws.send(event if event is not None else TextMessage(
                    data=payload.decode() if isinstance(payload, bytes) else payload))
                await stream.send_all(data)

        fragments: list = []
        size = 0
        async with trio.open_nursery() as nursery:
            try:
                while True:
                    for event in ws.events():
                        if isinstance(event, Request):
                            await send(event=AcceptConnection())
                            session = self.ws_session_factory(send, nursery)
                        elif isinstance(event, (TextMessage, BytesMessage)):
                            fragments.append(event.data)
                            size += len(event.data)
                            if size > self.max_body:
                                await send(event=CloseConnection(code=1009, reason="message too big"))
                                return
                            if not event.message_finished:
                                continue
                            joined = "".join(fragments) if isinstance(event, TextMessage) else b"".join(fragments)
                            fragments, size = [], 0
                            answer = await self.dispatcher.handle_body(
                                joined.encode() if isinstance(joined, str) else joined, session.methods)
                            if answer is not None:
                                await send(answer)
                        elif isinstance(event, Ping):
                            await send(event=event.response())
                        elif isinstance(event, CloseConnection):
                            await send(event=event.response())
                            return
                    data = await stream.receive_some(RECV)
                    if not data:
                        return
                    ws.receive_data(data)
            except RemoteProtocolError as exc:
                if exc.event_hint is not None:  # wsproto's own rejection of a bad handshake
                    await stream.send_all(ws.send(exc.event_hint))
            finally:
                if session is not None:
                    session.close()
                nursery.cancel_scope.cancel()


async def _drain(sock, remaining: int) -> None:
    """Read and drop a refused body for a moment before closing: closing with unread data
    resets the connection, and the client would lose the 413 we just sent."""
    with trio.move_on_after(DRAIN_SECONDS):
        while remaining > 0:
            chunk = await _recv(sock, RECV)
            if not chunk:
                return
            remaining -= len(chunk)


# Socket calls go straight to the non-blocking stdlib socket and wait with trio only when the
# kernel says EAGAIN: trio's socket wrappers add two scheduler passes per call, which on one
# keep-alive connection cost more than the request itself.
async def _recv(sock: socket.socket, size: int, wait_first: bool = False) -> bytes:
    """Bytes from `sock`, waiting for them as long as the caller's cancel scope allows."""
    if wait_first:
        await trio.lowlevel.wait_readable(sock)
    while True:
        try:
            return sock.recv(size)
        except BlockingIOError:
            await trio.lowlevel.wait_readable(sock)


async def _send_all(sock: socket.socket, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[sock.send(view):]
        except BlockingIOError:
            await trio.lowlevel.wait_writable(sock)


async def _respond(sock, status: int, body: bytes, *, json: bool = False, extra: bytes = b"", close: bool = False) -> None:
    ctype = b"application/json" if json else b"text/plain"
    head = (b"HTTP/1.1 " + _STATUS[status] + b"\r\nContent-Type: " + ctype + b"\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n" + extra + (b"Connection: close\r\n" if close else b"") + b"\r\n")
    await _send_all(sock, head + body)
