"""Contracts calling native modules: no double spend through repeated calls in one transaction,
DELEGATECALL refused (it would run module code on the caller's storage and balance), and a
STATICCALL may read but never write."""
import json
import pathlib
import subprocess

import pytest
from tests.native.conftest import OPEN, H
from eth_abi import decode
from tests.native.native_chain import ADDRESS, CONTRACTS, W3, revert_reason

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def caller_artifact(tmp_path_factory):
    out = tmp_path_factory.mktemp("solc")
    subprocess.run([str(ROOT / "node_modules/.bin/solcjs"), "--bin", "--abi", "-o", str(out),
                    "contracts/test/NativeCaller.sol"], cwd=ROOT, check=True, capture_output=True)
    stem = "contracts_test_NativeCaller_sol_NativeCaller"
    return bytes.fromhex((out / f"{stem}.bin").read_text()), json.loads((out / f"{stem}.abi").read_text())


@pytest.fixture
def caller(world, caller_artifact):
    code, abi = caller_artifact
    address = world.nc.deploy(world.keys[7], code)
    return W3.eth.contract(address=address, abi=abi)


def _data(module: str, fn: str, *args) -> bytes:
    return bytes.fromhex(CONTRACTS[module].encode_abi(fn, args=list(args))[2:])


def _send(world, caller, fn, *args, value=0):
    data = bytes.fromhex(caller.encode_abi(fn, args=list(args))[2:])
    return world.nc.mine([world.nc.sign(world.keys[7], caller.address, data, value)])[0]


def test_contribute_twice_in_one_tx_records_once(world, caller):
    nc = world.nc
    r = _send(world, caller, "callTwice", ADDRESS["Datanets"], _data("Datanets", "contribute", 1, H(60), 10), 0)
    assert r.ok
    assert decode(["bool", "bool"], r.computation.output) == (True, False)  # the duplicate is refused
    assert nc.call("Datanets", "getDatanet", 1)[8] == 4
    assert nc.call("Datanets", "getContribution", 1, H(60))[0] == caller.address.lower()


def test_paid_request_twice_escrows_exactly_twice(world, caller):
    nc = world.nc
    jobs_before, caller_before = nc.balance(ADDRESS["InferenceJobs"]), 5 * OPEN
    r = _send(world, caller, "callTwice", ADDRESS["InferenceJobs"],
              _data("InferenceJobs", "requestInference", 1, H(61), 2 * OPEN), 2 * OPEN, value=caller_before)
    assert decode(["bool", "bool"], r.computation.output) == (True, True)  # two jobs, each paid for
    assert nc.balance(ADDRESS["InferenceJobs"]) - jobs_before == 2 * OPEN  # two prices escrowed
    assert nc.balance(caller.address) == caller_before - 2 * OPEN  # excess refunded twice, nothing more
    assert nc.call("InferenceJobs", "jobCount") == 2


def test_withdraw_twice_pays_once(world, caller):
    nc = world.nc
    r = _send(world, caller, "callTwice", ADDRESS["Staking"], _data("Staking", "delegate", world.addrs[4]), 3 * OPEN,
              value=6 * OPEN)
    assert decode(["bool", "bool"], r.computation.output) == (True, True)
    assert nc.call("Staking", "delegation", caller.address, world.addrs[4]) == 6 * OPEN
    r = _send(world, caller, "callTwice", ADDRESS["Staking"], _data("Staking", "undelegate", world.addrs[4], 4 * OPEN), 0)
    assert decode(["bool", "bool"], r.computation.output) == (True, False)  # only 2 OPEN left after the first
    nc.now += 21 * 24 * 3600
    before = nc.balance(caller.address)
    r = _send(world, caller, "callTwice", ADDRESS["Staking"], _data("Staking", "withdraw"), 0)
    assert decode(["bool", "bool"], r.computation.output) == (True, False)
    assert nc.balance(caller.address) - before == 4 * OPEN


def test_delegatecall_is_refused(world, caller):
    r = _send(world, caller, "delegate", ADDRESS["Datanets"], _data("Datanets", "contribute", 1, H(62), 10))
    ok, ret = decode(["bool", "bytes"], r.computation.output)
    assert not ok and revert_reason(ret) == "Datanets: DELEGATECALL and CALLCODE are not supported"
    assert world.nc.call("Datanets", "getDatanet", 1)[8] == 3


def test_staticcall_reads_but_cannot_write(world, caller):
    nc = world.nc
    ok, ret = nc.call_contract(caller, "staticRead", ADDRESS["Datanets"], _data("Datanets", "datanetCount"))
    assert ok and decode(["uint256"], ret) == (1,)
    ok, ret = nc.call_contract(caller, "staticRead", ADDRESS["Datanets"], _data("Datanets", "contribute", 1, H(63), 10))
    assert not ok and revert_reason(ret) == "Datanets.contribute: state change in a static call"
