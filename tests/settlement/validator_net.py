"""Validators as `openledger run` processes (keys, genesis and boot nodes as `openledger testnet`
makes them) settling on an L1: the contracts deployed for their genesis set, validator 0 the
batcher and proposer (`--l1.batcher-key`), the others signing output roots with their staking
keys (`--l1` alone) or not (no `--l1`). For tests/settlement/test_validator_roots.py and
bench/bench_roots.py."""
from __future__ import annotations

import pathlib

import genesis
from node.chain import Node
from node.cli import testnet
from node.keystore import load_key
from node.settlement import L1, deploy_all
from tests.rpc.nodes import NodeProcess, free_port

DEPLOYER, BATCHER = (key for _, key in genesis.dev_accounts()[:2])


class SettlingNetwork:
    def __init__(self, root: pathlib.Path, l1_url: str, n: int = 4, *, output_interval: int = 4,
                 block_time: float = 0.5, finalization_s: int = 100) -> None:
        self.root, self.l1_url, self.k, self.block_time = root, l1_url, output_interval, block_time
        self.members = testnet._setup(root, n, [free_port() for _ in range(n)], [free_port() for _ in range(n)])
        g = genesis.load(root / testnet.GENESIS_FILE)
        with Node.open(self.members[0].datadir) as node:
            genesis_hash = node.header_by_number(0).hash
        self.deployment = deploy_all(L1(l1_url, DEPLOYER), l2_chain_id=g.chain_id, l2_genesis_hash=genesis_hash,
                                     validators=[(v.address, v.power) for v in g.validators],
                                     batcher=L1(l1_url, BATCHER).address, escrow=0,
                                     finalization_period=finalization_s)
        self.deployment_file = root / "l1-deployment.json"
        self.deployment.save(self.deployment_file)
        password = (root / testnet.PASSWORD_FILE).read_text().splitlines()[0]
        self.proposer_key = root / "proposer.key"  # validator 0's staking key: it relays deposits too
        self.proposer_key.write_text("0x" + load_key(self.members[0].key_file, password).hex() + "\n")
        self.nodes: list[NodeProcess | None] = [None] * n

    def command(self, i: int, signing: bool) -> list[str]:
        cmd = testnet._command(self.members[i], self.members, self.root, self.block_time)
        if signing:
            cmd += ["--l1", self.l1_url, "--l1.deployment", str(self.deployment_file),
                    "--l1.output-interval", str(self.k), "--l1.batch-interval", "0"]
            if i == 0:
                cmd += ["--l1.batcher-key", BATCHER, "--l1.validator-key", str(self.proposer_key)]
        return cmd

    def start(self, signing: list[bool], timeout: float = 240) -> list[NodeProcess]:
        for i, sign in enumerate(signing):
            m = self.members[i]
            self.nodes[i] = NodeProcess(self.command(i, sign), int(m.rpc.rsplit(":", 1)[1]), m.datadir / "node.log")
        for node in self.nodes:
            node.wait_ready(timeout)
        return self.nodes

    def restart(self, i: int, signing: bool) -> NodeProcess:
        """Validator `i` again on its data dir, signing or not."""
        old = self.nodes[i]
        old.stop()
        self.nodes[i] = NodeProcess(self.command(i, signing), old.port, old.log).wait_ready(240)
        return self.nodes[i]

    def log(self, i: int) -> str:
        return self.members[i].datadir.joinpath("node.log").read_text(errors="replace")

    def stop(self) -> None:
        for node in self.nodes:
            if node is not None:
                node.stop()

    def report(self, tail: int = 4000) -> str:
        """Each validator's log tail, for a failed test."""
        return "\n".join(f"===== validator {i}\n{self.log(i)[-tail:]}" for i in range(len(self.members)))
