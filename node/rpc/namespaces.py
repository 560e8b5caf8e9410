"""The table of RPC namespaces: each maps wire names to handlers; `--http.api` picks which are on.

Other parts (ol_, debug_, txpool_, ots_) call `register_namespace` at import time with a builder
that receives the `RpcContext` and returns `{wire_name: handler}`.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

import trio

if TYPE_CHECKING:
    from node.rpc.config import RpcConfig

Builder = Callable[["RpcContext"], Mapping[str, Callable[..., Any]]]
# One module per namespace, each registering itself on import; loaded before --http.api is resolved.
NAMESPACE_MODULES = ("node.rpc.eth", "node.rpc.web3net", "node.rpc.debug", "node.rpc.txpool", "node.rpc.ots",
                     "node.rpc.eth_extra", "node.rpc.ol", "node.rpc.testing")
_NAMESPACES: dict[str, Builder] = {}
_EXTENSIONS: dict[str, list[Builder]] = {}


@dataclass
class RpcContext:
    """What handlers share: the node, settings, limiters for work that leaves the event loop."""

    node: Any
    config: RpcConfig
    hub: Any = None  # node.rpc.filters.FilterHub
    on_transaction: Callable[[bytes], None] | None = None  # block producer wake-up (automine)
    readiness: Any = None  # node.health.Readiness: eth_syncing agrees with /ready
    call_limiter: trio.CapacityLimiter = field(default=None)  # eth_call / estimateGas
    states: dict = field(default_factory=dict)  # state root -> read-only state (event loop only)
    blocks: dict = field(default_factory=dict)  # block hash -> decoded block (event loop only)
    receipts: dict = field(default_factory=dict)  # block hash -> receipts (event loop only)

    def __post_init__(self) -> None:
        if self.call_limiter is None:
            self.call_limiter = trio.CapacityLimiter(self.config.heavy_calls)


def register_namespace(name: str, build: Builder) -> None:
    """Add a namespace (`debug`, `ots`, ...); every wire name it builds must start with `name_`."""
    if name in _NAMESPACES and _NAMESPACES[name] is not build:
        raise ValueError(f"RPC namespace {name!r} is already registered")
    _NAMESPACES[name] = build


def extend_namespace(name: str, build: Builder) -> None:
    """Add methods to a namespace registered elsewhere (e.g. eth_getProof into `eth`)."""
    builders = _EXTENSIONS.setdefault(name, [])
    if build not in builders:
        builders.append(build)


def known_namespaces() -> list[str]:
    return sorted(_NAMESPACES)


def load_namespaces() -> None:
    for module in NAMESPACE_MODULES:
        importlib.import_module(module)


def check_apis(apis: tuple[str, ...]) -> None:
    """Raise ValueError naming any `--http.api` entry that no namespace provides."""
    load_namespaces()
    unknown = [a for a in apis if a not in _NAMESPACES]
    if unknown:
        raise ValueError(f"unknown --http.api {','.join(unknown)}: known are {','.join(known_namespaces())}")


def build_methods(ctx: RpcContext, apis: tuple[str, ...]) -> dict[str, Callable[..., Any]]:
    check_apis(apis)
    methods: dict[str, Callable[..., Any]] = {}
    for api in apis:
        for build in (_NAMESPACES[api], *_EXTENSIONS.get(api, ())):
            for wire_name, handler in build(ctx).items():
                if not wire_name.startswith(api + "_"):
                    raise ValueError(f"namespace {api} may not define {wire_name}")
                if wire_name in methods:
                    raise ValueError(f"RPC method {wire_name} is defined twice")
                methods[wire_name] = handler
    return methods
