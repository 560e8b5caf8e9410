"""Real hosts on 127.0.0.1, in one trio run per test: gossip, fetches, Noise only."""
import multiaddr
import pytest
import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.peer.peerstore import PeerStoreError
from libp2p.security.insecure.transport import PLAINTEXT_PROTOCOL_ID, InsecureTransport

from consensus.evidence import DuplicateVoteEvidence
from node.p2p import FetchFailed, Kind, Limits, open_p2p
from tests.p2p.helpers import (Store, block_bytes, config, network, next_inbound, proposal, trio_test, until,
                               vote)


@trio_test
async def test_gossip_of_every_kind_reaches_every_peer(tmp_path):
    async with network(tmp_path, 4) as nodes:
        block = block_bytes(5)
        evidence = DuplicateVoteEvidence.of(vote(5, block=b"\x01" * 32), vote(5, block=b"\x02" * 32))
        sent = [(Kind.VOTE, nodes[0].publish_vote(vote(5)), vote(5)),
                (Kind.PROPOSAL, nodes[1].publish_proposal(proposal(5, block), block), (proposal(5, block), block)),
                (Kind.EVIDENCE, nodes[2].publish_evidence(evidence), evidence),
                (Kind.TX, nodes[3].publish_tx(b"\x02raw tx"), b"\x02raw tx")]
        for sender, (kind, publish, expected) in enumerate(sent):
            await publish
            for node in nodes[:sender] + nodes[sender + 1:]:
                item = await next_inbound(node, kind)
                assert item.message == expected
                assert item.peer == nodes[sender].peer_id


@trio_test
async def test_a_message_over_its_limit_is_not_published(tmp_path):
    async with network(tmp_path, 1) as (node,):
        with pytest.raises(ValueError, match="over the limit"):
            await node.publish_tx(b"\x02" * (node.config.limits.tx + 1))


@trio_test
async def test_fetches_answer_from_the_peers_store(tmp_path):
    async with network(tmp_path, 2) as (a, b):
        b.store.blocks[3] = block_bytes(3)
        b.store.proposals[(3, 1)] = (proposal(3, block_bytes(3)), block_bytes(3))
        b.store.votes[(3, 1)] = [vote(3, 1), vote(3, 1, block=b"\x22" * 32)]
        assert await a.fetch_block(b.peer_id, 3) == block_bytes(3)
        assert await a.fetch_block(b.peer_id, 4) is None
        assert await a.fetch_proposal(b.peer_id, 3, 1) == b.store.proposals[(3, 1)]
        assert await a.fetch_proposal(b.peer_id, 3, 0) is None
        assert await a.fetch_votes(b.peer_id, 3, 1) == b.store.votes[(3, 1)]
        assert await a.fetch_votes(b.peer_id, 3, 0) == []
        assert a.scores.score(b.peer_id) == b.scores.score(a.peer_id) == 0


@trio_test
async def test_a_range_of_blocks_in_one_fetch(tmp_path):
    """The store answers per height (no `blocks` handler): consecutive blocks from the first,
    stopping at the first one missing; none when the first is missing."""
    async with network(tmp_path, 2) as (a, b):
        b.store.blocks.update({h: block_bytes(h) for h in range(1, 201)})
        b.store.blocks.pop(150)
        assert await a.fetch_blocks(b.peer_id, 1, 128) == [block_bytes(h) for h in range(1, 129)]
        assert await a.fetch_blocks(b.peer_id, 140, 20) == [block_bytes(h) for h in range(140, 150)]
        assert await a.fetch_blocks(b.peer_id, 150, 5) == []
        assert await a.fetch_blocks(b.peer_id, 201, 1) == []
        assert a.scores.score(b.peer_id) == b.scores.score(a.peer_id) == 0


@trio_test
async def test_a_range_stops_at_the_response_limit_but_never_before_its_first_block(tmp_path):
    limits = Limits(block=100, blocks_response=300)     # a response holds at least one block
    async with network(tmp_path, 2, limits=limits) as (a, b):
        b.store.blocks.update({h: block_bytes(h) + b"." * 80 for h in range(1, 10)})   # ~87 bytes each
        got = await a.fetch_blocks(b.peer_id, 1, 9)
        assert 1 <= len(got) < 9 and got == [b.store.blocks[h] for h in range(1, len(got) + 1)]
        rest = await a.fetch_blocks(b.peer_id, 1 + len(got), 9 - len(got))
        assert rest == [b.store.blocks[h] for h in range(1 + len(got), 1 + len(got) + len(rest))]
        assert a.scores.score(b.peer_id) == 0


@trio_test
async def test_a_plaintext_only_peer_is_refused_both_ways(tmp_path):
    key = create_new_key_pair()
    plain = new_host(key_pair=key, sec_opt={PLAINTEXT_PROTOCOL_ID: InsecureTransport(key)})
    async with open_p2p(config(tmp_path / "n"), Store().handlers()) as node, \
            plain.run([multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        with pytest.raises(Exception):
            await plain.connect(info_from_p2p_addr(node.address))
        with pytest.raises(Exception):
            await node.host.connect(info_from_p2p_addr(plain.get_addrs()[0]))
        assert node.connected_peers() == [] and plain.get_connected_peers() == []


@trio_test
async def test_a_restarted_peer_with_the_same_key_is_redialled_and_rejoins(tmp_path):
    async with open_p2p(config(tmp_path / "a"), Store().handlers()) as a:
        async with open_p2p(config(tmp_path / "b", [a.address]), Store().handlers()) as b:
            first_id, address = b.peer_id, b.address
            await until(lambda: a.connected_peers() == [first_id], what="b to connect")
            # 50 messages: with py-libp2p's counter (seconds at start + 1 per message) the
            # restarted b's first sequence numbers would repeat these and be dropped as seen.
            await b.pubsub.wait_for_mesh(a.peer_id, b.topic(Kind.VOTE))
            for height in range(1, 51):
                await b.publish_vote(vote(height))
            for height in range(1, 51):
                assert (await next_inbound(a, Kind.VOTE)).message == vote(height)
        # b bootstraps from a, so a does not know to re-dial b: make b a validator peer of a.
        a.add_persistent_peer(address)
        await until(lambda: a.connected_peers() == [], what="a to notice b left")
        port = int(address.value_for_protocol("tcp"))
        async with open_p2p(config(tmp_path / "b", port=port), Store().handlers()) as b:
            assert b.peer_id == first_id
            await until(lambda: a.connected_peers() == [first_id], what="a to re-dial b")
            await b.pubsub.wait_for_mesh(a.peer_id, b.topic(Kind.VOTE))
            await b.publish_vote(vote(9))
            assert (await next_inbound(a, Kind.VOTE)).message == vote(9)


@trio_test
async def test_peers_learn_the_announced_address_not_the_listening_one(tmp_path):
    """--p2p.announce: identify tells peers the announced address (a node behind NAT or a proxy),
    which is what they store and re-dial; the node's own `address` is the announced one."""
    announced = "/ip4/127.0.0.1/tcp/1"
    async with open_p2p(config(tmp_path / "a", announce=[announced]), Store().handlers()) as a:
        assert str(a.address) == f"{announced}/p2p/{a.peer_id}"
        listening = a.host.get_transport_addrs()[0].encapsulate(multiaddr.Multiaddr(f"/p2p/{a.peer_id}"))
        async with open_p2p(config(tmp_path / "b", [listening]), Store().handlers()) as b:
            def known() -> list[str]:
                try:
                    return [str(x) for x in b.host.get_peerstore().addrs(a.peer_id)]
                except PeerStoreError:  # not dialled yet
                    return []
            await until(lambda: known() == [str(a.address)], what="b to learn a's announced address from identify")


@trio_test
async def test_a_peer_that_refused_a_dial_is_redialled_as_soon_as_it_is_back(tmp_path):
    """py-libp2p refuses to dial a peer for 60 s once all its addresses failed; a validator
    peer must be re-dialled within the re-dial interval when it comes back (a healed partition)."""
    from libp2p.peer.id import ID

    from node.p2p import load_or_create_key
    from tests.rpc.nodes import free_port

    port = free_port()
    b_id = ID.from_pubkey(load_or_create_key(tmp_path / "b").public_key)
    async with open_p2p(config(tmp_path / "a", redial_interval_s=0.2), Store().handlers()) as a:
        a.add_persistent_peer(f"/ip4/127.0.0.1/tcp/{port}/p2p/{b_id}")
        await trio.sleep(1)  # several dials refused: b is not up
        assert a.connected_peers() == []
        async with open_p2p(config(tmp_path / "b", port=port), Store().handlers()) as b:
            await until(lambda: a.connected_peers() == [b.peer_id], what="a to re-dial b")


@trio_test
async def test_an_answer_over_the_limit_is_not_sent(tmp_path):
    """A node never sends what its peers would score it down for: the fetch fails, no one is blamed."""
    async with network(tmp_path, 2, limits=Limits(votes_response=200)) as (a, b):
        b.store.votes[(3, 0)] = [vote(3), vote(3, block=b"\x22" * 32)]        # about 230 bytes
        with pytest.raises(FetchFailed):
            await a.fetch_votes(b.peer_id, 3, 0)
        b.store.votes[(3, 0)] = [vote(3)]
        assert await a.fetch_votes(b.peer_id, 3, 0) == [vote(3)]
        assert a.scores.score(b.peer_id) == 0


@trio_test
async def test_a_failing_handler_ends_its_stream_not_the_host(tmp_path):
    class Broken(dict):
        def get(self, key):
            raise RuntimeError("the node's store failed")

    async with network(tmp_path, 2) as (a, b):
        b.store.blocks = Broken()
        with pytest.raises(FetchFailed):
            await a.fetch_block(b.peer_id, 1)
        b.store.blocks = {1: block_bytes(1)}
        assert await a.fetch_block(b.peer_id, 1) == block_bytes(1)
        assert a.scores.score(b.peer_id) == b.scores.score(a.peer_id) == 0
