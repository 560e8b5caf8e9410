"""The node under consensus (issue 13, items 2, 3, 5): the ABCI-like seam over a real Node on
LevelDB, the driver on a real trio loop, commits stored and committed to by the next header,
the light client's check, proposals that lie refused, and signing state that survives a restart.

Validators here are in one process: drivers joined by `LocalNetwork` (every broadcast reaches
every running peer), so the node side is tested without p2p."""
from __future__ import annotations

import dataclasses
import time

import pytest
import rlp
import trio
from eth.constants import BLANK_ROOT_HASH
from eth_keys import keys
from eth_utils import keccak

import genesis
from consensus import (
    Block, Commit, InsufficientVotingPower, InvalidCommit, InvalidSignature, ProposalReceived, Signer,
    UnknownValidator, Validator, ValidatorSet, Vote, VoteReceived, VoteType, make_commit,
)
from consensus.errors import DoubleSignRefused
from node.app import NodeConfig, validator_key
from node.chain import Node
from node.consensus import (
    ChainApplication, bitmap_signers, decode_validator_set, encode_block, encode_validator_set, signer_bitmap,
    header_fields, split_block, verify_finality,
)
from node.validator import ConsensusDriver, SignerStateFile
from tests.conftest import sign

DEV_KEYS = [k for _, k in genesis.dev_accounts()]


def validator_keys(n: int) -> list[bytes]:
    return [keccak(b"openledger/test/validator/%d" % i) for i in range(n)]


def address_of(key: bytes) -> bytes:
    return keys.PrivateKey(key).public_key.to_canonical_address()


def network_genesis(n: int) -> genesis.Genesis:
    """`genesis.testnet`: the devnet's accounts and `n` validators staked in the Staking module
    (so the VM reads the signer bitmaps and the set follows stake)."""
    return genesis.testnet([address_of(k) for k in validator_keys(n)])


def dev_key(node: Node) -> bytes:
    return validator_key(NodeConfig(node.datadir), node)


def transfer(nonce: int, sender: int = 0, value: int = 1) -> bytes:
    return sign(DEV_KEYS[sender], nonce, to=b"\x42" * 20, value=value, gas=21_000)


async def wait_until(predicate, seconds: float = 60) -> None:
    with trio.fail_after(seconds):
        while not predicate():
            await trio.sleep(0.01)


# -- one validator: the devnet -----------------------------------------------------------------

@pytest.fixture
def devnet_node(tmp_path):
    n = Node.init(tmp_path / "data", genesis.devnet())
    yield n
    n.close()


def run_driver(node: Node, body, *, block_time: float = 0, key: bytes | None = None) -> None:
    async def main():
        driver = ConsensusDriver(node, dev_key(node) if key is None else key, block_time=block_time)
        async with trio.open_nursery() as nursery:
            await nursery.start(driver.run)
            await body(driver)
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_a_single_validator_produces_blocks_with_commits_through_consensus(devnet_node):
    """`openledger devnet` is N = 1 of the consensus path: transactions are mined on arrival
    (block time 0), each block is stored with its commit, and block N + 1's header commits to the
    commit of block N (parentBeaconBlockRoot = its hash, extraData = the signer bitmap)."""
    node = devnet_node

    async def body(driver):
        assert node.head().block_number == 0  # block time 0: no block before a transaction
        for nonce in range(3):
            node.mempool.add_raw(transfer(nonce))
            driver.notify_transaction()
            await wait_until(lambda: node.head().block_number >= 1 and len(node.mempool) == 0)
        await trio.sleep(0.2)
        assert len(node.mempool) == 0

    run_driver(node, body)
    head = node.head().block_number
    assert head >= 1
    assert sum(len(node.block_by_number(n).transactions) for n in range(1, head + 1)) == 3
    app = ChainApplication(node)
    vs = app.validator_set(1)
    assert [v.address for v in vs] == [node.genesis.validators[0].address]
    first = node.header_by_number(1)
    assert first.extra_data == b"" and first.parent_beacon_block_root == BLANK_ROOT_HASH  # block 1: no commit info
    for n in range(1, head + 1):
        header, commit = node.header_by_number(n), Commit.decode(node.commit_record(n))
        assert verify_finality(header, commit, app.validator_set(n), node.chain_id) == (vs.validators[0].address,)
        if n > 1:
            assert header.parent_beacon_block_root == Commit.decode(node.commit_record(n - 1)).hash()
            assert header.extra_data == b"\x01"
    assert node.commit_record(head + 1) is None


def test_block_time_makes_empty_blocks_on_a_timer(devnet_node):
    node = devnet_node

    async def body(driver):
        await wait_until(lambda: node.head().block_number >= 3)

    run_driver(node, body, block_time=0.05)
    assert all(node.commit_record(n) for n in range(1, 4))


def test_the_signer_state_is_persisted_and_a_restart_cannot_double_sign(devnet_node):
    """Item 5: the last signed (height, round, step) is on disk; a validator restarted with it
    refuses to sign anything else at or before that step, and resumes past it."""
    node = devnet_node

    async def body(driver):
        node.mempool.add_raw(transfer(0))
        driver.notify_transaction()
        await wait_until(lambda: node.head().block_number == 1)

    run_driver(node, body)
    state = SignerStateFile(node.datadir / "consensus" / "signer_state.rlp").load()
    assert state.hrs == (1, 0, 3)  # the precommit of height 1, round 0
    signer = Signer(dev_key(node), node.chain_id, state)
    with pytest.raises(DoubleSignRefused):
        signer.sign_vote(Vote(VoteType.PRECOMMIT, 1, 0, b"\x77" * 32))
    assert signer.sign_vote(state.last.vote) == state.last  # the same message again: the same signature

    async def more(driver):  # restarted on the same data dir: carries on at height 2
        node.mempool.add_raw(transfer(1))
        driver.notify_transaction()
        await wait_until(lambda: node.head().block_number == 2)

    run_driver(node, more)
    assert Commit.decode(node.commit_record(2)).height == 2


def test_a_damaged_signer_state_stops_the_validator(devnet_node):
    path = devnet_node.datadir / "consensus"
    path.mkdir()
    (path / "signer_state.rlp").write_bytes(b"\xff not rlp")
    with pytest.raises(Exception, match="signer state .* is damaged"):
        ConsensusDriver(devnet_node, dev_key(devnet_node), block_time=0)


def test_the_wal_replays_this_heights_proposal_after_a_crash(devnet_node):
    """The proposal a validator sent is in its WAL: after a crash between signing and deciding,
    the restarted validator resumes (signer state) and decides that very block from the log."""
    from consensus import StateMachine, BlockProposed

    node, key = devnet_node, dev_key(devnet_node)
    node.mempool.add_raw(transfer(0))
    driver = ConsensusDriver(node, key, block_time=0)
    machine = StateMachine(chain_id=node.chain_id, height=1, validators=driver.app.validator_set(1),
                           block_hash=driver.app.block_hash, signer=driver.signer)
    machine.start()
    block = driver.app.prepare_proposal(1, 0)
    actions = machine.handle(BlockProposed(1, 0, block))
    proposal = next(a for a in actions if type(a).__name__ == "BroadcastProposal")
    prevote_state = next(a for a in actions if type(a).__name__ == "PersistSignerState"
                         and a.state.hrs[2] == 2).state
    # crash after the prevote was persisted and the proposal logged, before the precommit
    driver.signer_file.save(prevote_state)
    driver.wal.append(1, ProposalReceived(proposal.proposal, proposal.block.data))
    driver.wal.close()

    async def body(driver):
        await wait_until(lambda: node.head().block_number == 1)

    run_driver(node, body)
    assert node.header_by_number(1).hash == block.hash


# -- the header commitment and the light client ------------------------------------------------

def test_signer_bitmaps_are_lsb_first_over_the_set_order():
    vs = ValidatorSet(Validator(bytes([i]) * 20, 10 - i) for i in range(10))
    signers = [vs.validators[i].address for i in (0, 2, 9)]
    bitmap = signer_bitmap(vs, signers)
    assert bitmap == bytes([0b00000101, 0b00000010])
    assert bitmap_signers(vs, bitmap) == tuple(signers)
    with pytest.raises(ValueError, match="2 bytes"):
        bitmap_signers(vs, b"\x01")
    with pytest.raises(ValueError, match="not in the validator set"):
        signer_bitmap(vs, [b"\xee" * 20])


def test_validator_sets_round_trip_with_their_priorities():
    vs = ValidatorSet(Validator(bytes([i]) * 20, i + 1) for i in range(5)).increment(3)
    assert decode_validator_set(encode_validator_set(vs)) == vs


class Chain4:
    """Four validators' keys and a chain of `blocks` decided blocks, signed by the first three."""

    def __init__(self, tmp_path, blocks: int = 3):
        self.keys = validator_keys(4)
        self.genesis = network_genesis(4)
        self.node = Node.init(tmp_path / "proposer", self.genesis)
        self.app = ChainApplication(self.node)
        self.blocks: list[tuple[Block, Commit]] = []
        for height in range(1, blocks + 1):
            self.decide_next(signers=3)

    def commit_for(self, height: int, block_hash: bytes, signers: int) -> Commit:
        vs = self.app.validator_set(height)
        by_address = {address_of(k): k for k in self.keys}
        vote = Vote(VoteType.PRECOMMIT, height, 0, block_hash)
        chosen = [v.address for v in vs][:signers]
        return make_commit(vs, [(a, Signer(by_address[a], self.genesis.chain_id).sign_vote(vote)) for a in chosen])

    def propose(self, height: int) -> Block:
        """What the round-0 proposer of `height` builds (coinbase = the proposer)."""
        self.app.address = self.app.validator_set(height).proposer.address
        return self.app.prepare_proposal(height, 0)

    def decide_next(self, signers: int = 3) -> tuple[Block, Commit]:
        height = self.node.head().block_number + 1
        block = self.propose(height)
        commit = self.commit_for(height, block.hash, signers)
        self.app.finalize(height, block, commit)
        self.blocks.append((block, commit))
        return block, commit


def test_blocks_carry_and_commit_to_the_parents_commit(tmp_path):
    chain = Chain4(tmp_path, blocks=3)
    node, app = chain.node, chain.app
    for height in (2, 3):
        header = node.header_by_number(height)
        parent_commit = Commit.decode(node.commit_record(height - 1))
        assert header.parent_beacon_block_root == parent_commit.hash()
        assert bitmap_signers(app.validator_set(height - 1), header.extra_data) == parent_commit.signers
        assert len(parent_commit.signers) == 3
        _, carried = split_block(chain.blocks[height - 1][0].data)
        assert carried == parent_commit.encode()
        assert header.coinbase == app.validator_set(height).proposer.address


def test_the_light_client_check_refuses_what_does_not_prove_finality(tmp_path):
    chain = Chain4(tmp_path, blocks=2)
    node, app = chain.node, chain.app
    header, commit = node.header_by_number(2), Commit.decode(node.commit_record(2))
    vs = app.validator_set(2)
    assert len(verify_finality(header, commit, vs, node.chain_id)) == 3
    with pytest.raises(InsufficientVotingPower):  # 2 of 4 equal powers is not more than 2/3
        verify_finality(header, chain.commit_for(2, header.hash, signers=2), vs, node.chain_id)
    with pytest.raises(InvalidCommit):  # the commit of another block
        verify_finality(node.header_by_number(1), commit, app.validator_set(1), node.chain_id)
    with pytest.raises(InvalidSignature):  # another chain id
        verify_finality(header, commit, vs, node.chain_id + 1)
    strangers = ValidatorSet(Validator(address_of(k), 1) for k in validator_keys(8)[4:])
    with pytest.raises(UnknownValidator):
        verify_finality(header, commit, strangers, node.chain_id)
    forged = dataclasses.replace(commit, signatures=(commit.signatures[0],) * 3)
    with pytest.raises(InvalidCommit):  # one signer counted three times
        verify_finality(header, forged, vs, node.chain_id)


def test_a_follower_imports_decided_blocks_and_checks_each_commitment(tmp_path):
    """What block sync does with a block and the commit it was decided with: the follower's
    process_proposal accepts the proposer's block, and finalize stores the same chain."""
    chain = Chain4(tmp_path, blocks=3)
    follower = Node.init(tmp_path / "follower", chain.genesis)
    app = ChainApplication(follower)
    for height, (block, commit) in enumerate(chain.blocks, start=1):
        proposer = app.validator_set(height).proposer_for_round(0).address
        assert app.process_proposal(height, 0, block), height
        verify_commit_ok = verify_finality(rlp.decode(split_block(block.data)[0], sedes=follower.block_class_at(height)).header,
                                           commit, app.validator_set(height), follower.chain_id)
        assert len(verify_commit_ok) == 3 and proposer
        app.finalize(height, block, commit)
    for height in (1, 2, 3):
        assert follower.header_by_number(height) == chain.node.header_by_number(height)
        assert follower.validator_set_record(height + 1) == chain.node.validator_set_record(height + 1)
    # the canonical commit of block 2 is the one block 3 carries, on both nodes
    assert follower.commit_record(2) == chain.node.commit_record(2)
    follower.close()


KEEP = object()


def _lying_block(chain: Chain4, height: int, carried=KEEP, **fields) -> Block:
    """The proposer's block at `height` with header fields replaced and another parent commit
    carried (re-sealed, so it is a well-formed block that lies only about what it says)."""
    node, app = chain.node, chain.app
    commit = app.parent_commit(height)
    wanted = {**header_fields(app.validator_set(height - 1), commit),
              "coinbase": app.validator_set(height).proposer.address, **fields}
    staged = node.stage_block(**wanted)
    return Block(staged.block.hash, encode_block(staged.block, commit if carried is KEEP else carried))


@pytest.mark.parametrize("lie, why", [
    ("extra_data", "extraData is not the signer bitmap"), ("beacon_root", "parentBeaconBlockRoot is not the hash"),
    ("no_commit", "carries no commit of its parent"), ("weak_commit", "more than 2/3 is needed"),
    ("coinbase", "is not the proposer"), ("future", "too far in the future"),
    ("wrong_height", "is not the next block"), ("garbage", "not an Ethereum block")])
def test_process_proposal_refuses_a_block_that_lies(tmp_path, lie, why):
    """Every honest validator refuses (prevotes nil on) a block whose header misstates the
    parent's commit, that drops or weakens it, pays another coinbase, or runs ahead of time."""
    chain = Chain4(tmp_path, blocks=2)
    app = chain.app
    height = 3
    honest = chain.propose(height)
    assert app.process_proposal(height, 0, honest)
    everyone = chain.commit_for(2, chain.node.head().hash, signers=4)
    if lie == "extra_data":  # claims all four signed while the carried commit has three
        block = _lying_block(chain, height, extra_data=b"\x0f")
    elif lie == "beacon_root":
        block = _lying_block(chain, height, parent_beacon_block_root=b"\x11" * 32)
    elif lie == "no_commit":
        block = _lying_block(chain, height, extra_data=b"", parent_beacon_block_root=BLANK_ROOT_HASH, carried=None)
    elif lie == "weak_commit":  # a commit of 2 of 4: not proof the parent was decided
        weak = chain.commit_for(2, chain.node.head().hash, signers=2)
        block = _lying_block(chain, height, parent_beacon_block_root=weak.hash(), carried=weak)
    elif lie == "coinbase":
        block = _lying_block(chain, height, coinbase=b"\x99" * 20)
    elif lie == "future":
        block = _lying_block(chain, height, timestamp=int(time.time()) + 3600)
    elif lie == "wrong_height":
        block = chain.blocks[-1][0]  # block 2 again
    else:
        block = Block(b"\x12" * 32, rlp.encode([b"\x01", b""]))  # not an ethereum block
    assert not app.process_proposal(height, 0, block)
    with pytest.raises(Exception, match=why):
        app.check_block(height, block.data, proposer=app.validator_set(height).proposer_for_round(0).address)
    # a block carrying a stronger commit than the one we hold is fine, if its header says so
    stronger = _lying_block(chain, height, extra_data=b"\x0f", parent_beacon_block_root=everyone.hash(), carried=everyone)
    assert app.process_proposal(height, 0, stronger)


# -- four validators in one process ----------------------------------------------------------

class LocalNetwork:
    """Every broadcast reaches every running driver at once (reliable, in order)."""

    def __init__(self) -> None:
        self.drivers: dict[int, ConsensusDriver] = {}

    def endpoint(self, index: int) -> "Endpoint":
        return Endpoint(self, index)


@dataclasses.dataclass
class Endpoint:
    net: LocalNetwork
    index: int

    def _others(self):
        return [d for i, d in self.net.drivers.items() if i != self.index]

    def broadcast_proposal(self, proposal, block) -> None:
        for d in self._others():
            d.deliver(ProposalReceived(proposal, block))

    def broadcast_vote(self, vote) -> None:
        for d in self._others():
            d.deliver(VoteReceived(vote))

    def broadcast_evidence(self, evidence) -> None:
        for d in self._others():
            d.evidence_seen(evidence)

    def broadcast_transaction(self, raw: bytes) -> None:
        for d in self._others():
            d.node.mempool.add_raw(raw)
            d.notify_transaction()

    def decided(self, decide) -> None:
        pass

    def rejected(self, message, error) -> None:
        raise AssertionError(f"an honest validator's message was rejected: {error}")


def test_four_validators_decide_the_same_blocks(tmp_path):
    """N = 4 on the same driver and application: every node stores the same five blocks, each
    with a commit that verifies against the set, and each header commits to its parent's."""
    g, keys_ = network_genesis(4), validator_keys(4)
    tx_hash = keccak(transfer(0))
    nodes = [Node.init(tmp_path / f"v{i}", g) for i in range(4)]
    net = LocalNetwork()

    async def main():
        async with trio.open_nursery() as nursery:
            for i, node in enumerate(nodes):
                driver = ConsensusDriver(node, keys_[i], block_time=0.05, network=net.endpoint(i))
                net.drivers[i] = driver
            for driver in net.drivers.values():
                await nursery.start(driver.run)
            nodes[2].mempool.add_raw(transfer(0))  # in one node's pool only (no tx gossip here): mined when it proposes
            await wait_until(lambda: all(n.head().block_number >= 5 and n.tx_location(tx_hash) for n in nodes), 120)
            nursery.cancel_scope.cancel()

    trio.run(main)
    app = ChainApplication(nodes[0])
    for height in range(1, 6):
        hashes = {n.header_by_number(height).hash for n in nodes}
        assert len(hashes) == 1, height
        for n in nodes:
            commit = Commit.decode(n.commit_record(height))
            assert len(verify_finality(n.header_by_number(height), commit, app.validator_set(height), n.chain_id)) >= 3
    proposers = {nodes[0].header_by_number(h).coinbase for h in range(1, 6)}
    assert len(proposers) >= 3  # the proposer rotates
    for n in nodes:
        n.close()


def test_run_names_a_validator_key_it_cannot_use(tmp_path, capsys):
    from node.cli import main
    from node.keystore import new_key

    spec = tmp_path / "genesis.json"
    spec.write_text(genesis.to_json(network_genesis(1)))
    assert main(["init", str(spec), "--datadir", str(tmp_path / "d")]) == 0
    password = tmp_path / "pw"
    password.write_text("right\n")
    _, key_file = new_key(tmp_path / "keys", "wrong-one", light_kdf=True)
    assert main(["run", "--datadir", str(tmp_path / "d"), "--validator-key", str(key_file),
                 "--validator-password", str(password)]) == 1
    assert f"--validator-key: cannot decrypt {str(key_file)!r}" in capsys.readouterr().err
    assert main(["run", "--datadir", str(tmp_path / "d"), "--validator-key", str(tmp_path / "nope"),
                 "--validator-password", str(password)]) == 1
    assert "--validator-key: cannot read key file" in capsys.readouterr().err


def test_eth_syncing_reports_a_node_that_sees_its_peers_ahead(tmp_path):
    """A vote of height 6 reaching a node at height 0 means blocks 1..5 were decided without it:
    eth_syncing says so (geth's object) until the head gets there."""
    from node.rpc.config import RpcConfig
    from node.rpc.eth import Eth
    from node.rpc.namespaces import RpcContext

    g, keys_ = network_genesis(4), validator_keys(4)
    node = Node.init(tmp_path / "lagging", g)
    eth = Eth(RpcContext(node=node, config=RpcConfig()))
    assert eth.syncing() is False

    async def main():
        driver = ConsensusDriver(node, keys_[0], block_time=1, network=LocalNetwork().endpoint(0))
        async with trio.open_nursery() as nursery:
            await nursery.start(driver.run)
            vote = Signer(keys_[1], g.chain_id).sign_vote(Vote(VoteType.PREVOTE, 6, 0, None))
            driver.deliver(VoteReceived(vote))
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert eth.syncing() == {"startingBlock": "0x0", "currentBlock": "0x0", "highestBlock": "0x5"}
    node.close()


def test_an_equivocation_seen_by_a_validator_gets_the_offender_jailed(tmp_path):
    """Item 8, node side: two conflicting precommits by validator 3 reach validator 0, which
    sends Staking.submitEvidence from its own key; the network mines it and the VM jails the
    offender (the slash itself is the VM's, tests/staking)."""
    import eth_abi
    from consensus import DuplicateVoteEvidence

    g, keys_ = network_genesis(4), validator_keys(4)
    nodes = [Node.init(tmp_path / f"v{i}", g) for i in range(4)]
    net = LocalNetwork()
    offender = Signer(keys_[3], g.chain_id)
    a = offender.sign_vote(Vote(VoteType.PRECOMMIT, 1, 5, b"\x0a" * 32))
    b = Signer(keys_[3], g.chain_id).sign_vote(Vote(VoteType.PRECOMMIT, 1, 5, b"\x0b" * 32))
    evidence = DuplicateVoteEvidence.of(a, b)

    async def main():
        async with trio.open_nursery() as nursery:
            for i, node in enumerate(nodes):
                net.drivers[i] = ConsensusDriver(node, keys_[i], block_time=0.05, network=net.endpoint(i))
            for driver in net.drivers.values():
                await nursery.start(driver.run)
            await wait_until(lambda: nodes[0].head().block_number >= 2, 60)
            net.drivers[0].evidence_seen(evidence)
            await wait_until(lambda: _jailed_at(nodes[0], address_of(keys_[3])) > 0, 120)
            nursery.cancel_scope.cancel()

    def _jailed_at(node, address) -> int:
        from vm.modules.system import STAKING

        out = node.call({"to": STAKING, "data": keccak(text="jailedAt(address)")[:4]
                         + eth_abi.encode(["address"], [address])}, node.head()).output
        return eth_abi.decode(["uint256"], out)[0] if out else 0

    trio.run(main)
    assert _jailed_at(nodes[0], address_of(keys_[3])) > 0
    for n in nodes:
        n.close()


def test_an_equivocation_that_arrives_after_its_height_was_decided_gets_the_offender_jailed(tmp_path):
    """The lagging byzantine validator (tests/network/byzantine.py): validators 0-2 are a quorum
    and decide without 3, whose two conflicting prevotes for a height already decided reach them
    only afterwards. The votes change nothing decided, but the validators still hold that height's
    votes, find the equivocation, and the network jails the offender."""
    import eth_abi

    g, keys_ = network_genesis(4), validator_keys(4)
    nodes = [Node.init(tmp_path / f"v{i}", g) for i in range(3)]
    net = LocalNetwork()
    jailed = {}

    def jailed_at(node, address) -> int:
        from vm.modules.system import STAKING

        out = node.call({"to": STAKING, "data": keccak(text="jailedAt(address)")[:4]
                         + eth_abi.encode(["address"], [address])}, node.head()).output
        return eth_abi.decode(["uint256"], out)[0] if out else 0

    async def main():
        async with trio.open_nursery() as nursery:
            for i, node in enumerate(nodes):
                net.drivers[i] = ConsensusDriver(node, keys_[i], block_time=0.05, network=net.endpoint(i))
            for driver in net.drivers.values():
                await nursery.start(driver.run)
            await wait_until(lambda: nodes[0].head().block_number >= 2, 60)
            height = jailed["height"] = nodes[0].head().block_number  # decided by 0-2 already
            hashes = [nodes[0].header_by_number(height).hash, b"\x0b" * 32]
            for block_hash in hashes:  # the offender's two prevotes, as gossip delivers them late
                vote = Signer(keys_[3], g.chain_id).sign_vote(Vote(VoteType.PREVOTE, height, 0, block_hash))
                for driver in net.drivers.values():
                    driver.deliver(VoteReceived(vote))
            await wait_until(lambda: jailed_at(nodes[0], address_of(keys_[3])) > 0, 120)
            jailed["evidence"] = [list(d.evidence) for d in net.drivers.values()]
            nursery.cancel_scope.cancel()

    trio.run(main)
    evidence = jailed["evidence"][0]
    assert len(evidence) == 1 and all(found == evidence for found in jailed["evidence"])
    assert (evidence[0].height, evidence[0].vote_a.vote.type) == (jailed["height"], VoteType.PREVOTE)
    heads = [n.head().block_number for n in nodes]
    height = min(heads)
    assert len({n.header_by_number(height).hash for n in nodes}) == 1  # no fork
    for n in nodes:
        n.close()


def test_block_sync_imports_what_a_peer_serves_and_refuses_a_forged_commit(tmp_path):
    """Block sync's two ends (node/network.py): what a node serves for a height, and the
    importer, which verifies the commit against its own validator set before executing."""
    from node.network import check_block_bytes, sync_bytes

    chain = Chain4(tmp_path, blocks=3)
    follower = Node.init(tmp_path / "follower", chain.genesis)
    importer = ChainApplication(follower)
    served = sync_bytes(chain.node, 1)
    check_block_bytes(served)
    block, commit = split_block(served)
    weak = chain.commit_for(1, chain.node.header_by_number(1).hash, signers=2).encode()
    with pytest.raises(InsufficientVotingPower):
        importer.import_decided(1, block, weak)
    assert follower.head().block_number == 0
    for height in (1, 2, 3):
        importer.import_decided(height, *split_block(sync_bytes(chain.node, height)))
    assert follower.head() == chain.node.head()
    assert sync_bytes(chain.node, 4) is None  # not decided yet
    with pytest.raises(ValueError):
        check_block_bytes(b"\x01\x02")
    follower.close()


def test_a_validator_behind_syncs_from_a_peer_that_sends_it_nothing(tmp_path):
    """The stall of "restart all four" (BENCHMARKS.md, fault tests): validators that had not
    finalised a height came back after the others' messages of the next height were sent, and
    the others, past that height, serve none of its proposals or votes. The stuck validator asks
    its peers for the block at its height (real p2p on loopback; the peer never gossips) and
    block sync takes it to the peer's head."""
    from node.network import P2PNetwork
    from node.p2p import P2PConfig, open_p2p

    chain = Chain4(tmp_path, blocks=3)
    ahead = ConsensusDriver(chain.node, None, block_time=1)  # serves blocks; its consensus is not running
    follower = Node.init(tmp_path / "behind", chain.genesis)

    def p2p_config(name: str, bootstrap=()) -> P2PConfig:
        return P2PConfig(data_dir=tmp_path / name, chain_id=chain.genesis.chain_id, listen="/ip4/127.0.0.1/tcp/0",
                         bootstrap=tuple(str(b) for b in bootstrap))

    async def main():
        async with open_p2p(p2p_config("p2p-ahead"), P2PNetwork.handlers(lambda: ahead)) as served:
            behind = None
            async with open_p2p(p2p_config("p2p-behind", [served.address]),
                                P2PNetwork.handlers(lambda: behind)) as p2p:
                network = P2PNetwork(p2p)
                behind = ConsensusDriver(follower, chain.keys[3], block_time=0.5, network=network)
                async with trio.open_nursery() as nursery:
                    await nursery.start(behind.run)
                    nursery.start_soon(network.run, behind)
                    await wait_until(lambda: follower.head().block_number >= 3, 60)
                    nursery.cancel_scope.cancel()
                assert network.blocks_synced == 3

    trio.run(main)
    assert follower.head() == chain.node.head()
    follower.close()
    chain.node.close()


def test_block_sync_fetches_ranges_of_blocks_over_p2p(tmp_path):
    """A follower more than one range (MAX_BLOCKS_PER_REQUEST) behind syncs in range fetches
    (real p2p on loopback), every commit verified and every block executed on import; what a
    node serves for a range stops at the byte budget and at the first block it lacks."""
    from node.network import P2PNetwork, sync_bytes, sync_range
    from node.p2p import P2PConfig, open_p2p
    from node.p2p.wire import MAX_BLOCKS_PER_REQUEST

    blocks = MAX_BLOCKS_PER_REQUEST + 12
    chain = Chain4(tmp_path, blocks=blocks)
    assert sync_range(chain.node, blocks - 1, 5, 10**6) == [sync_bytes(chain.node, blocks - 1),
                                                            sync_bytes(chain.node, blocks)]
    one = len(sync_bytes(chain.node, 1))
    assert len(sync_range(chain.node, 1, 100, 2 * one)) == 2   # the block that passes the budget ends it
    ahead = ConsensusDriver(chain.node, None, block_time=1)
    follower = Node.init(tmp_path / "behind", chain.genesis)

    def p2p_config(name: str, bootstrap=()) -> P2PConfig:
        return P2PConfig(data_dir=tmp_path / name, chain_id=chain.genesis.chain_id, listen="/ip4/127.0.0.1/tcp/0",
                         bootstrap=tuple(str(b) for b in bootstrap))

    async def main():
        async with open_p2p(p2p_config("p2p-ahead"), P2PNetwork.handlers(lambda: ahead)) as served:
            async with open_p2p(p2p_config("p2p-behind", [served.address]), P2PNetwork.handlers(lambda: None)) as p2p:
                await wait_until(lambda: p2p.connected_peers(), 30)
                network = P2PNetwork(p2p)
                network.driver = ConsensusDriver(follower, None, block_time=1, network=network)
                assert await network.sync_to(blocks) == blocks
                assert network.blocks_synced == blocks
                assert p2p.scores.score(served.peer_id) == 0

    trio.run(main)
    assert follower.head() == chain.node.head()
    follower.close()
    chain.node.close()
