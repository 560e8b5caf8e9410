"""The L1 contracts on anvil: the supply split, the inbox's batcher and contiguity rules, output
roots signed by > 2/3 of the validator stake (and validator set rotation by the same rule) and
only for posted blocks, deposit refusals with their reasons, and the forced-transaction queue's
refusals. Driven through the node's own L1 client."""
import pytest
from eth_account import Account
from eth_utils import keccak, to_canonical_address

import genesis
from node.settlement import L1, Contract, L1Error, deploy_all
from node.settlement.l1 import checksum
from node.settlement.outputs import output_digest, signatures, validator_set_hash
from tests.settlement.conftest import BATCHER, DEPLOYER, ESCROW, L1_CHAIN_ID, USER, VALIDATOR_KEY

KEYS = ["0x" + bytes([i]).hex() * 32 for i in range(1, 5)]
ADDRS = [to_canonical_address(Account.from_key(k).address) for k in KEYS]


def test_supply_split_between_l1_bridge_and_l2_escrow(deployment, anvil):
    token, _, _, bridge = deployment.contracts(L1(anvil.url))
    assert token.call("totalSupply") == genesis.TOTAL_SUPPLY
    assert token.call("balanceOf", bridge.address) == genesis.TOTAL_SUPPLY - ESCROW
    assert token.call("balanceOf", Account.from_key(DEPLOYER).address) == ESCROW


def test_inbox_takes_contiguous_batches_from_the_batcher_only(deployment, anvil):
    inbox = Contract(L1(anvil.url, BATCHER), "BatchInbox", deployment.inbox)
    inbox.transact("appendBatch", 1, 3, b"abc")
    assert inbox.call("nextBlock") == 4
    with pytest.raises(L1Error, match=r"WrongFirstBlock\(4, 1\)"):  # the same batch again
        inbox.transact("appendBatch", 1, 3, b"abc")
    with pytest.raises(L1Error, match=r"WrongFirstBlock\(4, 5\)"):  # a gap
        inbox.transact("appendBatch", 5, 6, b"abc")
    with pytest.raises(L1Error, match="EmptyBatch"):
        inbox.transact("appendBatch", 4, 3, b"abc")
    stranger = Contract(L1(anvil.url, USER), "BatchInbox", deployment.inbox)
    with pytest.raises(L1Error, match="NotBatcher"):
        stranger.transact("appendBatch", 4, 4, b"x")
    assert [e["args"]["firstBlock"] for e in inbox.events("BatchAppended", deployment.deploy_block)] == [1]


@pytest.fixture
def oracle(anvil):
    """An oracle with four validators of stakes 1, 2, 3, 4: more than 2/3 of 10 means 7 or more.
    L2 blocks 1..10 are posted to its inbox (roots are taken for posted blocks only)."""
    l1 = L1(anvil.url, DEPLOYER)
    d = deploy_all(l1, l2_chain_id=7167, l2_genesis_hash=b"\x11" * 32, validators=list(zip(ADDRS, [1, 2, 3, 4])),
                   batcher=Account.from_key(BATCHER).address, escrow=0, finalization_period=1)
    Contract(L1(anvil.url, BATCHER), "BatchInbox", d.inbox).transact("appendBatch", 1, 10, b"blocks")
    return Contract(l1, "OutputOracle", d.oracle)


def _propose(oracle, number, root, keys, next_set):
    digest = output_digest(L1_CHAIN_ID, oracle.address, 7167, number, root, validator_set_hash(next_set))
    return oracle.transact("proposeOutput", number, root, next_set, signatures(keys, digest))


def test_output_needs_more_than_two_thirds_of_the_stake(oracle):
    same = list(zip(ADDRS, [1, 2, 3, 4]))
    root = keccak(b"root")
    # our digest is the contract's
    assert oracle.call("outputDigest", 5, root, validator_set_hash(same)) == output_digest(
        L1_CHAIN_ID, oracle.address, 7167, 5, root, validator_set_hash(same))
    with pytest.raises(L1Error, match=r"InsufficientStake\(6, 10\)"):  # 2+4 = 60%
        _propose(oracle, 5, root, [KEYS[1], KEYS[3]], same)
    with pytest.raises(L1Error, match=r"NotAValidator"):
        _propose(oracle, 5, root, [KEYS[2], KEYS[3], VALIDATOR_KEY], same)
    _propose(oracle, 5, root, [KEYS[0], KEYS[2], KEYS[3]], same)  # 8 of 10
    assert oracle.call("latestBlockNumber") == 5
    assert oracle.call("getOutput", 0)[0] == root
    with pytest.raises(L1Error, match=r"OutputNotAfterLatest\(5, 5\)"):
        _propose(oracle, 5, root, KEYS, same)


def test_no_root_for_blocks_the_inbox_does_not_hold(oracle, anvil):
    """Data before settlement: with block 11 withheld from the inbox, nobody can post (and then
    withdraw against) a root of it, however well signed; once it is posted, the root goes in."""
    same = list(zip(ADDRS, [1, 2, 3, 4]))
    with pytest.raises(L1Error, match=r"OutputDataNotPosted\(11, 10\)"):
        _propose(oracle, 11, keccak(b"root"), KEYS, same)
    _propose(oracle, 10, keccak(b"root"), KEYS, same)
    inbox = Contract(L1(anvil.url, BATCHER), "BatchInbox", checksum(oracle.call("inbox")))
    inbox.transact("appendBatch", 11, 11, b"block 11")
    _propose(oracle, 11, keccak(b"root 11"), KEYS, same)
    assert oracle.call("latestBlockNumber") == 11


def test_forged_duplicated_and_replayed_signatures_are_refused(oracle):
    same = list(zip(ADDRS, [1, 2, 3, 4]))
    root = keccak(b"root")
    digest = output_digest(L1_CHAIN_ID, oracle.address, 7167, 5, root, validator_set_hash(same))
    sigs = signatures(KEYS[1:], digest)  # 9 of 10
    with pytest.raises(L1Error, match="SignersNotAscending"):  # one validator counted twice
        oracle.transact("proposeOutput", 5, root, same, [sigs[2], sigs[2], sigs[2]])
    with pytest.raises(L1Error, match="BadSignature"):
        oracle.transact("proposeOutput", 5, root, same, [sigs[0][:64] + b"\x05", *sigs[1:]])
    # signatures for one root do not carry another root, block or L2 chain
    with pytest.raises(L1Error, match="NotAValidator|SignersNotAscending"):
        oracle.transact("proposeOutput", 5, keccak(b"forged"), same, sigs)
    with pytest.raises(L1Error, match="NotAValidator|SignersNotAscending"):
        oracle.transact("proposeOutput", 6, root, same, sigs)
    other_chain = output_digest(L1_CHAIN_ID, oracle.address, 7168, 5, root, validator_set_hash(same))
    with pytest.raises(L1Error, match="NotAValidator|SignersNotAscending"):
        oracle.transact("proposeOutput", 5, root, same, signatures(KEYS[1:], other_chain))
    assert oracle.call("outputCount") == 0


def test_validator_set_changes_by_the_same_rule(oracle):
    new = [(ADDRS[0], 5), (to_canonical_address(genesis.dev_validator()[0]), 5)]
    with pytest.raises(L1Error, match="InsufficientStake"):
        _propose(oracle, 1, keccak(b"a"), [KEYS[3]], new)
    _propose(oracle, 1, keccak(b"a"), KEYS[1:], new)
    assert oracle.call("totalStake") == 10
    assert oracle.call("validatorSetHash") == validator_set_hash(new)
    with pytest.raises(L1Error, match="NotAValidator"):  # the old set no longer signs
        _propose(oracle, 2, keccak(b"b"), KEYS[1:], new)
    _propose(oracle, 2, keccak(b"b"), [KEYS[0], VALIDATOR_KEY], new)
    with pytest.raises(L1Error, match="duplicate validator"):
        _propose(oracle, 3, keccak(b"c"), [KEYS[0], VALIDATOR_KEY], [new[0], new[0]])


@pytest.mark.parametrize("to, reason", [
    ("0x" + "00" * 20, "RecipientIsZeroAddress"),
    ("0x00000000000000000000000000000000004F4C07", "RecipientIsSystemAddress"),
    ("0x00000000000000000000000000000000000e0000", "RecipientIsSystemAddress"),
    ("0x0000000000000000000000000000000000000001", "RecipientIsSystemAddress"),
])
def test_deposit_to_zero_or_system_address_is_refused(deployment, anvil, to, reason):
    l1 = L1(anvil.url, DEPLOYER)
    token, _, _, bridge = deployment.contracts(l1)
    token.transact("approve", bridge.address, 10**18)
    with pytest.raises(L1Error, match=reason):
        bridge.transact("deposit", to, 10**18)
    with pytest.raises(L1Error, match="ZeroAmount"):
        bridge.transact("deposit", Account.from_key(USER).address, 0)
    assert bridge.call("depositCount") == 0


def test_wrong_l1_is_named(deployment, anvil):
    import dataclasses
    with pytest.raises(L1Error, match="chain id 31337; this deployment is on 1"):
        dataclasses.replace(deployment, l1_chain_id=1).contracts(L1(anvil.url))
    with pytest.raises(L1Error, match=r"undecodable answer '0x' \(no BatchInbox at 0x0000"):
        Contract(L1(anvil.url), "BatchInbox", "0x" + "00" * 20).call("nextBlock")


def test_withdrawal_hash_matches_the_l2_module(deployment, anvil):
    from vm.modules.bridge import withdrawal_hash
    bridge = deployment.contracts(L1(anvil.url))[3]
    w = (3, "0x" + "ab" * 20, "0x" + "cd" * 20, 10**18)
    assert bridge.call("withdrawalHash", w) == withdrawal_hash(3, b"\xab" * 20, b"\xcd" * 20, 10**18)


def test_an_l1_that_answers_garbage_or_nothing_is_named(tmp_path):
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]

    def answer_garbage():
        for _ in range(2):
            conn, _ = server.accept()
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n{nope")
            conn.close()

    thread = threading.Thread(target=answer_garbage, daemon=True)
    thread.start()
    with pytest.raises(L1Error, match="bad answer from the L1"):
        L1(f"http://127.0.0.1:{port}").block_number()
    with pytest.raises(L1Error, match="bad answer from the L1"):
        Contract(L1(f"http://127.0.0.1:{port}"), "BatchInbox", "0x" + "00" * 20).call("nextBlock")
    thread.join(10)
    server.close()
    with pytest.raises(L1Error, match="cannot reach the L1"):
        L1(f"http://127.0.0.1:{port}").block_number()


@pytest.mark.parametrize("raw, reason", [
    (b"", "EmptyTransaction"),
    (b"\x02" + b"\x00" * 16_384, r"TransactionTooLarge\(16385, 16384\)"),
    (b"\x03blob", r"UnsupportedTransactionType\(3\)"),
    (b"\x04setcode", r"UnsupportedTransactionType\(4\)"),
    (b"\x7fgarbage", r"UnsupportedTransactionType\(127\)"),
])
def test_forced_transactions_the_l1_refuses(deployment, anvil, raw, reason):
    bridge = Contract(L1(anvil.url, USER), "L1Bridge", deployment.bridge)
    with pytest.raises(L1Error, match=reason):
        bridge.transact("forceTransaction", raw)
    assert bridge.call("forcedCount") == 0


def test_forced_transactions_are_numbered_and_logged_with_their_l2_hash(deployment, anvil):
    """What the L1 cannot judge (garbage after a valid first byte, a signature) it queues: the L2
    decides, and includes it as failed when it cannot execute."""
    bridge = Contract(L1(anvil.url, USER), "L1Bridge", deployment.bridge)
    for raw in (b"\x02garbage", b"\xc0", b"\x01" + b"\xff" * 16_383):
        bridge.transact("forceTransaction", raw)
    events = bridge.events("TransactionForced", deployment.deploy_block)
    assert [e["args"]["forcedId"] for e in events] == [0, 1, 2]
    assert [e["args"]["txHash"] for e in events] == [keccak(e["args"]["transaction"]) for e in events]
    assert events[0]["args"]["from"].lower() == Account.from_key(USER).address.lower()
    assert bridge.call("forcedCount") == 3
