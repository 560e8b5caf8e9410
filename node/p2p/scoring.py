"""Peer scores and bans.

Written here rather than taken from gossipsub's `score_params` because that score only gates
gossip (mesh membership, what it forwards): it never disconnects or bans a peer and it does not
see our request/response streams, while a peer that sends garbage must lose its connection
whatever protocol it used.
"""
from __future__ import annotations

import dataclasses
import time

from libp2p.peer.id import ID

from node.p2p.wire import Fault


@dataclasses.dataclass(frozen=True, slots=True)
class ScoreConfig:
    ban_below: float = -80.0          # four malformed or two oversized messages within ~20 s
    recovery_per_s: float = 1.0       # a penalty fades, so honest peers with rare faults stay
    ban_seconds: float = 600.0


class PeerScores:
    """Each peer's score (0 = clean, lower = worse, recovering towards 0) and who is banned."""

    def __init__(self, config: ScoreConfig, clock=time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._scores: dict[ID, tuple[float, float]] = {}   # peer -> (score, when)
        self._banned_until: dict[ID, float] = {}

    def score(self, peer: ID) -> float:
        value, when = self._scores.get(peer, (0.0, self._clock()))
        return min(0.0, value + (self._clock() - when) * self.config.recovery_per_s)

    def penalise(self, peer: ID, fault: Fault) -> bool:
        """Lower `peer`'s score; True if this ban is new (the caller disconnects it)."""
        value = self.score(peer) - fault.value
        self._scores[peer] = (value, self._clock())
        if value >= self.config.ban_below or self.is_banned(peer):
            return False
        self._banned_until[peer] = self._clock() + self.config.ban_seconds
        return True

    def is_banned(self, peer: ID) -> bool:
        return self._banned_until.get(peer, 0.0) > self._clock()

    def expire_bans(self) -> list[ID]:
        """Forget bans that ran out (their score restarts at 0); the peers set free."""
        now = self._clock()
        freed = [peer for peer, until in self._banned_until.items() if until <= now]
        for peer in freed:
            del self._banned_until[peer]
            self._scores.pop(peer, None)
        return freed
