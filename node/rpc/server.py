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

Fault isolation lives here, once, where connections are served (`Transport._connection`): an
error while serving one connection, whatever raised it, ends that connection only. The client
gets a JSON-RPC error where it can still read one, the node logs one line naming the peer and
the reason and counts it in `Transport.stats`; nothing a client sends reaches the nursery that
runs block production. (`Dispatcher.handle_body` likewise turns a bug in answering one request
body into a -32603 answer, so a keep-alive connection survives it.)

Browsers are held to the operator's lists, with go-ethereum's rules: `--http.vhosts` (Host names
allowed to reach the HTTP server: IP addresses always, names only when listed; DNS rebinding
uses names), `--http.corsdomain` (origins that get CORS headers and preflight answers) and
`--ws.origins` (origins allowed to open a WebSocket; clients that send no Origin are not
browsers and are let through).
"""
from __future__ import annotations

import collections
import errno
import ipaddress
import logging
import math
import os
import socket
import traceback

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
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from node.rpc.dispatch import Dispatcher, error_body
from node.rpc.errors import INVALID_REQUEST
from node.rpc.studio import is_studio

log = logging.getLogger(__name__)

MAX_HEAD = 64 * 1024
RECV = 65536
DRAIN_SECONDS = 2.0
WS_WRITE_TIMEOUT = 10.0  # geth's WebSocket write deadline: a client that stops reading is dropped
FAIRNESS_EVERY = 16  # requests served back to back on one connection before yielding
_STATUS = {
    200: b"200 OK", 204: b"204 No Content", 400: b"400 Bad Request", 403: b"403 Forbidden",
    405: b"405 Method Not Allowed", 411: b"411 Length Required", 413: b"413 Payload Too Large",
    404: b"404 Not Found", 415: b"415 Unsupported Media Type", 431: b"431 Request Header Fields Too Large",
    500: b"500 Internal Server Error", 503: b"503 Service Unavailable", 505: b"505 HTTP Version Not Supported",
}
# Errors that mean the peer went away or stopped reading (socket errors: resets, broken pipes; a WebSocket
# write past its deadline, an answer to a WebSocket the client has closed), not that we failed.
_GONE = (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError, OSError, LocalProtocolError)
# accept() errors that concern one incoming connection (or a moment of pressure), not the listener
_ACCEPT_RETRY = {errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.EINTR, errno.ENETDOWN, errno.ENOPROTOOPT,
                 errno.EHOSTDOWN, errno.ENONET, errno.EHOSTUNREACH, errno.EOPNOTSUPP, errno.ENETUNREACH,
                 errno.EAGAIN}
_FD_PRESSURE = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
_INTERNAL_ERROR_BODY = b'{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"internal error"}}'
INTERNAL_ERROR_HTTP = (b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: "
                       + str(len(_INTERNAL_ERROR_BODY)).encode() + b"\r\nConnection: close\r\n\r\n"
                       + _INTERNAL_ERROR_BODY)
# What a WebSocket client gets when its connection fails on our side: a JSON-RPC error it can
# read, then a close frame with 1011 (internal error); server frames are not masked.
INTERNAL_ERROR_WS = (bytes([0x81, len(_INTERNAL_ERROR_BODY)]) + _INTERNAL_ERROR_BODY
                     + bytes([0x88, 2 + len(b"internal error")]) + (1011).to_bytes(2, "big") + b"internal error")


def _split_faults(exc: BaseException) -> tuple[BaseException | None, BaseException | None]:
    """(the errors in `exc`, the rest): cancellation and interpreter exits are not faults of a
    connection and must go on up; errors raised in nested nurseries arrive as groups."""
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(Exception)
    return (exc, None) if isinstance(exc, Exception) else (None, exc)


def _leaves(exc: BaseException):
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


def _describe(exc: BaseException) -> str:
    """One line: the error and where it was raised (the innermost frame of the node's code)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = ""
    if frames:
        frame = ([f for f in frames if "/node/" in f.filename] or frames)[-1]
        at = frame.filename.rfind("/node/")
        where = f" at {frame.filename[at + 1:] if at >= 0 else os.path.basename(frame.filename)}:{frame.lineno}"
    text = str(exc).replace("\n", " ")[:200]
    return f"{type(exc).__name__}{': ' + text if text else ''}{where}"


def _host_name(host: bytes) -> str:
    """The name part of a Host header value (go-ethereum: SplitHostPort, else the whole value)."""
    text = host.decode("latin-1").strip().lower()
    if text.startswith("["):  # [v6]:port or [v6]
        return text[1:text.find("]")] if "]" in text else text
    if text.count(":") == 1:
        return text.split(":", 1)[0]
    return text


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def _origin_parts(origin: str) -> tuple[str, str, str]:
    """(scheme, hostname, port) of an origin or an allow-list entry, as geth's parseOriginURL:
    an entry without a scheme matches any scheme, without a port any port."""
    scheme, sep, rest = origin.partition("://")
    if not sep:
        scheme, rest = "", origin
    rest = rest.split("/", 1)[0]
    if rest.startswith("["):
        end = rest.find("]")
        host, port = rest[1:end], rest[end + 2:] if end >= 0 and rest[end + 1:end + 2] == ":" else ""
    else:
        host, _, port = rest.partition(":")
    return scheme, host, port


def _origin_allowed(rules: frozenset[str], origin: str) -> bool:
    """geth's rule for WebSocket origins (ruleAllowsOrigin): each part an entry names must match."""
    scheme, host, port = _origin_parts(origin)
    for rule in rules:
        if rule == "*":
            return True
        r_scheme, r_host, r_port = _origin_parts(rule)
        if (not r_scheme or r_scheme == scheme) and (not r_host or r_host == host) and (not r_port or r_port == port):
            return True
    return False


def _cors_allowed(rules: frozenset[str], origin: str) -> bool:
    """rs/cors's rule, which geth's --http.corsdomain uses: `*`, an exact origin (case
    insensitive), or a pattern with one `*` (https://*.example.org)."""
    if "*" in rules or origin in rules:
        return True
    for rule in rules:
        prefix, star, suffix = rule.partition("*")
        if star and len(origin) >= len(prefix) + len(suffix) and origin.startswith(prefix) and origin.endswith(suffix):
            return True
    return False


class _Connection:
    """What the fault guard needs to know about one connection to answer a failure."""

    __slots__ = ("sock", "peer", "pending", "ws_fault")

    def __init__(self, sock: socket.socket, peer: str) -> None:
        self.sock = sock
        self.peer = peer
        self.pending = False  # an HTTP request read and not yet answered
        self.ws_fault = None  # bytes to send a WebSocket client on a fault, once upgraded


class Transport:
    """Serves one listener's connections: JSON-RPC over HTTP POST, or WebSocket after an upgrade.

    `stats` counts connections (`connections`, `closed`) and how they ended (`connection_errors`:
    our faults, each logged; `client_gone`: resets and clients that stopped reading;
    `forbidden_host`, `forbidden_origin`: browsers refused)."""

    def __init__(self, dispatcher: Dispatcher, *, max_body: int, cors_origins: tuple[str, ...] = (),
                 vhosts: tuple[str, ...] = ("localhost",), ws_origins: tuple[str, ...] = (),
                 ws_session_factory=None, idle_timeout: float = 120.0, studio=None, probe=None) -> None:
        self.dispatcher = dispatcher
        self.studio = studio  # node.rpc.studio.StudioFiles when the node serves the web app at /studio
        self.probe = probe  # GET path -> (status, JSON body) or None: /health and /ready (node.health)
        self.max_body = max_body
        self.idle_timeout = idle_timeout  # a request must arrive whole within it (slow-loris guard)
        self.cors_origins = frozenset(o.strip().lower() for o in cors_origins if o.strip())
        self.vhosts = frozenset(h.strip().lower() for h in vhosts if h.strip())
        origins = frozenset(o.strip().lower() for o in ws_origins if o.strip())
        if not origins:  # geth: with no --ws.origins, pages on localhost and this host's name
            origins = frozenset({"http://localhost", "http://" + socket.gethostname().lower()})
        self.ws_origins = origins
        self.ws_session_factory = ws_session_factory
        self.stats: collections.Counter[str] = collections.Counter()
        self._hosts: dict[bytes, bool] = {}  # Host header value -> allowed (bounded cache)

    def _host_allowed(self, host: bytes | None) -> bool:
        """go-ethereum's virtual-host rule: no Host, or an IP address, or a listed name (`*` any)."""
        if host is None or "*" in self.vhosts:
            return True
        allowed = self._hosts.get(host)
        if allowed is None:
            name = _host_name(host)
            allowed = not name or _is_ip(name) or name in self.vhosts
            if len(self._hosts) < 1024:
                self._hosts[host] = allowed
        return allowed

    def _cors(self, origin: bytes | None) -> bytes:
        """The CORS headers of an answer to `origin` (none for an origin not allowed)."""
        if not self.cors_origins or origin is None:
            return b""
        text = origin.decode("latin-1").lower()
        if not _cors_allowed(self.cors_origins, text):
            return b""
        allowed = b"*" if "*" in self.cors_origins else origin
        return b"Access-Control-Allow-Origin: " + allowed + b"\r\nVary: Origin\r\n"

    def _preflight(self, headers: dict[bytes, bytes]) -> bytes:
        """Headers answering a CORS preflight (rs/cors, as geth configures it: POST and GET,
        any request header, cached for 600 s), or none for an origin not allowed."""
        cors = self._cors(headers.get(b"origin"))
        if not cors:
            return b""
        method = headers.get(b"access-control-request-method", b"").upper()
        cors += b"Vary: Access-Control-Request-Method\r\nVary: Access-Control-Request-Headers\r\n"
        if method not in (b"POST", b"GET", b"OPTIONS", b"HEAD"):
            return cors
        requested = headers.get(b"access-control-request-headers")
        return (cors + b"Access-Control-Allow-Methods: " + method + b"\r\n"
                + (b"Access-Control-Allow-Headers: " + requested + b"\r\n" if requested else b"")
                + b"Access-Control-Max-Age: 600\r\n")

    async def serve(self, listener: socket.socket, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Accept connections on a listening socket until cancelled."""
        listener.setblocking(False)
        accepted = 0
        async with trio.open_nursery() as nursery:
            task_status.started()
            try:
                while True:
                    accepted += 1
                    if accepted % FAIRNESS_EVERY == 0:  # a connection flood must not starve the served
                        await trio.lowlevel.checkpoint()
                    try:
                        conn, address = listener.accept()
                    except BlockingIOError:
                        await trio.lowlevel.wait_readable(listener)
                        continue
                    except OSError as exc:
                        if exc.errno in _FD_PRESSURE:
                            self.stats["accept_backoff"] += 1
                            log.warning("accept failed (%s); retrying shortly", exc)  # out of fds: back off
                            await trio.sleep(0.1)
                            continue
                        if exc.errno in _ACCEPT_RETRY:  # that one connection failed
                            await trio.lowlevel.checkpoint()
                            continue
                        raise
                    try:
                        conn.setblocking(False)
                        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    except OSError:  # reset between accept and here
                        conn.close()
                        continue
                    peer = f"{address[0]}:{address[1]}" if isinstance(address, tuple) else str(address)
                    nursery.start_soon(self._connection, conn, peer)
            finally:
                listener.close()

    async def handle(self, sock: socket.socket) -> None:
        """Serve one accepted connection (also for callers with their own listener)."""
        try:
            peer = "%s:%s" % sock.getpeername()[:2]
        except OSError:
            peer = "?"
        await self._connection(sock, peer)

    async def _connection(self, sock: socket.socket, peer: str) -> None:
        """Serve one connection; the one place where its failures stop (see the module doc)."""
        conn = _Connection(sock, peer)
        self.stats["connections"] += 1
        try:
            # The slow-loris and idle guard: a connection is closed when no request has been
            # answered for `idle_timeout`, which also bounds one request's handling and answer
            # (as geth's WriteTimeout does; EVM calls stop far sooner, at `evm_timeout`). One
            # scope per connection, its deadline moved forward as requests are answered: a scope
            # per wait cost more than parsing the request.
            with trio.CancelScope(deadline=trio.current_time() + self.idle_timeout) as idle:
                await self._http(conn, idle)
        except BaseException as exc:  # noqa: B036 - split below: cancellation goes on up
            errors, rest = _split_faults(exc)
            if errors is not None:
                self._fault(conn, errors)
            if rest is not None:
                raise rest from None
        finally:
            self.stats["closed"] += 1
            sock.close()

    def _fault(self, conn: _Connection, errors: BaseException) -> None:
        leaves = list(_leaves(errors))
        if all(isinstance(e, _GONE) for e in leaves):
            self.stats["client_gone"] += 1
            if log.isEnabledFor(logging.DEBUG):  # a flood of resets must not cost a traceback walk each
                log.debug("rpc: connection from %s ended by the client: %s", conn.peer, _describe(leaves[0]))
            return
        fault = next(e for e in leaves if not isinstance(e, _GONE))
        self.stats["connection_errors"] += 1
        log.warning("rpc: connection from %s ended by an error: %s", conn.peer, _describe(fault))
        answer = INTERNAL_ERROR_HTTP if conn.pending else conn.ws_fault
        if answer:
            try:  # best effort, never waiting: the client may be gone or not reading
                conn.sock.send(answer)
            except OSError:
                pass

    async def _http(self, conn: _Connection, idle: trio.CancelScope) -> None:
        sock = conn.sock
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
                name, value = name.strip().lower(), value.strip()
                if not sep or not name:
                    await _respond(sock, 400, b"malformed header", close=True)
                    return
                if name == b"content-length" and headers.get(name, value) != value:
                    # two different lengths: the classic request-smuggling ambiguity, refuse it
                    await _respond(sock, 400, b"conflicting Content-Length headers", close=True)
                    return
                headers[name] = value
            connection = headers.get(b"connection", b"").lower()
            keep_alive = b"close" not in connection if version == b"HTTP/1.1" else b"keep-alive" in connection
            if not self._host_allowed(headers.get(b"host")):  # DNS rebinding: a name not in --http.vhosts
                self.stats["forbidden_host"] += 1
                await _respond(sock, 403, b"invalid host specified", close=True)
                return
            origin = headers.get(b"origin")
            # HTTP/1.0 keep-alive must be confirmed in the answer
            confirm = b"Connection: keep-alive\r\n" if keep_alive and version != b"HTTP/1.1" else b""
            cors = self._cors(origin) if origin is not None else b""
            ok_extra = cors + confirm

            if verb == b"GET" and headers.get(b"upgrade", b"").lower() == b"websocket":
                if self.ws_session_factory is None:
                    await _respond(sock, 400, b"websocket not enabled", close=True)
                    return
                if origin is not None and not _origin_allowed(self.ws_origins, origin.decode("latin-1").lower()):
                    self.stats["forbidden_origin"] += 1
                    log.info("rpc: refused a WebSocket from %s: origin %s not in --ws.origins", conn.peer,
                             origin.decode("latin-1")[:100])
                    await _respond(sock, 403, b"websocket: request origin not allowed by Upgrader.CheckOrigin",
                                   close=True)
                    return
                idle.deadline = math.inf  # a WebSocket stays open while the client keeps it
                stream = trio.SocketStream(trio.socket.from_stdlib_socket(sock))
                await self._websocket(conn, stream, head + b"\r\n\r\n" + buf)
                return
            if verb == b"OPTIONS":
                preflight = self._preflight(headers) if origin is not None else b""
                await _respond(sock, 204, b"", extra=preflight + confirm, close=not keep_alive)
            elif verb == b"GET" and self.studio is not None and is_studio(parts[1]):
                status, ctype, content, headers = self.studio.answer(parts[1])
                await _respond(sock, status, content, ctype=ctype, extra=headers + confirm, close=not keep_alive)
            elif verb == b"GET":  # /health and /ready (node.health); any other path: 200, as geth answers a bare GET
                answer = self.probe(parts[1]) if self.probe is not None else None
                if answer is None:
                    await _respond(sock, 200, b"", extra=ok_extra, close=not keep_alive)
                else:
                    await _respond(sock, answer[0], answer[1], json=True, extra=ok_extra, close=not keep_alive)
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
                conn.pending = True
                answer = await self.dispatcher.handle_body(body)
                conn.pending = False
                await _respond(sock, 200, answer or b"", json=answer is not None, extra=ok_extra,
                               close=not keep_alive)
            if not keep_alive:
                return

    async def _websocket(self, conn: _Connection, stream: trio.SocketStream, received: bytes) -> None:
        ws = WSConnection(ConnectionType.SERVER)
        session = None
        send_lock = trio.Lock()

        async def send(payload: str | bytes | None = None, event=None) -> None:
            async with send_lock:
                data = ws.send(event if event is not None else TextMessage(
                    data=payload.decode() if isinstance(payload, bytes) else payload))
                # a client that stops reading is dropped, as geth's write deadline drops it
                with trio.fail_after(WS_WRITE_TIMEOUT):
                    await stream.send_all(data)

        fragments: list = []
        size = 0
        async with trio.open_nursery() as nursery:
            try:
                ws.receive_data(received)  # the upgrade request: wsproto checks it
                while True:
                    for event in ws.events():
                        if isinstance(event, Request):
                            await send(event=AcceptConnection())
                            conn.ws_fault = INTERNAL_ERROR_WS
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
                elif session is None:  # an upgrade request it could not read (no Host, no key)
                    await _respond(conn.sock, 400, b"bad websocket upgrade request", close=True)
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


async def _respond(sock, status: int, body: bytes, *, json: bool = False, extra: bytes = b"", close: bool = False,
                   ctype: bytes | None = None) -> None:
    ctype = ctype or (b"application/json" if json else b"text/plain")
    head = (b"HTTP/1.1 " + _STATUS[status] + b"\r\nContent-Type: " + ctype + b"\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n" + extra + (b"Connection: close\r\n" if close else b"") + b"\r\n")
    await _send_all(sock, head + body)
