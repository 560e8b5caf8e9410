"""Peer-to-peer networking on py-libp2p: what the node calls (docs/p2p.md)."""
from node.p2p.host import load_or_create_key
from node.p2p.scoring import ScoreConfig
from node.p2p.service import FetchFailed, Handlers, Inbound, P2P, P2PConfig, open_p2p
from node.p2p.wire import Fault, Kind, Limits

__all__ = ["FetchFailed", "Fault", "Handlers", "Inbound", "Kind", "Limits", "P2P", "P2PConfig",
           "ScoreConfig", "load_or_create_key", "open_p2p"]
