"""The node process: storage, mempool, block production, RPC, p2p, blob store, CLI."""
