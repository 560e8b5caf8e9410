"""The `web3_` and `net_` namespaces: client identity and network facts."""
from __future__ import annotations

import platform
from typing import Annotated

from eth_utils import keccak

from node.rpc import params as P
from node.rpc.format import hexdata, qty
from node.rpc.namespaces import RpcContext, register_namespace

CLIENT_VERSION = f"openledger/v0.1.0/{platform.system().lower()}-{platform.machine()}/python{platform.python_version()}"


def web3_methods(ctx: RpcContext) -> dict:
    def client_version() -> str:
        return CLIENT_VERSION

    def sha3(payload: Annotated[bytes, P.data]) -> str:
        return hexdata(keccak(payload))

    return {"web3_clientVersion": client_version, "web3_sha3": sha3}


def net_methods(ctx: RpcContext) -> dict:
    def version() -> str:
        return str(ctx.node.chain_id)  # decimal string, as geth answers

    def listening() -> bool:
        return True

    def peer_count() -> str:
        return qty(len(getattr(ctx.node, "peers", ())))

    return {"net_version": version, "net_listening": listening, "net_peerCount": peer_count}


register_namespace("web3", web3_methods)
register_namespace("net", net_methods)
