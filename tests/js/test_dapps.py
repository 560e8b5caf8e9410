"""Dapps on viem and ethers (issue #22): tests/js/dapps.test.mjs under node's built-in test runner,
against our devnet (1 s blocks, as `make run` starts it) and anvil beside it, the same flows and
assertions on both. The contracts are compiled here with solc-js and handed over, with the
nodes and the dev keys, in a JSON file named by $DAPP_CONFIG. `make test` runs the fast flows,
`make test-all` the slow ones too."""
import json
import os
import pathlib
import re
import shutil
import subprocess

import pytest

import genesis
import tests.rpc.solc as solc
from tests.rpc.nodes import ANVIL, ROOT, devnet_process, start_anvil
from vm.modules import MODULES

SUITE = pathlib.Path(__file__).with_name("dapps.test.mjs")
CONTRACTS = {"Store": solc.CONTRACTS, "Vouchers": pathlib.Path(__file__).with_name("contracts")}
CLIENTS = [ROOT / "node_modules" / name / "package.json" for name in ("viem", "ethers")]

pytestmark = pytest.mark.skipif(
    not (solc.available() and ANVIL.exists() and all(p.exists() for p in CLIENTS)),
    reason="viem, ethers, anvil or solc-js not installed: run `npm install` (make test does)")


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dapps")
    devnet = devnet_process(tmp / "devnet", "--block-time", "1").wait_ready()
    try:
        anvil = start_anvil(tmp)
    except BaseException:
        devnet.stop()
        raise
    yield {"openledger": devnet, "anvil": anvil}
    devnet.stop()
    anvil.stop()


def contract(name: str) -> dict:
    abi, bytecode = solc.compile_contract(name, CONTRACTS[name])
    return {"abi": abi, "bytecode": "0x" + bytecode.hex()}


def run_suite(nodes: dict, tmp_path: pathlib.Path, flows: str) -> str:
    """Run the JS suite's `flows` ("fast" or "slow") on every node; its report."""
    config = {
        "chainId": genesis.devnet().chain_id,
        "flows": flows,
        "keys": [key for _, key in genesis.dev_accounts()],
        "nodes": [{"name": name, "url": node.url, "ws": node.url.replace("http", "ws", 1),
                   "native": name == "openledger"} for name, node in nodes.items()],
        "contracts": {name: contract(name) for name in CONTRACTS},
        "native": {m.name: {"address": "0x" + m.address.hex(),
                            "abi": json.loads((ROOT / "vm" / "abi" / f"{m.name}.json").read_text())} for m in MODULES},
    }
    path = tmp_path / "dapps.json"
    path.write_text(json.dumps(config))
    done = subprocess.run([shutil.which("node"), "--test", "--test-reporter=spec", str(SUITE)], cwd=ROOT,
                          env={**os.environ, "DAPP_CONFIG": str(path)}, capture_output=True, text=True, timeout=540)
    assert done.returncode == 0, done.stdout[-12_000:] + done.stderr[-3_000:]
    passed = re.search(r"^\S+ pass (\d+)$", done.stdout, re.MULTILINE)
    assert passed and int(passed[1]) > 0, done.stdout[-3_000:]
    return done.stdout


def test_fast_flows(nodes, tmp_path):
    run_suite(nodes, tmp_path, "fast")


@pytest.mark.slow
def test_slow_flows(nodes, tmp_path):
    run_suite(nodes, tmp_path, "slow")
