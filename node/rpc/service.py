"""`serve`: wire a Node to the JSON-RPC transport on one or two listeners, inside a trio nursery."""
from __future__ import annotations

import collections
import socket
from typing import Annotated, Callable

import orjson
import trio

from node.rpc import params as P
from node.rpc.config import RpcConfig
from node.rpc.dispatch import Dispatcher, method_table
from node.rpc.errors import RpcError
from node.rpc.eth import Eth
from node.rpc.filters import FilterHub
from node.rpc.namespaces import RpcContext, build_methods
from node.rpc.server import Transport
from node.rpc.studio import StudioFiles

SUBSCRIPTION_KINDS = ("newHeads", "logs", "newPendingTransactions")
NOTIFICATION_QUEUE = 1024  # a client further behind than this loses its subscriptions


class WsSession:
    """One WebSocket connection's subscriptions: eth_subscribe/eth_unsubscribe and a sender task."""

    def __init__(self, hub: FilterHub, send, nursery: trio.Nursery, max_subscriptions: int) -> None:
        self.hub = hub
        self.max_subscriptions = max_subscriptions
        self.ids: set[str] = set()
        self._out, inbox = trio.open_memory_channel(NOTIFICATION_QUEUE)
        nursery.start_soon(self._sender, inbox, send)
        self.methods = method_table({"eth_subscribe": self.subscribe, "eth_unsubscribe": self.unsubscribe})

    async def _sender(self, inbox, send) -> None:
        async for payload in inbox:
            await send(payload)

    def _deliver(self, sid: str, result: object) -> bool:
        message = {"jsonrpc": "2.0", "method": "eth_subscription", "params": {"subscription": sid, "result": result}}
        try:
            self._out.send_nowait(orjson.dumps(message))
            return True
        except (trio.WouldBlock, trio.ClosedResourceError):
            self.ids.discard(sid)
            return False

    def subscribe(self, kind: Annotated[str, P.string], criteria: object = None) -> str:
        if kind not in SUBSCRIPTION_KINDS:
            raise RpcError(f'no "{kind}" subscription in eth namespace', code=-32601)
        if len(self.ids) >= self.max_subscriptions:
            raise RpcError("too many subscriptions on this connection", code=-32005)
        parsed = None
        if kind == "logs":
            try:
                parsed = P.log_filter(criteria if criteria is not None else {})
            except ValueError as exc:
                raise RpcError(f"invalid argument 1: {exc}", code=-32602) from None
        elif criteria is not None and kind != "newPendingTransactions":
            raise RpcError("too many arguments, want at most 1", code=-32602)
        sid = self.hub.subscribe(kind, parsed, self._deliver)
        self.ids.add(sid)
        return sid

    def unsubscribe(self, sid: Annotated[str, P.filter_id]) -> bool:
        if sid not in self.ids:
            raise RpcError("subscription not found")
        self.ids.discard(sid)
        return self.hub.unsubscribe(sid)

    def close(self) -> None:
        for sid in self.ids:
            self.hub.unsubscribe(sid)
        self.ids.clear()
        self._out.close()


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket (IPv6 when the address is one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=1024)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None


async def serve(node, config: RpcConfig, *, on_transaction: Callable[[bytes], None] | None = None,
                stats: collections.Counter | None = None, readiness=None, rpc_metrics=None,
                task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Serve JSON-RPC until cancelled; `task_status.started` gets the bound HTTP URL(s).

    `stats`, when given, receives the transport's counters (see `Transport.stats`) and
    `internal_errors`, the requests answered -32603. `readiness` (node.health.Readiness) answers
    GET /health and /ready and eth_syncing; `rpc_metrics` (node.metrics.RpcMetrics) counts requests."""
    ctx = RpcContext(node=node, config=config, on_transaction=on_transaction, readiness=readiness)
    hub = FilterHub(lambda number, criteria: Eth(ctx).logs_in(number, number, criteria),
                    timeout=config.filter_timeout, max_filters=config.max_filters)
    ctx.hub = hub
    dispatcher = Dispatcher(method_table(build_methods(ctx, config.apis)), max_batch=config.max_batch,
                            max_response_bytes=config.max_response_bytes)
    dispatcher.metrics = rpc_metrics

    def session(send, nursery):
        return WsSession(hub, send, nursery, config.max_subscriptions_per_connection)

    transport = Transport(dispatcher, max_body=config.max_body, cors_origins=config.cors_origins,
                          vhosts=config.vhosts, ws_origins=config.ws_origins,
                          ws_session_factory=session if config.ws else None, idle_timeout=config.idle_timeout,
                          studio=StudioFiles() if config.studio else None,
                          probe=readiness.probe if readiness is not None else None)
    if stats is not None:  # the caller's counters (node metrics): connections and how they ended
        transport.stats = dispatcher.stats = stats
    hub.attach()
    node.add_listener(hub.listener)
    try:
        async with trio.open_nursery() as nursery:
            listeners = [_listen(config.host, config.port)]
            if config.ws_port is not None:
                listeners.append(_listen(config.host, config.ws_port))
            urls = []
            for listener in listeners:
                host, port = listener.getsockname()[:2]
                urls.append(f"http://{host}:{port}" if ":" not in host else f"http://[{host}]:{port}")
                await nursery.start(transport.serve, listener)
            task_status.started(urls)
    finally:
        hub.detach()
