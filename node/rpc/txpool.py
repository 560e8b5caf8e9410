"""The `txpool_` namespace (go-ethereum's): what the pool holds, for operators and explorers.

Off unless `--http.api` names `txpool`, as in geth. `pending` are executable now; `queued` wait
behind a nonce gap."""
from __future__ import annotations

from typing import Annotated

from eth_utils import to_checksum_address

from node.rpc import format as F
from node.rpc import params as P
from node.rpc.namespaces import RpcContext, register_namespace


def _by_sender(content: dict, render) -> dict:
    return {to_checksum_address(sender): {str(tx.nonce): render(tx) for tx in txs}
            for sender, txs in content.items()}


def _summary(tx) -> str:
    """geth's txpool_inspect line: `to: value wei + gas gas × price wei`."""
    to = to_checksum_address(tx.to) if tx.to else "contract creation"
    price = tx.max_fee_per_gas if F.tx_type(tx) >= 2 else tx.gas_price
    return f"{to}: {tx.value} wei + {tx.gas} gas × {price} wei"


class TxPoolApi:
    def __init__(self, ctx: RpcContext) -> None:
        self.pool = ctx.node.mempool

    def content(self) -> dict:
        return {"pending": _by_sender(self.pool.content(), F.transaction),
                "queued": _by_sender(self.pool.queued(), F.transaction)}

    def content_from(self, address: Annotated[bytes, P.address]) -> dict:
        return {kind: {str(tx.nonce): F.transaction(tx) for tx in txs.get(address, [])}
                for kind, txs in (("pending", self.pool.content()), ("queued", self.pool.queued()))}

    def status(self) -> dict:
        return {"pending": F.qty(len(self.pool.pending())),
                "queued": F.qty(sum(len(txs) for txs in self.pool.queued().values()))}

    def inspect(self) -> dict:
        return {"pending": _by_sender(self.pool.content(), _summary),
                "queued": _by_sender(self.pool.queued(), _summary)}

    def methods(self) -> dict:
        return {"txpool_content": self.content, "txpool_contentFrom": self.content_from,
                "txpool_status": self.status, "txpool_inspect": self.inspect}


register_namespace("txpool", lambda ctx: TxPoolApi(ctx).methods())
