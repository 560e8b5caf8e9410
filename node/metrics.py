"""Prometheus metrics (`--metrics`): one registry of named families, the recorders the hot paths
call, and what a scrape of `/metrics` reads.

Every family is named `openledger_<subsystem>_<name>` and listed in `FAMILIES` (docs/operating.md
and the Grafana dashboard read the same names). Two kinds of figures, chosen by cost:

- **Read at scrape time** (head number and age, pool sizes and refusals, connections and their
  faults, data dir and blob store bytes): the node already keeps these numbers, so the hot path
  pays nothing; a collector turns them into families when Prometheus asks (every 15 s or so).
- **Recorded as they happen**: blocks (a prometheus_client Histogram per origin, its label
  children bound once at start) and RPC requests. An RPC request is the hot path (tens of
  microseconds each), so `RpcMetrics` keeps per-method plain integers and a bucket array on the
  event loop's one thread (no lock, no label dict per request) and builds the histogram families
  at scrape time.

Consensus and p2p (#13) are `ConsensusMetrics`: the driver and the p2p service keep plain
integers (votes missed, evidence, blocks synced, gossip messages and bytes per topic) read at
scrape time; step durations and rounds per height are histograms observed a few times a height.
Adding figures later works the same way: list the name in `FAMILIES`, then where node/app.py
starts the subsystem:

    m = telemetry.registry                      # a NodeMetrics' Metrics (telemetry is None without --metrics)
    peers = m.gauge("p2p_peers", "Connected peers")                         # openledger_p2p_peers
    blocks_in = m.counter("p2p_messages_total", "Gossip messages", ["topic"]).labels("blocks")  # bind once
    height = m.gauge("consensus_height", "Height being decided")
    missed = m.counter("consensus_votes_missed_total", "Our votes missing from commits")
    m.add_collector(fn)                          # families computed at scrape time, as NodeMetrics._collect

and readiness learns of peers through `node.health.Readiness.peer_count` and `best_peer_height`.
"""
from __future__ import annotations

import functools
import logging
import os
import pathlib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import trio
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client import GCCollector, PlatformCollector, ProcessCollector, disable_created_metrics

log = logging.getLogger(__name__)
disable_created_metrics()  # the `_created` series double every counter and no dashboard reads them

PREFIX = "openledger"

FAMILIES: dict[str, str] = {
    # chain (node/chain.py commits)
    "openledger_chain_head_block": "gauge: number of the head block",
    "openledger_chain_head_timestamp_seconds": "gauge: the head block's timestamp",
    "openledger_chain_head_age_seconds": "gauge: wall clock minus the head block's timestamp",
    "openledger_chain_blocks_total": "counter{origin=built|imported}: blocks committed",
    "openledger_chain_block_seconds": "histogram{origin}: time to build or import and commit one block",
    "openledger_chain_block_gas_used": "histogram: gas used per block",
    "openledger_chain_transactions_total": "counter: transactions in committed blocks",
    # transaction pool
    "openledger_txpool_transactions": "gauge{state=pending|queued}: pooled transactions",
    "openledger_txpool_admitted_total": "counter: transactions admitted (RPC and, later, gossip)",
    "openledger_txpool_refused_total": "counter{reason}: transactions refused, by reason",
    "openledger_txpool_dropped_total": "counter{reason=evicted|trimmed_pending|trimmed_queued}: removed by limits",
    # JSON-RPC
    "openledger_rpc_requests_total": "counter{method,code}: requests answered; code is ok or the JSON-RPC error code",
    "openledger_rpc_request_seconds": "histogram{method}: time to answer one request",
    "openledger_rpc_connections_total": "counter: connections accepted",
    "openledger_rpc_connections_open": "gauge: connections open now",
    "openledger_rpc_connection_faults_total": "counter{kind}: connections ended by our error, the client or a refusal",
    "openledger_rpc_internal_errors_total": "counter: requests answered -32603 (bugs)",
    # storage
    "openledger_datadir_bytes": "gauge{part=chaindata|blobs|services|other}: bytes under the data dir",
    "openledger_blobstore_bytes": "gauge: bytes of all blobs stored (ol_putBlob)",
    # validator services, as their transactions land on chain (#14)
    "openledger_service_jobs_total": "counter{service,action}: inference/verification/attribution events",
    "openledger_open_earned_wei_total": "counter{source}: OPEN paid by finalised attribution proofs, by role",
    # readiness
    "openledger_ready": "gauge: 1 when /ready answers 200",
    "openledger_info": "gauge{version,chain_id}: always 1",
    # the validator network (#13): ConsensusMetrics, registered by node/app.py when consensus runs
    "openledger_p2p_peers": "gauge: connected peers",
    "openledger_p2p_bytes_total": "counter{direction=in|out,topic}: gossip bytes",
    "openledger_p2p_messages_total": "counter{direction=in|out,topic}: gossip messages",
    "openledger_p2p_blocks_synced_total": "counter: blocks imported by block sync (with verified commits)",
    "openledger_consensus_height": "gauge: height being decided",
    "openledger_consensus_round": "gauge: round at that height",
    "openledger_consensus_step_seconds": "histogram{step}: time spent in each step",
    "openledger_consensus_rounds": "histogram: rounds a decided height took (1: decided in round 0)",
    "openledger_consensus_votes_missed_total": "counter: heights whose commit (in the next header) lacks our precommit",
    "openledger_consensus_evidence_total": "counter: evidence of misbehaviour seen",
}

# RPC latency buckets: powers of 4 nanoseconds, 2^13 ns (8.2 µs) to 2^35 ns (34 s), so a request's
# bucket is a bit length and a table lookup (bisect over float bounds cost three times as much).
LATENCY_EXPONENTS = tuple(range(13, 36, 2))
LATENCY_BUCKETS = tuple(2**k / 1e9 for k in LATENCY_EXPONENTS)  # seconds, the `le` bounds
_BUCKET_OF = tuple(next((i for i, k in enumerate(LATENCY_EXPONENTS) if bits <= k), len(LATENCY_EXPONENTS))
                   for bits in range(65))  # (ns - 1).bit_length() -> bucket index; ns <= 2^k iff that <= k
BLOCK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
GAS_BUCKETS = (0, 21_000, 100_000, 500_000, 1_000_000, 5_000_000, 10_000_000, 15_000_000, 30_000_000, 60_000_000)
STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
ROUND_BUCKETS = (1, 2, 3, 4, 6, 8, 16)
DATADIR_SCAN_SECONDS = 30.0  # a scrape re-walks the data dir at most this often


@dataclass(frozen=True)
class MetricsConfig:
    """`--metrics`, `--metrics.addr`, `--metrics.port` (go-ethereum's names and port)."""

    enabled: bool = False
    addr: str = "127.0.0.1"
    port: int = 6060

    def __post_init__(self) -> None:
        if not 0 <= self.port < 65536:
            raise ValueError(f"invalid --metrics.port {self.port}: want 0..65535")


class Metrics:
    """The node's registry: named families, and collectors that read figures at scrape time."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        for collector in (ProcessCollector, PlatformCollector, GCCollector):
            collector(registry=self.registry)

    def _name(self, name: str) -> str:
        full = name if name.startswith(PREFIX + "_") else f"{PREFIX}_{name}"
        if full.removesuffix("_total") not in {f.removesuffix("_total") for f in FAMILIES}:
            raise ValueError(f"metric {full} is not listed in node.metrics.FAMILIES")
        return full

    def counter(self, name: str, doc: str, labels: Iterable[str] = ()) -> Counter:
        return Counter(self._name(name), doc, tuple(labels), registry=self.registry)

    def gauge(self, name: str, doc: str, labels: Iterable[str] = ()) -> Gauge:
        return Gauge(self._name(name), doc, tuple(labels), registry=self.registry)

    def histogram(self, name: str, doc: str, labels: Iterable[str] = (), buckets=LATENCY_BUCKETS) -> Histogram:
        return Histogram(self._name(name), doc, tuple(labels), buckets=buckets, registry=self.registry)

    def add_collector(self, collect: Callable[[], Iterable[Metric]]) -> None:
        """`collect()` runs at each scrape (in a worker thread) and returns families."""
        self.registry.register(_FunctionCollector(collect))

    def exposition(self) -> bytes:
        """The Prometheus text format of every family."""
        return generate_latest(self.registry)


class _FunctionCollector(Collector):
    def __init__(self, collect: Callable[[], Iterable[Metric]]) -> None:
        self._collect = collect

    def collect(self) -> Iterable[Metric]:
        return self._collect()


# -- JSON-RPC: the hot path --------------------------------------------------------------------

class _MethodStats:
    __slots__ = ("ok", "codes", "buckets", "ns")

    def __init__(self) -> None:
        self.ok = 0
        self.codes: dict[int, int] = {}
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one: +Inf
        self.ns = 0


class RpcMetrics:
    """Requests by method and error code, latency by method, updated by the dispatcher on the event
    loop (one thread, so plain integers need no lock). Method names come from the method table;
    a name the table lacks is counted as `unknown`, so clients cannot grow the label set."""

    def __init__(self) -> None:
        self._methods: dict[str, _MethodStats] = {}

    def observe(self, method: str, code: int, ns: int) -> None:
        """One answered request: `code` 0 for a result, else the JSON-RPC error code; `ns` the
        time it took (time.perf_counter_ns)."""
        stats = self._methods.get(method)
        if stats is None:
            stats = self._methods[method] = _MethodStats()
        stats.buckets[_BUCKET_OF[(ns - 1).bit_length()]] += 1
        stats.ns += ns
        if code:
            stats.codes[code] = stats.codes.get(code, 0) + 1
        else:
            stats.ok += 1

    def collect(self) -> Iterable[Metric]:
        requests = CounterMetricFamily("openledger_rpc_requests", FAMILIES["openledger_rpc_requests_total"],
                                       labels=("method", "code"))
        latency = HistogramMetricFamily("openledger_rpc_request_seconds", FAMILIES["openledger_rpc_request_seconds"],
                                        labels=("method",))
        for method, stats in list(self._methods.items()):  # atomic under the GIL: the loop may add one meanwhile
            buckets, total, cumulative = [], 0, list(stats.buckets)
            for bound, count in zip((*LATENCY_BUCKETS, float("inf")), cumulative):
                total += count
                buckets.append(("+Inf" if bound == float("inf") else f"{bound:.9g}", total))
            latency.add_metric((method,), buckets, stats.ns / 1e9)
            if stats.ok:
                requests.add_metric((method, "ok"), stats.ok)
            for code, count in list(stats.codes.items()):
                requests.add_metric((method, str(code)), count)
        return [requests, latency]


# -- blocks and what they carry -----------------------------------------------------------------

_ROLES = ("contributor", "model_owner", "validator", "treasury")  # vm.modules.attribution's role numbers


def _service_events() -> dict[tuple[bytes, bytes], tuple[str, str]]:
    """(module address, topic0) -> (service, action) for the events the validator services cause."""
    from eth_utils import keccak

    from vm.modules.abi import load_abi
    from vm.modules.system import ATTRIBUTION, INFERENCE_JOBS

    wanted = {
        ("InferenceJobs", "InferenceRequested"): ("inference", "requested"),
        ("InferenceJobs", "ResultSubmitted"): ("inference", "served"),
        ("InferenceJobs", "JobFinalised"): ("inference", "finalised"),
        ("InferenceJobs", "Attested"): ("verification", "attested"),
        ("Attribution", "ProofPosted"): ("attribution", "attributed"),
        ("Attribution", "ProofDisputed"): ("attribution", "disputed"),
        ("Attribution", "FeeSplit"): ("attribution", "paid"),
        ("Attribution", "RewardPaid"): ("attribution", "reward_paid"),
    }
    out = {}
    for module, address in (("InferenceJobs", INFERENCE_JOBS), ("Attribution", ATTRIBUTION)):
        for entry in load_abi(module):
            key = (module, entry.get("name"))
            if entry["type"] == "event" and key in wanted:
                signature = f"{entry['name']}({','.join(i['type'] for i in entry['inputs'])})"
                out[(address, keccak(text=signature))] = wanted[key]
    return out


class ChainMetrics:
    """Per block (a node listener, in the thread that committed it): count, build or import time,
    gas, transactions, and the services' events in its receipts."""

    def __init__(self, metrics: Metrics) -> None:
        blocks = metrics.counter("chain_blocks_total", "Blocks committed", ["origin"])
        seconds = metrics.histogram("chain_block_seconds", "Time to build or import and commit a block",
                                    ["origin"], buckets=BLOCK_BUCKETS)
        self._by_origin = {o: (blocks.labels(o), seconds.labels(o)) for o in ("built", "imported")}
        self._gas = metrics.histogram("chain_block_gas_used", "Gas used per block", buckets=GAS_BUCKETS)
        self._txs = metrics.counter("chain_transactions_total", "Transactions in committed blocks")
        jobs = metrics.counter("service_jobs_total", "Validator service events on chain", ["service", "action"])
        events = _service_events()
        self._events = {key: jobs.labels(*what) for key, what in events.items() if what[1] != "attested"}
        self._attested_topic = next(t for (_, t), what in events.items() if what[1] == "attested")
        self._reward_topic = next(t for (_, t), what in events.items() if what[1] == "reward_paid")
        self._attested = {True: jobs.labels("verification", "attested_valid"),
                          False: jobs.labels("verification", "attested_invalid")}
        self._addresses = frozenset(address for address, _ in events)
        earned = metrics.counter("open_earned_wei_total", "OPEN (wei) paid by finalised proofs, by role", ["source"])
        self._earned = [earned.labels(role) for role in _ROLES]

    def on_block(self, block, receipts, origin: str, seconds: float) -> None:
        count, timing = self._by_origin.get(origin, self._by_origin["built"])
        count.inc()
        timing.observe(seconds)
        self._gas.observe(block.header.gas_used)
        if block.transactions:
            self._txs.inc(len(block.transactions))
        addresses = self._addresses
        for receipt in receipts:
            for entry in receipt.logs:
                if entry.address in addresses and entry.topics:
                    self._event(entry)

    def _event(self, entry) -> None:
        topic = entry.topics[0]
        topic = topic if isinstance(topic, bytes) else topic.to_bytes(32, "big")
        data = entry.data
        if topic == self._attested_topic:  # Attested(jobId, validator, bool valid): counted by verdict
            if len(data) >= 32:
                self._attested[bool(int.from_bytes(data[:32], "big"))].inc()
            return
        counter = self._events.get((entry.address, topic))
        if counter is None:
            return
        counter.inc()
        if topic == self._reward_topic and len(data) >= 64:  # RewardPaid(account, jobId, uint8 role, amount)
            role, amount = int.from_bytes(data[:32], "big"), int.from_bytes(data[32:64], "big")
            if role < len(self._earned):
                self._earned[role].inc(amount)


# -- consensus and p2p (#13) ---------------------------------------------------------------------

class ConsensusMetrics:
    """The validator network's figures for one node: `driver` is a node.validator.ConsensusDriver
    (it calls `step` and `decided`), `network` a node.network.P2PNetwork or None (a lone
    validator). Everything but the two histograms is read at scrape time."""

    def __init__(self, metrics: Metrics, driver, network=None) -> None:
        from consensus import Step

        steps = metrics.histogram("consensus_step_seconds", "Time spent in each consensus step", ["step"],
                                  buckets=STEP_BUCKETS)
        self._steps = {step: steps.labels(step.name.lower()) for step in Step}
        self._rounds = metrics.histogram("consensus_rounds", "Rounds a decided height took", buckets=ROUND_BUCKETS)
        self.driver, self.network = driver, network
        metrics.add_collector(self._collect)
        driver.metrics = self

    def step(self, step, seconds: float) -> None:
        """A step of the driver's machine ended after `seconds` (trio thread)."""
        self._steps[step].observe(seconds)

    def decided(self, round_: int) -> None:
        self._rounds.observe(round_ + 1)

    def _collect(self) -> Iterable[Metric]:
        driver = self.driver
        state = driver.state()
        yield GaugeMetricFamily("openledger_consensus_height", "Height being decided", value=state["height"])
        yield GaugeMetricFamily("openledger_consensus_round", "Round at that height", value=state["round"])
        yield CounterMetricFamily("openledger_consensus_votes_missed", FAMILIES["openledger_consensus_votes_missed_total"],
                                  value=driver.votes_missed)
        yield CounterMetricFamily("openledger_consensus_evidence", "Evidence of misbehaviour seen",
                                  value=len(driver.evidence))
        network = self.network
        if network is None:
            return
        p2p = network.p2p
        yield GaugeMetricFamily("openledger_p2p_peers", "Connected peers", value=len(p2p.connected_peers()))
        yield CounterMetricFamily("openledger_p2p_blocks_synced", "Blocks imported by block sync",
                                  value=network.blocks_synced)
        yield from traffic_families(p2p.traffic)


def traffic_families(traffic: dict) -> list[Metric]:
    """node.p2p.P2P.traffic ({direction: {Kind: [messages, bytes]}}) as two counter families."""
    messages = CounterMetricFamily("openledger_p2p_messages", "Gossip messages", labels=("direction", "topic"))
    size = CounterMetricFamily("openledger_p2p_bytes", "Gossip bytes", labels=("direction", "topic"))
    for direction, kinds in traffic.items():
        for kind, (count, nbytes) in list(kinds.items()):
            messages.add_metric((direction, kind.value), count)
            size.add_metric((direction, kind.value), nbytes)
    return [messages, size]


# -- figures read at scrape time ------------------------------------------------------------------

class _DataDir:
    """Bytes under the data dir by top-level part, walked at most every DATADIR_SCAN_SECONDS."""

    PARTS = ("chaindata", "blobs", "services")

    def __init__(self, datadir: pathlib.Path) -> None:
        self.datadir = pathlib.Path(datadir)
        self._at = -DATADIR_SCAN_SECONDS
        self._sizes: dict[str, int] = {}
        self._lock = threading.Lock()

    def sizes(self) -> dict[str, int]:
        with self._lock:
            if time.monotonic() - self._at >= DATADIR_SCAN_SECONDS:
                self._sizes = self._walk()
                self._at = time.monotonic()
            return self._sizes

    def _walk(self) -> dict[str, int]:
        sizes = dict.fromkeys((*self.PARTS, "other"), 0)
        for root, _dirs, files in os.walk(self.datadir):
            rel = pathlib.Path(root).relative_to(self.datadir).parts
            part = rel[0] if rel and rel[0] in self.PARTS else "other"
            for name in files:
                try:
                    sizes[part] += os.lstat(os.path.join(root, name)).st_size
                except OSError:  # removed meanwhile (LevelDB compaction)
                    pass
        return sizes


class NodeMetrics:
    """Everything `--metrics` exposes for one node; `registry` is where later figures go."""

    def __init__(self, node, *, transport_stats=None, readiness=None, version: str = "") -> None:
        self.registry = Metrics()
        self.node = node
        self.rpc = RpcMetrics()
        self.chain = ChainMetrics(self.registry)
        self.transport_stats = transport_stats  # node.rpc.server.Transport.stats (a Counter), or None
        self.readiness = readiness
        self._datadir = _DataDir(node.datadir)
        self.registry.add_collector(self.rpc.collect)
        self.registry.add_collector(self._collect)
        info = self.registry.gauge("info", "Node version and chain", ["version", "chain_id"])
        info.labels(version or _version(), str(node.chain_id)).set(1)
        node.add_listener(self._on_block)

    def _on_block(self, block, receipts) -> None:
        origin, seconds = self.node.last_commit
        self.chain.on_block(block, receipts, origin, seconds)

    def exposition(self) -> bytes:
        return self.registry.exposition()

    def _collect(self) -> Iterable[Metric]:
        head = self.node.head()
        now = time.time()
        yield GaugeMetricFamily("openledger_chain_head_block", "Number of the head block", value=head.block_number)
        yield GaugeMetricFamily("openledger_chain_head_timestamp_seconds", "The head block's timestamp",
                                value=head.timestamp)
        yield GaugeMetricFamily("openledger_chain_head_age_seconds", "Wall clock minus the head block's timestamp",
                                value=max(0.0, now - head.timestamp))
        pool = self.node.mempool
        pending, queued = pool.sizes()
        sizes = GaugeMetricFamily("openledger_txpool_transactions", "Pooled transactions", labels=("state",))
        sizes.add_metric(("pending",), pending)
        sizes.add_metric(("queued",), queued)
        yield sizes
        yield CounterMetricFamily("openledger_txpool_admitted", "Transactions admitted", value=pool.admitted)
        refused = CounterMetricFamily("openledger_txpool_refused", "Transactions refused, by reason",
                                      labels=("reason",))
        for reason, count in sorted(pool.refused.items()):
            refused.add_metric((reason,), count)
        yield refused
        dropped = CounterMetricFamily("openledger_txpool_dropped", "Transactions removed by the pool's limits",
                                      labels=("reason",))
        for reason in ("evicted", "trimmed_pending", "trimmed_queued"):
            dropped.add_metric((reason,), pool.stats.get(reason, 0))
        yield dropped
        stats = self.transport_stats
        if stats is not None:
            yield CounterMetricFamily("openledger_rpc_connections", "Connections accepted",
                                      value=stats.get("connections", 0))
            yield GaugeMetricFamily("openledger_rpc_connections_open", "Connections open now",
                                    value=stats.get("connections", 0) - stats.get("closed", 0))
            faults = CounterMetricFamily("openledger_rpc_connection_faults", "Connections ended abnormally, by kind",
                                         labels=("kind",))
            for kind, key in (("error", "connection_errors"), ("client_gone", "client_gone"),
                              ("forbidden_host", "forbidden_host"), ("forbidden_origin", "forbidden_origin"),
                              ("accept_backoff", "accept_backoff")):
                faults.add_metric((kind,), stats.get(key, 0))
            yield faults
            yield CounterMetricFamily("openledger_rpc_internal_errors", "Requests answered -32603",
                                      value=stats.get("internal_errors", 0))
        parts = self._datadir.sizes()
        datadir = GaugeMetricFamily("openledger_datadir_bytes", "Bytes under the data dir", labels=("part",))
        for part, size in parts.items():
            datadir.add_metric((part,), size)
        yield datadir
        yield GaugeMetricFamily("openledger_blobstore_bytes", "Bytes of all stored blobs", value=parts["blobs"])
        if self.readiness is not None:
            yield GaugeMetricFamily("openledger_ready", "1 when /ready answers 200",
                                    value=1 if self.readiness.status().ready else 0)


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("openledger")
    except Exception:  # not installed as a distribution (a source checkout)
        return "0+unknown"


# -- the metrics listener --------------------------------------------------------------------------

MAX_REQUEST_HEAD = 8192
REQUEST_SECONDS = 10.0  # a scraper's request must arrive whole within this
CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


async def serve(telemetry: NodeMetrics, config: MetricsConfig, probe=None,
                task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Serve GET /metrics (and /health, /ready through `probe`) on `config.addr:config.port`
    until cancelled; `task_status.started` gets the URL. One request per connection (scrapers
    and probes open one each); a client's error ends its connection only."""
    async def answer(stream: trio.SocketStream) -> None:
        try:
            head = b""
            with trio.move_on_after(REQUEST_SECONDS):
                while b"\r\n\r\n" not in head and len(head) <= MAX_REQUEST_HEAD:
                    chunk = await stream.receive_some(4096)
                    if not chunk:
                        break
                    head += chunk
            parts = head.split(b"\r\n", 1)[0].split(b" ")
            if b"\r\n\r\n" not in head or len(parts) != 3:
                status, ctype, body = b"400 Bad Request", b"text/plain", b"bad request"
            elif parts[0] not in (b"GET", b"HEAD"):
                status, ctype, body = b"405 Method Not Allowed", b"text/plain", b"GET only"
            elif parts[1].split(b"?", 1)[0] == b"/metrics":
                status, ctype, body = b"200 OK", CONTENT_TYPE, await trio.to_thread.run_sync(telemetry.exposition)
            elif probe is not None and (probed := probe(parts[1])) is not None:
                code, body = probed
                status, ctype = (b"200 OK" if code == 200 else b"503 Service Unavailable"), b"application/json"
            else:
                status, ctype, body = b"404 Not Found", b"text/plain", b"not found: try /metrics, /health, /ready"
            payload = b"" if parts[0] == b"HEAD" else body
            await stream.send_all(b"HTTP/1.1 " + status + b"\r\nContent-Type: " + ctype + b"\r\nContent-Length: "
                                  + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + payload)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass  # the client went away
        except Exception:  # a scraper's fault stays with its connection; never the node's
            log.exception("metrics: error answering a request")
        finally:
            await stream.aclose()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(functools.partial(trio.serve_tcp, answer, config.port, host=config.addr))
        host, bound = listeners[0].socket.getsockname()[:2]
        task_status.started(f"http://{host}:{bound}" if ":" not in host else f"http://[{host}]:{bound}")
