"""JSON-RPC over HTTP and WebSocket: `serve(node, config)`, namespaces plug in by name."""
from node.rpc import eth as _eth  # noqa: F401  (registers the eth namespace)
from node.rpc import web3net as _web3net  # noqa: F401  (registers web3 and net)
from node.rpc.config import RpcConfig
from node.rpc.errors import RpcError
from node.rpc.namespaces import RpcContext, extend_namespace, register_namespace
from node.rpc.service import serve

__all__ = ["RpcConfig", "RpcContext", "RpcError", "extend_namespace", "register_namespace", "serve"]
