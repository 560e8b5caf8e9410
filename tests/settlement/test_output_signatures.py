"""Output roots signed by the validator network (node/settlement/signatures.py): four validators'
chain on a real LevelDB (decided blocks with commits), their signatures checked against the
node's own execution, the proposer posting to anvil only once more than 2/3 of the stake
OutputOracle holds has signed, the validator set rotated by the same rule, and signatures
gossiped over real p2p, a forged one scoring its publisher down. Four validators as processes
with anvil: tests/settlement/test_validator_roots.py (slow)."""
from __future__ import annotations

import dataclasses

import pytest
import rlp
import trio
from eth_account import Account
from eth_utils import to_canonical_address

from node.p2p import Fault, Kind
from node.p2p.wire import OutputSignature, PeerFault, decode_output_signature
from node.settlement import L1, Contract, Deployment, deploy_all
from node.settlement.outputs import output_at, output_digest, sign_digest
from node.settlement.service import Settlement, SettlementConfig, StepReport, Waiting
from node.settlement.signatures import OutputSignatures, SignatureRefused
from tests.node.test_consensus_node import Chain4, address_of
from tests.p2p.helpers import until
from tests.settlement.conftest import BATCHER, DEPLOYER

K = 4
STRANGER = b"\x5a" * 32  # a key no validator holds


def _deployment(chain: Chain4, oracle: str = "0x" + "0e" * 20) -> Deployment:
    """A deployment record for the signatures alone (no L1 needed to check them)."""
    return Deployment(31337, chain.genesis.chain_id, "0x" + chain.node.header_by_number(0).hash.hex(), "0x" + "01" * 20,
                      oracle, "0x" + "02" * 20, "0x" + "03" * 20, 1, 100, "0x" + "04" * 20)


@pytest.fixture
def chain(tmp_path):
    chain = Chain4(tmp_path, blocks=K)
    yield chain
    chain.node.close()


def test_signatures_are_checked_against_our_own_execution(chain):
    d = _deployment(chain)
    pool = OutputSignatures(chain.node, d, K)
    (good,) = OutputSignatures(chain.node, d, K, (chain.keys[1],)).sign(K)
    assert pool.add(good) is True and pool.add(good) is False  # kept once
    assert list(pool.gathered(K)) == [address_of(chain.keys[1])]
    e = pool.expected(K)
    assert e.output == output_at(chain.node, K) and e.signers.keys() == {address_of(k) for k in chain.keys}

    def signed(key, root=e.output.root, next_hash=e.next_set_hash, oracle=d.oracle, number=K):
        digest = output_digest(d.l1_chain_id, oracle, d.l2_chain_id, number, root, next_hash)
        return OutputSignature(number, root, next_hash, sign_digest(key, digest)[1])

    with pytest.raises(SignatureRefused, match="not in the validator set that signs it"):
        pool.add(signed(STRANGER))
    with pytest.raises(SignatureRefused, match="this node computed"):
        pool.add(signed(chain.keys[2], root=b"\x01" * 32))
    with pytest.raises(SignatureRefused, match="next validator set"):
        pool.add(signed(chain.keys[2], next_hash=b"\x02" * 32))
    with pytest.raises(SignatureRefused, match="not in the validator set"):  # for another deployment's oracle
        pool.add(signed(chain.keys[2], oracle="0x" + "0f" * 20))
    # tampered bytes recover another address, or none at all
    with pytest.raises(SignatureRefused, match="not in the validator set|no public key recovers"):
        pool.add(dataclasses.replace(good, signature=good.signature[:10] + b"\x00" + good.signature[11:]))
    # a block not decided here yet (or no output at all): dropped without blame
    assert pool.add(signed(chain.keys[2], number=K + 1)) is False
    assert pool.add(signed(chain.keys[2], number=K - 1)) is False
    assert list(pool.gathered(K)) == [address_of(chain.keys[1])]


def test_output_signature_wire_form_is_strict():
    sig = OutputSignature(8, b"\x11" * 32, b"\x22" * 32, sign_digest(b"\x07" * 32, b"\x33" * 32)[1])
    assert decode_output_signature(sig.encode()) == sig
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    high_s = sig.signature[:32] + (n - int.from_bytes(sig.signature[32:64], "big")).to_bytes(32, "big") + \
        bytes([55 - sig.signature[64]])  # the same signature's other encoding: OpenZeppelin refuses it
    for bad in (b"", b"\xc0", rlp.encode([8, b"\x11" * 32, b"\x22" * 32]),
                rlp.encode([0, b"\x11" * 32, b"\x22" * 32, sig.signature]),
                rlp.encode([b"\x00\x08", b"\x11" * 32, b"\x22" * 32, sig.signature]),
                rlp.encode([8, b"\x11" * 31, b"\x22" * 32, sig.signature]),
                rlp.encode([8, b"\x11" * 32, [b"\x22" * 32], sig.signature]),
                rlp.encode([8, b"\x11" * 32, b"\x22" * 32, sig.signature[:64]]),
                rlp.encode([8, b"\x11" * 32, b"\x22" * 32, sig.signature[:64] + b"\x1d"]),
                rlp.encode([8, b"\x11" * 32, b"\x22" * 32, high_s]),
                sig.encode() + b"\x00"):
        with pytest.raises(PeerFault) as caught:
            decode_output_signature(bad)
        assert caught.value.fault is Fault.MALFORMED


def test_the_proposer_posts_once_more_than_two_thirds_signed_and_the_set_rotates(anvil, chain):
    """OutputOracle starts with validators 0..2 and a stranger (1 stake each). Output 4: the
    stranger never signs and validator 3's signature does not count there, so it waits until
    0, 1 and 2 signed; posted, it moves the oracle to the L2's own set (0..3), and output 8 then
    needs three of those four."""
    keys, node = chain.keys, chain.node
    stranger = to_canonical_address(Account.from_key(STRANGER).address)
    initial = [(address_of(k), 1) for k in keys[:3]] + [(stranger, 1)]
    d = deploy_all(L1(anvil.url, DEPLOYER), l2_chain_id=chain.genesis.chain_id,
                   l2_genesis_hash=node.header_by_number(0).hash, validators=initial,
                   batcher=L1(anvil.url, BATCHER).address, escrow=0, finalization_period=1)
    oracle = Contract(L1(anvil.url), "OutputOracle", d.oracle)
    proposer = Settlement(node, SettlementConfig(anvil.url, d, BATCHER, (keys[0],), output_interval=K))
    peers = [OutputSignatures(node, d, K, (key,)) for key in keys]

    def gossip(i: int, number: int) -> None:
        for s in peers[i].sign(number):
            proposer.signatures.add(s)

    def step() -> StepReport:
        """A step once the L1 has mined what the last one sent (the proposer keeps one posting
        transaction in flight at most and waits for it, so a batch and the root after it may
        take two steps; here the batch goes out on its own first)."""
        def mined() -> bool:
            counts = {proposer.l1.rpc("eth_getTransactionCount", proposer.l1.address, t) for t in ("latest", "pending")}
            return len(counts) == 1
        trio.run(until, mined, 20, "the L1 to mine the last post")
        proposer.post_batch(StepReport())
        trio.run(until, mined, 20, "the L1 to mine the batch")
        return proposer.step()

    gossip(3, K)
    report = step()  # the proposer signs too
    assert report.outputs == [] and report.waiting == Waiting(K, 1, 4, 1, 4)
    assert Contract(L1(anvil.url), "BatchInbox", d.inbox).call("nextBlock") == K + 1
    gossip(1, K)
    assert step().waiting == Waiting(K, 2, 4, 2, 4)  # exactly 2/3 of the stake is not enough
    assert oracle.call("outputCount") == 0
    gossip(2, K)
    report = step()
    assert report.outputs == [K] and report.signers == {K: 3} and report.waiting is None
    assert oracle.call("getOutput", 0)[0] == output_at(node, K).root
    l2_set = proposer.signatures.validator_set(K + 1)
    assert [(to_canonical_address(a), s) for a, s in oracle.call("validators")] == list(l2_set)
    assert {a for a, _ in l2_set} == {address_of(k) for k in keys}

    for _ in range(K):
        chain.decide_next()
    gossip(3, 2 * K)
    assert step().waiting == Waiting(2 * K, 2, 4, 2 * l2_set[0][1], 4 * l2_set[0][1])
    gossip(1, 2 * K)
    assert step().outputs == [2 * K]
    assert oracle.call("latestBlockNumber") == 2 * K


def test_a_validator_signs_the_outputs_after_the_latest_posted_one(anvil, chain):
    """The signer task reads the oracle (no L1 key) and signs each decided output past the latest
    posted one, once each until REPUBLISH_S has passed (`AHEAD` at most)."""
    from node.settlement.signatures import run_signer

    for _ in range(K + 1):
        chain.decide_next()  # blocks up to 2K + 1: outputs K and 2K decided, 3K not
    d = deploy_all(L1(anvil.url, DEPLOYER), l2_chain_id=chain.genesis.chain_id,
                   l2_genesis_hash=chain.node.header_by_number(0).hash,
                   validators=[(v.address, v.power) for v in chain.genesis.validators],
                   batcher=L1(anvil.url, BATCHER).address, escrow=0, finalization_period=1)
    published = []

    async def main():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_signer, chain.node, OutputSignatures(chain.node, d, K, (chain.keys[1],)),
                               anvil.url, published.append, 0.05)
            await until(lambda: len(published) >= 2, 30, "two signatures")
            await trio.sleep(0.5)  # ten ticks more: nothing published again
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert [s.number for s in published] == [K, 2 * K]
    pool = OutputSignatures(chain.node, d, K)
    assert all(pool.add(s) for s in published)  # each checks out
    assert list(pool.gathered(K)) == [address_of(chain.keys[1])]


def test_signatures_travel_over_p2p_and_a_forged_one_scores_its_publisher_down(chain, tmp_path):
    """A validator's node (P2PNetwork over node/p2p, with the pool) and a peer that publishes one
    good signature and then forged ones: the good one reaches the pool, each forged one costs
    the publisher a REPORTED penalty; garbage on the topic costs a hostile host MALFORMED."""
    from node.network import P2PNetwork
    from node.p2p import P2PConfig, open_p2p
    from node.validator import ConsensusDriver
    from tests.p2p.hostile import connect, gossip_stream, hostile_host, pubsub_frame

    d = _deployment(chain)
    pool = OutputSignatures(chain.node, d, K)
    (good,) = OutputSignatures(chain.node, d, K, (chain.keys[2],)).sign(K)
    e = pool.expected(K)
    forged = OutputSignature(K, e.output.root, e.next_set_hash,
                             sign_digest(STRANGER, e.digest)[1])  # right output, not a validator
    wrong_root = OutputSignatures(chain.node, d, K, (chain.keys[3],))
    wrong_root.expected(K)
    wrong_root._expected[K] = dataclasses.replace(e, output=dataclasses.replace(e.output, state_root=b"\x09" * 32))
    (lying,) = wrong_root.sign(K)  # a validator whose execution disagrees with ours

    def config(name, bootstrap=()):
        return P2PConfig(data_dir=tmp_path / name, chain_id=chain.genesis.chain_id, listen="/ip4/127.0.0.1/tcp/0",
                         bootstrap=tuple(str(b) for b in bootstrap))

    async def main():
        driver = ConsensusDriver(chain.node, None, block_time=3600)  # follows only
        async with open_p2p(config("validator"), P2PNetwork.handlers(lambda: driver)) as p2p:
            network = P2PNetwork(p2p)
            network.outputs = pool
            driver.network = network
            async with open_p2p(config("peer", [p2p.address]), P2PNetwork.handlers(lambda: None)) as peer, \
                    trio.open_nursery() as nursery:
                nursery.start_soon(network.run, driver)
                await peer.pubsub.wait_for_mesh(p2p.peer_id, peer.topic(Kind.OUTPUT), timeout=20)
                await peer.publish_output_signature(good)
                await until(lambda: address_of(chain.keys[2]) in pool.gathered(K), 20, "the good signature")
                assert p2p.scores.score(peer.peer_id) == 0
                await peer.publish_output_signature(forged)
                await until(lambda: p2p.scores.score(peer.peer_id) < -Fault.REPORTED.value + 5, 20, "a penalty")
                await peer.publish_output_signature(lying)
                await until(lambda: p2p.scores.score(peer.peer_id) < -2 * Fault.REPORTED.value + 5, 20, "another")
                assert list(pool.gathered(K)) == [address_of(chain.keys[2])]
                async with hostile_host() as evil:  # not even an output signature: node/p2p refuses it
                    await connect(evil, p2p.address)
                    stream = await gossip_stream(evil, p2p.peer_id)
                    await stream.write(pubsub_frame(evil, p2p.topic(Kind.OUTPUT), b"\xc3not a signature", seqno=1))
                    await until(lambda: p2p.scores.score(evil.get_id()) < -Fault.MALFORMED.value + 5, 20, "malformed")
                nursery.cancel_scope.cancel()

    trio.run(main)


def test_run_names_what_posting_needs(tmp_path, capsys):
    """`run --l1` alone signs (it needs the deployment file); posting needs the proposer's key too."""
    import genesis
    from node.chain import Node
    from node.cli import main

    Node.init(tmp_path / "d", genesis.devnet()).close()
    run = ["run", "--datadir", str(tmp_path / "d"), "--l1", "http://127.0.0.1:9"]
    assert main([*run, "--l1.batcher-key", BATCHER]) == 1
    assert "--l1.batcher-key needs --l1.validator-key" in capsys.readouterr().err
    assert main(run) == 1
    assert "--l1 needs --l1.deployment FILE" in capsys.readouterr().err
