"""A hostile peer (a bare libp2p host) sends garbage on the gossip topics and the request
protocols: it is refused, scored down and finally banned; the honest hosts keep working."""
import pytest
import rlp
from libp2p.utils.varint import encode_uvarint, encode_varint_prefixed

from node.p2p import FetchFailed, Fault, Kind, Limits
from node.p2p import wire
from tests.p2p.helpers import block_bytes, network, next_inbound, trio_test, until, vote
from tests.p2p.hostile import connect, gossip_stream, hostile_host, pubsub_frame


# Scores recover at 1 point per second, hence the slack of 5 in the comparisons below.


@trio_test
async def test_malformed_oversized_and_replayed_gossip(tmp_path):
    async with network(tmp_path, 3) as (victim, honest, other), hostile_host() as evil:
        await connect(evil, victim.address)
        me, topic = evil.get_id(), victim.topic(Kind.VOTE)
        stream = await gossip_stream(evil, victim.peer_id)

        # A valid vote, its replay (same message id) and another valid vote: delivered once each,
        # no penalty for the replay.
        await stream.write(pubsub_frame(evil, topic, vote(1).encode(), seqno=1))
        await stream.write(pubsub_frame(evil, topic, vote(1).encode(), seqno=1))
        await stream.write(pubsub_frame(evil, topic, vote(2).encode(), seqno=2))
        assert (await next_inbound(victim, Kind.VOTE)).message == vote(1)
        assert (await next_inbound(victim, Kind.VOTE)).message == vote(2)
        assert victim.scores.score(me) == 0

        # Undecodable, then oversized: refused and scored down, not relayed.
        await stream.write(pubsub_frame(evil, topic, b"\xc3not a vote", seqno=3))
        await until(lambda: victim.scores.score(me) < -Fault.MALFORMED.value + 5, what="malformed penalty")
        await stream.write(pubsub_frame(evil, topic, vote(3).encode() + b"\x00" * 600, seqno=4))
        await until(lambda: victim.scores.score(me) < -Fault.MALFORMED.value - Fault.OVERSIZED.value + 5,
                    what="oversized penalty")
        assert not victim.scores.is_banned(me)

        # A frame that is not even protobuf ends that stream (never the host) and the last
        # penalty bans the peer: it is disconnected and cannot come back.
        garbage = await gossip_stream(evil, victim.peer_id)
        await garbage.write(encode_varint_prefixed(b"\xff" * 40))
        await until(lambda: victim.scores.is_banned(me), what="ban")
        await until(lambda: me not in victim.connected_peers(), what="disconnect")
        await connect(evil, victim.address)
        await until(lambda: me not in victim.connected_peers(), what="banned peer refused")

        # The honest hosts never saw the garbage and keep gossiping with the victim.
        await honest.publish_vote(vote(7))
        assert (await next_inbound(victim, Kind.VOTE)).message == vote(7)
        assert (await next_inbound(other, Kind.VOTE)).message in (vote(1), vote(2), vote(7))
        assert honest.scores.score(me) == other.scores.score(me) == 0
        assert victim.scores.score(honest.peer_id) == 0


@trio_test
async def test_garbage_requests_and_responses(tmp_path):
    async with network(tmp_path, 2) as (victim, honest), hostile_host() as evil:
        await connect(evil, victim.address)
        me = evil.get_id()

        # An oversized request: refused before it is read, stream reset.
        stream = await evil.new_stream(victim.peer_id, [wire.BLOCK_PROTOCOL])
        await stream.write(encode_uvarint(10_000_000) + b"\x00" * 100)
        await until(lambda: victim.scores.score(me) < -Fault.OVERSIZED.value + 5, what="oversized request")

        # A request that is not RLP [height].
        stream = await evil.new_stream(victim.peer_id, [wire.VOTES_PROTOCOL])
        await stream.write(encode_varint_prefixed(b"\xc1\xc0"))
        await until(lambda: victim.scores.score(me) < -Fault.OVERSIZED.value - Fault.MALFORMED.value + 5,
                    what="malformed request")

        # A hostile server: its block is refused by the node's check, its votes are not votes.
        async def bad_block(stream):
            await stream.read(64)
            await stream.write(encode_varint_prefixed(rlp.encode([b"not a block"])))
            await stream.close()
        evil.set_stream_handler(wire.BLOCK_PROTOCOL, bad_block)
        with pytest.raises(FetchFailed, match="malformed"):
            await victim.fetch_block(me, 1)
        await until(lambda: victim.scores.is_banned(me), what="ban")

        # The victim still serves honest peers.
        victim.store.blocks[1] = block_bytes(1)
        assert await honest.fetch_block(victim.peer_id, 1) == block_bytes(1)


@trio_test
async def test_garbage_range_requests_and_responses(tmp_path):
    limits = Limits(block=1000, blocks_response=2000)
    async with network(tmp_path, 2, limits=limits) as (victim, honest), hostile_host() as asker, \
            hostile_host() as server:
        # A range of no blocks, and one longer than any request may ask for.
        await connect(asker, victim.address)
        for first, count in ((1, 0), (1, wire.MAX_BLOCKS_PER_REQUEST + 1)):
            before = victim.scores.score(asker.get_id())
            stream = await asker.new_stream(victim.peer_id, [wire.BLOCKS_PROTOCOL])
            await stream.write(encode_varint_prefixed(wire.encode_request(first, count)))
            await until(lambda: victim.scores.score(asker.get_id()) < before - Fault.MALFORMED.value + 5,
                        what=f"request [{first}, {count}]")

        # A hostile server: more blocks than asked, a block the node refuses, a nested list, and
        # an answer over the response limit; banned by the end.
        await connect(server, victim.address)
        me = server.get_id()
        answers = iter([[block_bytes(1), block_bytes(2), block_bytes(3)], [block_bytes(1), b"not a block"],
                        [[block_bytes(1)]], [block_bytes(1) + b"." * 900] * 3])

        async def bad_blocks(stream):
            await stream.read(64)
            await stream.write(encode_varint_prefixed(rlp.encode(next(answers))))
            await stream.close()
        server.set_stream_handler(wire.BLOCKS_PROTOCOL, bad_blocks)
        for fault in ("malformed", "malformed", "malformed", "max_msg_size"):
            with pytest.raises(FetchFailed, match=fault):
                await victim.fetch_blocks(me, 1, 2)
        await until(lambda: victim.scores.is_banned(me), what="ban")

        # The victim still serves honest peers.
        victim.store.blocks.update({1: block_bytes(1), 2: block_bytes(2)})
        assert await honest.fetch_blocks(victim.peer_id, 1, 128) == [block_bytes(1), block_bytes(2)]
