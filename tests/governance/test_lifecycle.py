"""OPEN governance over web3.py with OpenZeppelin's standard ABIs, on a real node process:
wrap OPEN into GOPEN, delegate, propose, vote, queue, execute; a parameter change that a native
module then applies, a treasury grant, and each refusal the contracts and the chain make."""
import dataclasses
import subprocess

import pytest
from eth_account import Account
from eth_utils import keccak
from web3.exceptions import ContractCustomError, ContractLogicError

import genesis
from genesis.governance import Governance
from tests.governance.client import Gov
from tests.rpc.nodes import NodeProcess, free_port, openledger

OPEN = 10**18
SETTINGS = Governance(voting_delay_blocks=1, voting_period_blocks=12, proposal_threshold=1 * OPEN,
                      quorum_percent=4, timelock_delay_s=2)
FOR, AGAINST = 1, 0
PENDING, ACTIVE, DEFEATED, SUCCEEDED, QUEUED, EXECUTED = 0, 1, 3, 4, 5, 7


def _selector(signature: str) -> str:
    return "0x" + keccak(text=signature)[:4].hex()


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gov")
    g = dataclasses.replace(genesis.devnet(), governance=SETTINGS)
    (tmp / "genesis.json").write_text(genesis.to_json(g))
    subprocess.run(openledger("init", str(tmp / "genesis.json"), "--datadir", str(tmp / "data")),
                   check=True, capture_output=True)
    port = free_port()
    node = NodeProcess(openledger("run", "--datadir", str(tmp / "data"), "--http.port", str(port),
                                  "--block-time", "0", "--http.api", "eth,net,web3,ol"),
                       port, tmp / "node.log").wait_ready()
    yield node, tmp
    node.stop()


@pytest.fixture(scope="module")
def gov(chain, dev_accounts):
    node, _ = chain
    return Gov(node.url, [key for _, key in dev_accounts])


def _proposal(gov: Gov, actions: list[tuple[str, int, bytes]], description: str):
    targets = [t for t, _, _ in actions]
    values = [v for _, v, _ in actions]
    calldatas = [c for _, _, c in actions]
    return targets, values, calldatas, description


def _pass(gov: Gov, proposal, voter: int = 0) -> int:
    """Propose, vote for, queue, wait out the timelock and execute; the proposal id."""
    targets, values, calldatas, description = proposal
    gov.send(voter, gov.governor.functions.propose(targets, values, calldatas, description))
    pid = gov.governor.functions.hashProposal(targets, values, calldatas, keccak(text=description)).call()
    assert gov.governor.functions.state(pid).call() == PENDING
    gov.mine(SETTINGS.voting_delay_blocks + 1)
    assert gov.governor.functions.state(pid).call() == ACTIVE
    gov.send(voter, gov.governor.functions.castVote(pid, FOR))
    gov.mine(SETTINGS.voting_period_blocks)
    assert gov.governor.functions.state(pid).call() == SUCCEEDED
    gov.send(voter, gov.governor.functions.queue(targets, values, calldatas, keccak(text=description)))
    assert gov.governor.functions.state(pid).call() == QUEUED
    with pytest.raises(ContractCustomError) as early:  # before the Timelock's delay
        gov.governor.functions.execute(targets, values, calldatas, keccak(text=description)).call(
            {"from": gov.accounts[voter].address})
    assert early.value.data.startswith(_selector("TimelockUnexpectedOperationState(bytes32,bytes32)"))
    gov.mine_until_eta(pid)
    gov.send(voter, gov.governor.functions.execute(targets, values, calldatas, keccak(text=description)))
    assert gov.governor.functions.state(pid).call() == EXECUTED
    return pid


def test_predeploys_are_the_standard_contracts_with_genesis_settings(gov):
    g = gov.governor.functions
    assert g.name().call() == "OPEN Governor"
    assert g.token().call() == gov.gopen.address and g.timelock().call() == gov.timelock.address
    assert (g.votingDelay().call(), g.votingPeriod().call(), g.proposalThreshold().call()) == (1, 12, OPEN)
    assert g.quorumNumerator().call() == 4 and g.CLOCK_MODE().call() == "mode=blocknumber&from=default"
    assert gov.timelock.functions.getMinDelay().call() == 2
    proposer = gov.timelock.functions.PROPOSER_ROLE().call()
    assert gov.timelock.functions.hasRole(proposer, gov.governor.address).call()
    assert not gov.timelock.functions.hasRole(proposer, gov.accounts[0].address).call()
    assert gov.gopen.functions.symbol().call() == "GOPEN" and gov.gopen.functions.totalSupply().call() == 0


def test_wrap_delegate_and_unwrap(gov):
    w3, alice = gov.w3, gov.accounts[0].address
    gov.send(0, gov.gopen.functions.deposit(), value=1_000 * OPEN)
    gov.send(1, to=gov.gopen.address, value=10 * OPEN)  # a plain transfer wraps too
    gov.send(0, gov.gopen.functions.delegate(alice))
    assert gov.gopen.functions.getVotes(alice).call() == 1_000 * OPEN
    assert gov.gopen.functions.getVotes(gov.accounts[1].address).call() == 0  # not delegated
    before = w3.eth.get_balance(gov.accounts[1].address)
    receipt = gov.send(1, gov.gopen.functions.withdraw(4 * OPEN))
    fee = receipt.gasUsed * receipt.effectiveGasPrice
    assert w3.eth.get_balance(gov.accounts[1].address) == before + 4 * OPEN - fee
    with pytest.raises(ContractCustomError) as over:
        gov.gopen.functions.withdraw(7 * OPEN).call({"from": gov.accounts[1].address})
    assert over.value.data.startswith(_selector("GOPENInsufficientBalance(address,uint256,uint256)"))
    assert gov.gopen.functions.totalSupply().call() == w3.eth.get_balance(gov.gopen.address) == 1_006 * OPEN


def test_set_param_only_from_the_timelock(gov):
    with pytest.raises(ContractLogicError, match="only the governance Timelock"):
        gov.economics.functions.setParam("dispute_window_s", 3600).call({"from": gov.accounts[0].address})
    with pytest.raises(ContractLogicError, match="only the governance Timelock"):  # not even the Governor
        gov.economics.functions.setParam("dispute_window_s", 3600).call({"from": gov.governor.address})
    assert gov.economics.functions.getParam("dispute_window_s").call() == genesis.devnet().economics.dispute_window_s


def test_parameter_change_takes_effect_in_the_staking_module(chain, gov):
    new_min = 5_000 * OPEN
    call = gov.economics.encode_abi("setParam", ["min_validator_stake", new_min])
    _pass(gov, _proposal(gov, [(gov.economics.address, 0, call)], "raise the validator floor to 5000 OPEN"))
    assert gov.economics.functions.getParam("min_validator_stake").call() == new_min
    params = chain[0].rpc("ol_getParams")
    assert params["params"]["min_validator_stake"] == hex(new_min)
    assert params["governable"]["min_validator_stake"] == [hex(OPEN), hex(10**7 * OPEN)]
    logs = gov.economics.events.ParamChanged().get_logs(from_block=0)
    assert [(e.args.name, e.args.newValue) for e in logs] == [("min_validator_stake", new_min)]
    with pytest.raises(ContractLogicError, match="5000"):  # the module reads the new floor at once
        gov.staking.functions.registerValidator(100_000, 1).call(
            {"from": gov.accounts[3].address, "value": 1_000 * OPEN})


def test_treasury_grant_paid_by_the_timelock(gov):
    w3 = gov.w3
    gov.send(2, to=gov.timelock.address, value=50 * OPEN)  # the treasury also takes the fee split's share
    treasury = w3.eth.get_balance(gov.timelock.address)
    grantee = Account.create().address
    _pass(gov, _proposal(gov, [(grantee, 7 * OPEN, b"")], "grant 7 OPEN to a builder"))
    assert w3.eth.get_balance(grantee) == 7 * OPEN
    assert w3.eth.get_balance(gov.timelock.address) == treasury - 7 * OPEN


def test_refusals(gov):
    w3, g = gov.w3, gov.governor.functions
    target, data = [gov.economics.address], [gov.economics.encode_abi("setParam", ["slash_ppm", 2_000_000])]
    # below the proposal threshold: account 4 holds no votes
    with pytest.raises(ContractCustomError) as low:
        g.propose(target, [0], data, "too small").call({"from": gov.accounts[4].address})
    assert low.value.data.startswith(_selector("GovernorInsufficientProposerVotes(address,uint256,uint256)"))
    # an out-of-bounds value and a grant above the treasury's balance both pass the vote; their
    # executions revert (with the bounds; with the failed call) and change nothing
    overspend = ([gov.accounts[6].address], [w3.eth.get_balance(gov.timelock.address) + 1], [b""], "grant too much")
    bounds = (target, [0], data, "slash everything twice")
    ids = []
    for targets, values, calldatas, description in (bounds, overspend):
        gov.send(0, g.propose(targets, values, calldatas, description))
        ids.append(g.hashProposal(targets, values, calldatas, keccak(text=description)).call())
    gov.mine(2)
    for pid in ids:
        gov.send(0, g.castVote(pid, FOR))
    with pytest.raises(ContractCustomError) as twice:
        g.castVote(ids[0], FOR).call({"from": gov.accounts[0].address})
    assert twice.value.data.startswith(_selector("GovernorAlreadyCastVote(address)"))
    # votes come from the snapshot: GOPEN moved afterwards counts for nobody twice
    gov.send(0, gov.gopen.functions.transfer(gov.accounts[5].address, 500 * OPEN))
    gov.send(5, gov.gopen.functions.delegate(gov.accounts[5].address))
    gov.send(5, g.castVote(ids[0], AGAINST))
    assert g.proposalVotes(ids[0]).call() == [0, 1_000 * OPEN, 0]  # against, for, abstain
    gov.mine(SETTINGS.voting_period_blocks)
    with pytest.raises(ContractCustomError) as late:
        g.castVote(ids[0], FOR).call({"from": gov.accounts[0].address})
    assert late.value.data.startswith(_selector("GovernorUnexpectedProposalState(uint256,uint8,bytes32)"))
    for targets, values, calldatas, description in (bounds, overspend):
        gov.send(0, g.queue(targets, values, calldatas, keccak(text=description)))
    gov.mine_until_eta(ids[1])
    with pytest.raises(ContractLogicError, match="slash_ppm must be between 0 and 1000000"):
        g.execute(*bounds[:3], keccak(text=bounds[3])).call({"from": gov.accounts[0].address})
    with pytest.raises(ContractCustomError) as failed:
        g.execute(*overspend[:3], keccak(text=overspend[3])).call({"from": gov.accounts[0].address})
    assert failed.value.data.startswith(_selector("FailedCall()"))
    assert gov.economics.functions.getParam("slash_ppm").call() == genesis.devnet().economics.slash_ppm
    assert w3.eth.get_balance(gov.accounts[6].address) == 10_000 * OPEN


def test_reimport_into_a_fresh_node_gives_the_same_state(chain, gov):
    """Every block of the lifecycle above, exported and imported into a new data dir, ends on
    the same head and state root: the parameter change is part of the chain, not of one node."""
    node, tmp = chain
    head = gov.w3.eth.get_block("latest")
    node.stop()
    try:
        run = lambda *args: subprocess.run(openledger(*args), check=True, capture_output=True)  # noqa: E731
        run("export", str(tmp / "chain.rlp"), "--datadir", str(tmp / "data"))
        run("init", str(tmp / "genesis.json"), "--datadir", str(tmp / "fresh"))
        run("import", str(tmp / "chain.rlp"), "--datadir", str(tmp / "fresh"))
        port = free_port()
        fresh = NodeProcess(openledger("run", "--datadir", str(tmp / "fresh"), "--http.port", str(port)), port,
                            tmp / "fresh.log").wait_ready()
        try:
            # the fresh node, a devnet validator itself, may have decided a block of its own since
            block = fresh.rpc("eth_getBlockByNumber", hex(head.number), False)
            assert (block["hash"], block["stateRoot"]) == (head.hash.to_0x_hex(), head.stateRoot.to_0x_hex())
        finally:
            fresh.stop()
    finally:
        node.start()


def test_permit_and_delegate_by_signature(gov):
    """EIP-2612 permit and ERC-5805 delegateBySig: a holder signs offline, anyone submits."""
    from eth_account.messages import encode_typed_data

    holder, spender, relayer = gov.accounts[2], gov.accounts[3].address, 4
    gov.send(2, gov.gopen.functions.deposit(), value=5 * OPEN)
    domain = {"name": "Governance OPEN", "version": "1", "chainId": gov.w3.eth.chain_id,
              "verifyingContract": gov.gopen.address}
    deadline = 2**48
    nonce = gov.gopen.functions.nonces(holder.address).call()
    permit = {"owner": holder.address, "spender": spender, "value": 2 * OPEN, "nonce": nonce, "deadline": deadline}
    signed = holder.sign_message(encode_typed_data(domain, {"Permit": [
        {"name": "owner", "type": "address"}, {"name": "spender", "type": "address"},
        {"name": "value", "type": "uint256"}, {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"}]}, permit))
    gov.send(relayer, gov.gopen.functions.permit(holder.address, spender, 2 * OPEN, deadline,
                                                 signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")))
    assert gov.gopen.functions.allowance(holder.address, spender).call() == 2 * OPEN
    delegation = {"delegatee": spender, "nonce": nonce + 1, "expiry": deadline}
    signed = holder.sign_message(encode_typed_data(domain, {"Delegation": [
        {"name": "delegatee", "type": "address"}, {"name": "nonce", "type": "uint256"},
        {"name": "expiry", "type": "uint256"}]}, delegation))
    gov.send(relayer, gov.gopen.functions.delegateBySig(spender, nonce + 1, deadline, signed.v,
                                                        signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")))
    assert gov.gopen.functions.delegates(holder.address).call() == spender
    assert gov.gopen.functions.getVotes(spender).call() == 5 * OPEN
    with pytest.raises(ContractCustomError):  # the same signature again: its nonce is used
        gov.gopen.functions.delegateBySig(spender, nonce + 1, deadline, signed.v, signed.r.to_bytes(32, "big"),
                                          signed.s.to_bytes(32, "big")).call({"from": gov.accounts[relayer].address})
