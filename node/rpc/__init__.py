"""JSON-RPC over HTTP and WebSocket: `serve(node, config)`; one module per namespace (eth, net and
web3, debug, txpool, ots, ol, testing), each registering its wire names by name."""
from node.rpc.config import RpcConfig
from node.rpc.errors import RpcError
from node.rpc.namespaces import RpcContext, extend_namespace, register_namespace
from node.rpc.service import serve

__all__ = ["RpcConfig", "RpcContext", "RpcError", "extend_namespace", "register_namespace", "serve"]
