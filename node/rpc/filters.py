"""Polling filters (eth_newFilter & co.) and WebSocket subscriptions, fed by block commits.

The node calls its listeners from whichever thread committed a block; `FilterHub.listener`
hops onto the trio loop with the loop's token, so all filter state is touched by one thread.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Callable

import trio

from node.rpc.errors import RpcError
from node.rpc.format import hexdata, header_only
from node.rpc.params import LogFilter

log = logging.getLogger(__name__)


def new_id() -> str:
    return "0x" + os.urandom(16).hex()


@dataclass
class PollFilter:
    kind: str  # "logs" | "blocks" | "pending"
    criteria: LogFilter | None
    pending: list = field(default_factory=list)
    last_poll: float = field(default_factory=time.monotonic)


@dataclass
class Subscription:
    kind: str
    criteria: LogFilter | None
    deliver: Callable[[str, object], bool]  # False when the client cannot keep up


class FilterHub:
    """Owns every filter and subscription; `logs_for_block(number, criteria)` queries logs."""

    def __init__(self, logs_for_block: Callable[[int, LogFilter], list[dict]], *,
                 timeout: float = 300.0, max_filters: int = 10_000) -> None:
        self.logs_for_block = logs_for_block
        self.timeout = timeout
        self.max_filters = max_filters
        self.filters: dict[str, PollFilter] = {}
        self.subscriptions: dict[str, Subscription] = {}
        self._token: trio.lowlevel.TrioToken | None = None

    # -- wiring ---------------------------------------------------------------
    def attach(self) -> None:
        self._token = trio.lowlevel.current_trio_token()

    def detach(self) -> None:
        self._token = None

    def listener(self, block, receipts) -> None:
        """Node listener, any thread: schedule `on_block` on the loop."""
        token = self._token
        if token is None:
            return
        try:
            token.run_sync_soon(self.on_block, block)
        except trio.RunFinishedError:
            pass

    # -- polling filters --------------------------------------------------------
    def _expire(self) -> None:
        deadline = time.monotonic() - self.timeout
        for fid in [f for f, flt in self.filters.items() if flt.last_poll < deadline]:
            del self.filters[fid]

    def install(self, kind: str, criteria: LogFilter | None = None) -> str:
        self._expire()
        if len(self.filters) >= self.max_filters:
            raise RpcError("too many filters installed", code=-32005)
        fid = new_id()
        self.filters[fid] = PollFilter(kind, criteria)
        return fid

    def get(self, fid: str) -> PollFilter:
        self._expire()
        flt = self.filters.get(fid)
        if flt is None:
            raise RpcError("filter not found")
        flt.last_poll = time.monotonic()
        return flt

    def changes(self, fid: str) -> list:
        flt = self.get(fid)
        out, flt.pending = flt.pending, []
        return out

    def uninstall(self, fid: str) -> bool:
        return self.filters.pop(fid, None) is not None

    # -- subscriptions ----------------------------------------------------------
    def subscribe(self, kind: str, criteria: LogFilter | None, deliver) -> str:
        sid = new_id()
        self.subscriptions[sid] = Subscription(kind, criteria, deliver)
        return sid

    def unsubscribe(self, sid: str) -> bool:
        return self.subscriptions.pop(sid, None) is not None

    # -- events -----------------------------------------------------------------
    def on_block(self, block) -> None:
        header = block.header
        block_hash = hexdata(header.hash)
        log_cache: dict = {}

        def logs(criteria: LogFilter) -> list[dict]:
            key = (criteria.addresses, criteria.topics)
            if key not in log_cache:
                log_cache[key] = self.logs_for_block(header.block_number, criteria)
            return log_cache[key]

        try:
            for flt in self.filters.values():
                if flt.kind == "blocks":
                    flt.pending.append(block_hash)
                elif flt.kind == "logs" and _in_range(flt.criteria, header.block_number):
                    flt.pending.extend(logs(flt.criteria))
            heads = None
            for sid, sub in list(self.subscriptions.items()):
                if sub.kind == "newHeads":
                    heads = heads or header_only(header)
                    ok = sub.deliver(sid, heads)
                elif sub.kind == "logs":
                    ok = all(sub.deliver(sid, entry) for entry in logs(sub.criteria))
                else:
                    continue
                if not ok:
                    self.subscriptions.pop(sid, None)
        except Exception:  # a bad filter must not stop block notifications for everyone
            log.exception("filter update failed for block %d", header.block_number)

    def on_pending(self, tx_hash: bytes) -> None:
        value = hexdata(tx_hash)
        for flt in self.filters.values():
            if flt.kind == "pending":
                flt.pending.append(value)
        for sid, sub in list(self.subscriptions.items()):
            if sub.kind == "newPendingTransactions" and not sub.deliver(sid, value):
                self.subscriptions.pop(sid, None)


def _in_range(criteria: LogFilter, number: int) -> bool:
    if criteria.block_hash is not None:
        return False
    lo, hi = criteria.from_block, criteria.to_block
    if isinstance(lo, int) and number < lo:
        return False
    if isinstance(hi, int) and number > hi:
        return False
    return True
