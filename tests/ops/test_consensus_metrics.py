"""Consensus and p2p figures (#25 item 1 over #13): four validators in one process, one of which
never gets its precommits out, and two real p2p services on loopback; each scraped through the
node's registry and read back with prometheus_client's own text parser."""
from __future__ import annotations

import dataclasses

import trio
from prometheus_client.parser import text_string_to_metric_families

import genesis
from consensus import DuplicateVoteEvidence, Signer, Vote, VoteType
from node.chain import Node
from node.consensus import ChainApplication, bitmap_signers
from node.metrics import ConsensusMetrics, Metrics
from node.network import P2PNetwork
from node.p2p import Kind
from node.validator import ConsensusDriver
from tests.node.test_consensus_node import (
    Endpoint, LocalNetwork, address_of, network_genesis, transfer, validator_keys, wait_until,
)
from tests.p2p.helpers import network, next_inbound, trio_test, vote


def scrape(metrics: Metrics) -> dict:
    """(sample name, sorted labels) -> value, from the text format."""
    text = metrics.exposition().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@dataclasses.dataclass
class MuteEndpoint(Endpoint):
    """A validator whose precommits never reach the others: the network decides without them."""

    def broadcast_vote(self, vote) -> None:
        if vote.vote.type is not VoteType.PRECOMMIT:
            super().broadcast_vote(vote)


def _missing(node: Node, address: bytes) -> int:
    """Heights 2..head whose header's signer bitmap (the commit of the height before) lacks `address`."""
    app = ChainApplication(node)
    return sum(address not in bitmap_signers(app.validator_set(h - 1), node.header_by_number(h).extra_data)
               for h in range(2, node.head().block_number + 1))


def test_consensus_figures_move_and_a_mute_validator_misses_votes(tmp_path):
    g, keys_ = network_genesis(4), validator_keys(4)
    nodes = [Node.init(tmp_path / f"v{i}", g) for i in range(4)]
    net = LocalNetwork()
    registries = [Metrics() for _ in nodes]
    scraped: list[dict] = []

    async def main():
        async with trio.open_nursery() as nursery:
            for i, node in enumerate(nodes):
                endpoint = MuteEndpoint(net, i) if i == 3 else net.endpoint(i)
                net.drivers[i] = ConsensusDriver(node, keys_[i], block_time=0.05, network=endpoint)
                ConsensusMetrics(registries[i], net.drivers[i])
            scraped.append(scrape(registries[0]))
            for driver in net.drivers.values():
                await nursery.start(driver.run)
            nodes[1].mempool.add_raw(transfer(0))
            await wait_until(lambda: all(n.head().block_number >= 6 for n in nodes), 120)
            nursery.cancel_scope.cancel()

    trio.run(main)
    before = scraped[0]
    assert before[("openledger_consensus_votes_missed_total", ())] == 0
    assert before[("openledger_consensus_rounds_count", ())] == 0
    for i, (node, driver, registry) in enumerate(zip(nodes, net.drivers.values(), registries)):
        after, head = scrape(registry), node.head().block_number
        assert after[("openledger_consensus_height", ())] == driver.machine.height > head - 1
        assert after[("openledger_consensus_rounds_count", ())] == head  # one observation per decided height
        assert after[("openledger_consensus_rounds_sum", ())] >= head
        for step in ("propose", "prevote", "precommit", "commit"):
            assert after[("openledger_consensus_step_seconds_count", (("step", step),))] > 0, (i, step)
        missed = after[("openledger_consensus_votes_missed_total", ())]
        assert missed == _missing(node, address_of(keys_[i])), i
        assert ("openledger_p2p_peers", ()) not in after  # no p2p: no p2p families
    # the mute validator's precommits reach no other validator, so only commits it proposes could name them
    mute = scrape(registries[3])[("openledger_consensus_votes_missed_total", ())]
    assert mute >= 3 and mute > scrape(registries[0])[("openledger_consensus_votes_missed_total", ())]
    for n in nodes:
        n.close()


@trio_test
async def test_p2p_traffic_peers_and_evidence_are_read_at_scrape_time(tmp_path):
    node = Node.init(tmp_path / "data", genesis.devnet())
    try:
        async with network(tmp_path, 2) as (a, b):
            metrics = Metrics()
            driver = ConsensusDriver(node, None, block_time=1)  # a follower: evidence is only counted
            ConsensusMetrics(metrics, driver, P2PNetwork(a))
            before = scrape(metrics)
            assert before[("openledger_p2p_peers", ())] == 1
            sent = vote(5)
            for _ in range(3):
                await a.publish_vote(sent)
            await b.publish_tx(b"\x02raw tx")
            await next_inbound(a, Kind.TX)
            after = scrape(metrics)
            out = (("direction", "out"), ("topic", "vote"))
            assert after[("openledger_p2p_messages_total", out)] == 3
            assert after[("openledger_p2p_bytes_total", out)] == 3 * len(sent.encode())
            inbound = (("direction", "in"), ("topic", "tx"))
            assert after[("openledger_p2p_messages_total", inbound)] == 1
            assert after[("openledger_p2p_bytes_total", inbound)] == len(b"\x02raw tx")
            assert after[("openledger_p2p_messages_total", (("direction", "in"), ("topic", "vote")))] == 0
            assert after[("openledger_p2p_blocks_synced_total", ())] == 0

            offender = Signer(validator_keys(1)[0], node.chain_id)
            evidence = DuplicateVoteEvidence.of(
                offender.sign_vote(Vote(VoteType.PRECOMMIT, 1, 0, b"\x0a" * 32)),
                Signer(validator_keys(1)[0], node.chain_id).sign_vote(Vote(VoteType.PRECOMMIT, 1, 0, b"\x0b" * 32)))
            driver.evidence_seen(evidence)
            driver.evidence_seen(evidence)  # the same evidence again is not counted twice
            assert scrape(metrics)[("openledger_consensus_evidence_total", ())] == 1
    finally:
        node.close()
