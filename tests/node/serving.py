"""An in-process Node served over real JSON-RPC (HTTP on a free port) for web3.py, while the test
seals blocks itself with `Node.produce_block`, so what goes into which block is deterministic."""
import contextlib
import functools
import threading
from collections.abc import Iterator

import trio
from web3 import Web3

from node.chain import Node
from node.rpc import RpcConfig, serve
from tests.rpc.nodes import free_port


@contextlib.contextmanager
def web3_for(node: Node, apis: tuple[str, ...] | None = None) -> Iterator[Web3]:
    """web3.py connected to `node`'s JSON-RPC server (the namespaces `apis`, else the default ones),
    run in a thread with its own trio loop."""
    port, ready, loop = free_port(), threading.Event(), {}
    config = RpcConfig(port=port) if apis is None else RpcConfig(port=port, apis=apis)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            loop["cancel"], loop["token"] = nursery.cancel_scope, trio.lowlevel.current_trio_token()
            await nursery.start(functools.partial(serve, node, config))
            ready.set()

    thread = threading.Thread(target=trio.run, args=(main,), daemon=True)
    thread.start()
    try:
        assert ready.wait(60), "the JSON-RPC server did not start"
        yield Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}", request_kwargs={"timeout": 30}))
    finally:
        if "token" in loop:
            trio.from_thread.run_sync(loop["cancel"].cancel, trio_token=loop["token"])
        thread.join(30)
