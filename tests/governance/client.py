"""The governance contracts through web3.py with their standard ABIs, as a governance client
(Tally-style) drives them: used by the lifecycle tests and by bench/bench_governance.py."""
import time

from eth_account import Account
from eth_utils import to_checksum_address
from web3 import Web3

from genesis.governance import GOPEN_ADDRESS, GOVERNOR_ADDRESS, TIMELOCK_ADDRESS
from vm import governance
from vm.modules import load_abi
from vm.modules.system import ECONOMICS, STAKING


class Gov:
    """The three contracts through web3.py, and a signer that waits for each receipt."""

    def __init__(self, url: str, keys: list[str], addresses: tuple[bytes, bytes, bytes] = (
            GOPEN_ADDRESS, TIMELOCK_ADDRESS, GOVERNOR_ADDRESS)) -> None:
        """`addresses`: GOPEN, Timelock, Governor (the predeploys', unless deployed elsewhere)."""
        self.w3 = Web3(Web3.HTTPProvider(url))
        self.accounts = [Account.from_key(k) for k in keys]
        gopen, timelock, governor = (to_checksum_address(a) for a in addresses)
        self.gopen = self.w3.eth.contract(gopen, abi=governance.abi("GOPEN"))
        self.timelock = self.w3.eth.contract(timelock, abi=governance.abi("OpenTimelock"))
        self.governor = self.w3.eth.contract(governor, abi=governance.abi("OpenGovernor"))
        self.economics = self.w3.eth.contract(to_checksum_address(ECONOMICS), abi=load_abi("Economics"))
        self.staking = self.w3.eth.contract(to_checksum_address(STAKING), abi=load_abi("Staking"))

    def send(self, who: int, fn=None, *, to: str | None = None, value: int = 0):
        acct = self.accounts[who]
        tx = {"from": acct.address, "value": value, "nonce": self.w3.eth.get_transaction_count(acct.address),
              "chainId": self.w3.eth.chain_id, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}
        # A fixed gas limit, not an estimate: ERC20Votes writes a new checkpoint in a new block but
        # updates the head block's in place, and estimates run in the head block's context (as
        # geth's do), so an estimate after a same-account checkpoint falls short.
        tx["gas"] = 2_000_000
        tx = fn.build_transaction(tx) if fn is not None else {**tx, "to": to}
        receipt = self.w3.eth.wait_for_transaction_receipt(
            self.w3.eth.send_raw_transaction(acct.sign_transaction(tx).raw_transaction), timeout=30)
        assert receipt.status == 1, receipt
        return receipt

    def mine_until_eta(self, pid: int) -> None:
        """Mine until the head block's time reaches the queued proposal's eta (execution time)."""
        eta = self.governor.functions.proposalEta(pid).call()
        while self.w3.eth.get_block("latest").timestamp < eta:
            time.sleep(0.5)
            self.mine(1)

    def mine(self, blocks: int) -> None:
        """Automine: one block per transaction (a self-transfer)."""
        for _ in range(blocks):
            self.send(9, to=self.accounts[9].address)
