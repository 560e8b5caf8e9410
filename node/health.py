"""`/health` and `/ready`, as load balancers and orchestrators probe a node, and `eth_syncing`.

`/health` says the process answers (200 whenever the event loop serves the request). `/ready` says
the node may take traffic: 200 when every check passes, else 503; the JSON body names each check:

- **synced**: the head is at least the best height peers report (until p2p reports one, a node
  counts as synced);
- **head advancing**: the head block is at most `--ready.blocktimes` block times old (with a floor
  of MIN_MAX_AGE seconds, as block timestamps are whole seconds), or `--ready.maxage` seconds when
  set; a chain without a block clock (`--block-time 0`, blocks only for transactions) skips this
  check unless `--ready.maxage` is given. A fresh node whose head is still its genesis (stamped at
  the chain's creation) is therefore not ready until its first block;
- **peers**: at least `--ready.peers` peers, once the p2p layer reports a count (`peer_count`).

`eth_syncing` agrees with the first two: false exactly when the node is synced and its head is
advancing, else go-ethereum's object (startingBlock, currentBlock, highestBlock), highestBlock
being the best peer height or, for a head that stopped, the height its clock says it should have.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

MIN_MAX_AGE = 10.0  # seconds: block timestamps are whole seconds, and a producer can lag a slot


@dataclass(frozen=True)
class ReadinessConfig:
    """`--ready.blocktimes`, `--ready.maxage`, `--ready.peers`."""

    block_times: float = 3.0
    max_age: float | None = None  # seconds; None: block_times block times
    min_peers: int = 1

    def __post_init__(self) -> None:
        if not self.block_times > 0:
            raise ValueError(f"invalid --ready.blocktimes {self.block_times}: must be positive")
        if self.max_age is not None and not self.max_age > 0:
            raise ValueError(f"invalid --ready.maxage {self.max_age}: must be positive")
        if self.min_peers < 0:
            raise ValueError(f"invalid --ready.peers {self.min_peers}: must be >= 0")


@dataclass(frozen=True)
class Status:
    ready: bool
    synced: bool  # synced and head advancing: what eth_syncing reports
    checks: dict = field(default_factory=dict)  # check name -> {"ok": bool, ...}
    head: int = 0
    highest: int = 0


class Readiness:
    """The node's readiness, computed on each probe from its head and the clock.

    The p2p layer plugs in `peer_count()` and `best_peer_height()`; until it does, peers are not
    checked and the node's own head is the best known."""

    def __init__(self, node, block_time: float, config: ReadinessConfig = ReadinessConfig(),
                 clock: Callable[[], float] = time.time) -> None:
        self.node = node
        self.block_time = block_time
        self.config = config
        self.clock = clock
        self.starting_block = node.head().block_number
        self.peer_count: Callable[[], int] | None = None
        self.best_peer_height: Callable[[], int] | None = None

    @property
    def max_age(self) -> float | None:
        """Seconds the head may age before the node is not ready; None: not checked."""
        if self.config.max_age is not None:
            return self.config.max_age
        if self.block_time > 0:
            return max(self.config.block_times * self.block_time, MIN_MAX_AGE)
        return None

    def status(self) -> Status:
        head = self.node.head()
        number = head.block_number
        age = max(0.0, self.clock() - head.timestamp)
        best = self.best_peer_height() if self.best_peer_height is not None else None
        checks = {"synced": {"ok": best is None or number >= best, "head": number,
                             "highest": number if best is None else max(best, number)}}
        limit = self.max_age
        checks["head_advancing"] = {"ok": limit is None or age <= limit, "age_s": round(age, 3),
                                    "max_age_s": limit}
        if self.peer_count is not None:
            peers = self.peer_count()
            checks["peers"] = {"ok": peers >= self.config.min_peers, "peers": peers, "min": self.config.min_peers}
        synced = checks["synced"]["ok"] and checks["head_advancing"]["ok"]
        highest = checks["synced"]["highest"]
        if not checks["head_advancing"]["ok"]:  # what the block clock says the height should be by now
            behind = int(age // self.block_time) if self.block_time > 0 else 1
            highest = max(highest, number + max(1, behind))
        return Status(ready=all(c["ok"] for c in checks.values()), synced=synced, checks=checks,
                      head=number, highest=highest)

    def syncing(self) -> bool | dict:
        """eth_syncing's answer."""
        status = self.status()
        if status.synced:
            return False
        return {"startingBlock": hex(min(self.starting_block, status.head)), "currentBlock": hex(status.head),
                "highestBlock": hex(status.highest)}

    def probe(self, path: bytes) -> tuple[int, bytes] | None:
        """(HTTP status, JSON body) for GET `path`, or None for a path that is not a probe."""
        path = path.split(b"?", 1)[0]
        if path == b"/health":
            return 200, b'{"status":"ok"}'
        if path == b"/ready":
            status = self.status()
            body = {"status": "ready" if status.ready else "not ready", "checks": status.checks}
            return (200 if status.ready else 503), orjson.dumps(body)
        return None
