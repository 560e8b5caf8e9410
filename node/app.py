"""`run_node(config)`: the node process's one trio event loop.

Opens the Node, re-admits the local transactions of the pool's journal, then runs block
production (the consensus driver, node/validator.py: one validator is its own quorum), the
local-transaction tracker and the RPC server side by side; SIGINT/SIGTERM cancel them, and
everything closes in reverse order of opening (server, consensus, then the database, after any
block being committed has landed).

Only the node's own tasks may stop the process: a failure of one (block production, the
tracker, the listener itself) ends the node with one `fatal:` line and exit status 1. Clients
cannot reach this far: the RPC transport ends a failing connection there (node/rpc/server.py).
"""
from __future__ import annotations

import collections
import contextlib
import functools
import gc
import logging
import math
import os
import pathlib
import signal
import sys
import threading
from dataclasses import dataclass, field

import trio

import genesis as genesis_mod
from node import health, logs
from node import metrics as node_metrics
from node.chain import Node
from node.mempool import PoolConfig
from node.rpc import RpcConfig, serve
from node.validator import ConsensusDriver

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NodeConfig:
    """What `openledger devnet` / `openledger run` ask for."""

    datadir: str | os.PathLike
    genesis: genesis_mod.Genesis | None = None  # given: create or check the data dir; None: open it
    block_time: float | None = None  # seconds; None: the genesis's; 0: mine as soon as a tx arrives
    rpc: RpcConfig = field(default_factory=RpcConfig)
    txpool: PoolConfig = field(default_factory=PoolConfig)  # --txpool.* (limits, journal)
    settlement: object | None = None  # node.settlement.service.SettlementConfig (--l1 ...): signer, batcher, proposer
    metrics: node_metrics.MetricsConfig = field(default_factory=node_metrics.MetricsConfig)  # --metrics*
    readiness: health.ReadinessConfig = field(default_factory=health.ReadinessConfig)  # --ready.*
    validator_key: bytes | None = None  # the staking key votes are signed with (--validator-key)
    p2p_listen: str | None = None  # --p2p.listen multiaddr; None: no p2p (a lone validator)
    bootnodes: tuple[str, ...] = ()  # --bootnodes: peers' multiaddrs with /p2p/<peer id>
    p2p_announce: tuple[str, ...] = ()  # --p2p.announce: the addresses peers are told to dial

    def __post_init__(self) -> None:
        if self.block_time is not None and (not math.isfinite(self.block_time) or self.block_time < 0):
            raise ValueError(f"invalid --block-time {self.block_time}: want a number of seconds >= 0")


def open_node(config: NodeConfig) -> Node:
    return Node.init(config.datadir, config.genesis) if config.genesis is not None else Node.open(config.datadir)


async def produce_blocks(driver: ConsensusDriver) -> None:
    """Block production: the consensus driver (node/validator.py), for one validator as for many.
    Execution runs in worker threads so RPC keeps answering while a block is built; a
    cancellation waits for the thread committing a block, so a commit is never cut off half way."""
    await driver.run()


def validator_key(config: NodeConfig, node: Node) -> bytes | None:
    """The staking key this node signs with: the configured one, or the devnet's well-known
    validator key when the genesis has that validator alone (so `run` on a devnet genesis
    still produces blocks); None: not a validator, follow only."""
    if config.validator_key is not None:
        return config.validator_key
    dev_address, dev_key = genesis_mod.dev_validator()
    if [v.address for v in node.genesis.validators] == [bytes.fromhex(dev_address[2:])]:
        return bytes.fromhex(dev_key[2:])
    return None


RECHECK_SECONDS = 60.0  # go-ethereum's locals tracker recheck interval
SWITCH_INTERVAL = 0.0005  # seconds a thread may hold the GIL while another waits (Python: 0.005)


class NodeTaskFailed(RuntimeError):
    """One of the node's own tasks failed; the node stops."""


async def _node_task(name: str, fn, *args, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Run one of the node's own tasks; a failure of it stops the node with a clear message."""
    try:
        if task_status is trio.TASK_STATUS_IGNORED:
            await fn(*args)
        else:
            await fn(*args, task_status=task_status)
    except Exception as exc:
        cause = next(_leaves(exc))  # the error itself, out of the nurseries it passed through
        raise NodeTaskFailed(f"{name} failed: {type(cause).__name__}: {cause}") from exc


async def track_locals(node: Node, config: PoolConfig, wake) -> None:
    """The local-transaction tracker's clock (go-ethereum's TxTracker loop): resubmit tracked
    transactions the pool has dropped while they are still valid, every minute, and rewrite the
    journal every `--txpool.rejournal`."""
    tracker = node.mempool.locals
    interval = min(RECHECK_SECONDS, config.rejournal)
    next_rotation = trio.current_time() + config.rejournal
    while True:
        await trio.sleep(interval)
        resubmitted, _ = await trio.to_thread.run_sync(tracker.recheck)
        if resubmitted:
            wake()
        if trio.current_time() >= next_rotation:
            await trio.to_thread.run_sync(tracker.rotate)
            next_rotation = trio.current_time() + config.rejournal


def open_journal(node: Node, config: PoolConfig) -> None:
    """Start tracking local transactions and re-admit the journal's (before clients connect)."""
    if config.no_locals:
        return
    journal = None
    if config.journal:
        journal = pathlib.Path(config.journal)
        if not journal.is_absolute():
            journal = pathlib.Path(node.datadir) / journal
    node.mempool.locals.open(journal)
    admitted, dropped = node.mempool.locals.load()
    if admitted or dropped:
        print(f"txpool journal {journal}: re-admitted {admitted} local transactions, dropped {dropped} "
              "(mined, replaced or no longer valid)", flush=True)


async def _until_signal(cancel_scope: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info("received %s, shutting down", signal.Signals(signum).name)
            print(f"received {signal.Signals(signum).name}, shutting down", flush=True)
            cancel_scope.cancel()
            return


async def run_node_async(config: NodeConfig, *, stats: collections.Counter | None = None,
                         task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Run the node until cancelled. `stats` gets the RPC transport's counters (connections,
    how they ended, internal errors; see node.rpc.server.Transport)."""
    # EVM work (eth_call, block building) runs in worker threads that hold the GIL for as long
    # as the interpreter lets them: with Python's default 5 ms, a client's eth_blockNumber
    # waited 12-43 ms at the median and 126-385 ms at p99 behind four busy eth_calls; at 0.5 ms,
    # 4-6 and 18-66 ms (BENCHMARKS.md, "Hostile clients").
    sys.setswitchinterval(SWITCH_INTERVAL)
    node = open_node(config)
    try:
        node.mempool.configure(config.txpool)
        open_journal(node, config.txpool)
        block_time = node.genesis.block_time if config.block_time is None else config.block_time
        driver, network = None, None
        async with contextlib.AsyncExitStack() as stack:
            if config.p2p_listen is not None and node.genesis.validators:
                from node.network import P2PNetwork
                from node.p2p import P2PConfig, open_p2p

                p2p = await stack.enter_async_context(open_p2p(
                    P2PConfig(data_dir=pathlib.Path(node.datadir), chain_id=node.chain_id, listen=config.p2p_listen,
                              bootstrap=config.bootnodes, announce=config.p2p_announce),
                    P2PNetwork.handlers(lambda: driver)))
                network = P2PNetwork(p2p)
                try:
                    address = p2p.address
                except IndexError:  # py-libp2p logs the bind error and listens nowhere
                    raise NodeTaskFailed(f"p2p: cannot listen on {config.p2p_listen} (address in use?)") from None
                print(f"p2p listening on {address}", flush=True)
            if node.genesis.validators:
                driver = ConsensusDriver(node, validator_key(config, node), block_time=block_time, network=network)
                if driver.signer is None:
                    print("no validator key: following only, not signing", flush=True)
                node.consensus_state = driver.state
            if network is not None:
                node.peers = network.peers
            await _serve(config, node, driver, network, block_time, stats, task_status)
    finally:
        node.mempool.locals.close()
        node.close()


async def _serve(config: NodeConfig, node: Node, driver: ConsensusDriver | None, network, block_time: float,
                 stats, task_status) -> None:
    """The node's tasks: consensus (and p2p), the local-transaction tracker, JSON-RPC."""
    def on_transaction(tx_hash: bytes = b"") -> None:
        if driver is not None:
            driver.notify_transaction()
        if network is not None and tx_hash:  # to the other validators: it reaches the proposer
            pooled = node.mempool.get(tx_hash)
            if pooled is not None:
                network.broadcast_transaction(pooled.encode())

    if len(node.mempool):  # re-admitted from the journal
        on_transaction()
    readiness = health.Readiness(node, block_time, config.readiness)
    if network is not None:  # /ready and eth_syncing count peers and compare with their heights
        readiness.peer_count = lambda: len(network.peers)
        readiness.best_peer_height = lambda: node.sync_target or node.head().block_number
    node.add_listener(logs.block_logger(node))
    signatures = None
    if config.settlement is not None:  # the output roots this validator signs, and those its peers gossip
        from node.settlement.signatures import OutputSignatures

        signatures = OutputSignatures(node, config.settlement.deployment, config.settlement.output_interval,
                                      (validator_key(config, node), *config.settlement.validator_keys))
        if network is not None:
            network.outputs = signatures
    telemetry = None
    if config.metrics.enabled:
        stats = collections.Counter() if stats is None else stats
        telemetry = node_metrics.NodeMetrics(node, transport_stats=stats, readiness=readiness)
        if driver is not None:  # consensus and p2p figures (the driver calls its histograms)
            node_metrics.ConsensusMetrics(telemetry.registry, driver, network)
    # What start-up made (modules, py-evm's tables, the genesis) lives as long as the node:
    # out of the cyclic collector's way, so a full collection is not a pause of hundreds of
    # milliseconds for every client (740 ms seen under a flood; 30 ms at most after this).
    gc.collect()
    gc.freeze()
    async with trio.open_nursery() as nursery:
        if threading.current_thread() is threading.main_thread():  # signals reach only that thread
            nursery.start_soon(_until_signal, nursery.cancel_scope)
        if driver is not None:
            nursery.start_soon(_node_task, "block production", produce_blocks, driver)
            if network is not None:
                nursery.start_soon(_node_task, "the validator network", network.run, driver)
        else:  # an imported Ethereum chain: a follower, as geth without a consensus client
            print("no validators in genesis: following only, not producing blocks", flush=True)
        if config.settlement is not None and network is not None:
            from node.settlement.signatures import run_signer

            nursery.start_soon(_node_task, "signing output roots", run_signer, node, signatures,
                               config.settlement.l1_url, network.broadcast_output_signature,
                               config.settlement.interval_s)
        if config.settlement is not None and config.settlement.batcher_key is not None:
            from node.settlement.service import run as settle

            nursery.start_soon(_node_task, "settlement on the L1", settle, node, config.settlement, signatures)
        if not config.txpool.no_locals:
            nursery.start_soon(_node_task, "the local-transaction tracker", track_locals, node, config.txpool,
                               on_transaction)
        urls = await nursery.start(functools.partial(
            _node_task, "the JSON-RPC server", functools.partial(
                serve, node, config.rpc,
                on_transaction=on_transaction if block_time == 0 or network is not None else None,
                stats=stats, readiness=readiness, rpc_metrics=telemetry.rpc if telemetry else None)))
        for url in urls:
            print(f"JSON-RPC listening on {url} (WebSocket: {url.replace('http', 'ws', 1)})", flush=True)
        if telemetry is not None:
            url = await nursery.start(functools.partial(_node_task, "the metrics server", functools.partial(
                node_metrics.serve, telemetry, config.metrics, readiness.probe)))
            print(f"metrics on {url}/metrics (probes: {url}/health, {url}/ready)", flush=True)
        task_status.started(urls)


def run_node(config: NodeConfig) -> None:
    """Run the node until SIGINT/SIGTERM; a failed node task ends it with status 1 and one line."""
    try:
        trio.run(run_node_async, config)
    except BaseException as exc:
        failed = exc.split(NodeTaskFailed)[0] if isinstance(exc, BaseExceptionGroup) else exc
        if not isinstance(failed, (NodeTaskFailed, BaseExceptionGroup)):
            raise
        first = next(_leaves(failed))
        log.debug("fatal: %s", first, exc_info=first.__cause__)  # the traceback, for a debug log
        message = f"fatal: {first}; the node stopped"
        del exc, failed, first  # no traceback (and the frames it holds) outlives this
    else:
        return
    print(message, file=sys.stderr, flush=True)
    raise SystemExit(1)


def _leaves(exc: BaseException):
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc
