"""An in-memory chain of our real VM (vm.build_chain_class on the devnet genesis plus the native
modules' genesis accounts), driven with signed EIP-1559 transactions built by web3.py from the
committed ABIs. Used where a node process adds nothing (state machine rules, gas, invariants)."""
import dataclasses
from typing import Any

from eth.vm.spoof import SpoofTransaction
from eth.db.atomic import AtomicDB
from eth.vm.forks.prague.transactions import PragueTransactionBuilder
from eth_account import Account
from eth._utils.address import generate_contract_address
from eth_utils import keccak, to_canonical_address, to_checksum_address
import rlp
from eth.rlp.accounts import Account as RlpAccount
from trie import HexaryTrie
from trie.iter import NodeIterator
from web3 import Web3

import genesis as genesis_mod
import vm
from vm.modules import MODULES, genesis_accounts, load_abi
from vm.modules.system import VESTING

W3 = Web3()
ABIS = {m.name: load_abi(m.name) for m in MODULES}
ADDRESS = {m.name: to_checksum_address(m.address) for m in MODULES}
CONTRACTS = {name: W3.eth.contract(address=ADDRESS[name], abi=ABIS[name]) for name in ABIS}
ERROR_SELECTOR = keccak(b"Error(string)")[:4]


def revert_reason(output: bytes) -> str | None:
    if output[:4] != ERROR_SELECTOR:
        return None
    return W3.codec.decode(["string"], output[4:])[0]


@dataclasses.dataclass
class Result:
    receipt: Any
    computation: Any
    gas_used: int

    @property
    def ok(self) -> bool:
        return self.computation.is_success

    @property
    def reason(self) -> str | None:
        return None if self.ok else revert_reason(self.computation.output)

    def events(self, module: str, event: str) -> list[dict]:
        """Decoded logs of `module`'s `event` from the receipt (web3.py's ABI decoder)."""
        out = []
        ev = getattr(CONTRACTS[module].events, event)()
        for i, log in enumerate(self.receipt.logs):
            if log.address != to_canonical_address(ADDRESS[module]):
                continue
            raw = {"address": ADDRESS[module], "topics": [t.to_bytes(32, "big") for t in log.topics],
                   "data": log.data, "logIndex": i, "transactionIndex": 0, "transactionHash": b"\0" * 32,
                   "blockHash": b"\0" * 32, "blockNumber": 0}
            if raw["topics"][0] == keccak(text=_sig(ev.abi)):
                out.append(dict(ev.process_log(raw)["args"]))
        return out


def _sig(abi: dict) -> str:
    return f"{abi['name']}({','.join(i['type'] for i in abi['inputs'])})"


class NativeChain:
    """The devnet genesis (with the production windows) on an in-memory database; `timestamp` is set per block by the test."""

    def __init__(self, g=None, check_supply: bool = True) -> None:
        self.genesis = g or genesis_mod.devnet(economics=genesis_mod.Economics())  # the real windows
        self.check_supply = check_supply
        state = vm.genesis_state(self.genesis)
        for addr, a in genesis_accounts(self.genesis).items():
            state[addr] = {"balance": a.balance, "nonce": a.nonce, "code": a.code, "storage": dict(a.storage)}
        self.chain = vm.build_chain_class(self.genesis).from_genesis(AtomicDB(), vm.genesis_params(self.genesis), state)
        self.keys = [k for _, k in genesis_mod.dev_accounts()]
        self.addresses = [a for a, _ in genesis_mod.dev_accounts()]
        self.nonces: dict[str, int] = {}
        self.now = 1_700_000_000

    @property
    def state(self):
        return self.chain.get_vm().state

    def balance(self, address) -> int:
        return self.state.get_balance(to_canonical_address(address))

    def sign(self, key: str, to: str, data: bytes, value: int = 0, gas: int = 3_000_000):
        sender = Account.from_key(key).address
        nonce = self.nonces.get(sender, self.state.get_nonce(to_canonical_address(sender)))
        self.nonces[sender] = nonce + 1
        tx = {"chainId": self.genesis.chain_id, "nonce": nonce, "to": to, "value": value, "gas": gas,
              "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9, "data": data, "type": 2}
        raw = Account.sign_transaction(tx, key).raw_transaction
        return PragueTransactionBuilder.decode(bytes(raw))

    def mine(self, txs, advance: int = 12, **header):
        """Mine `txs` in one block `advance` seconds after the previous one (`header`: fields of
        the sealed header, e.g. extra_data)."""
        self.now += advance
        self.chain.set_header_timestamp(self.now)  # the header txs execute under, not only the sealed one
        _, receipts, computations = self.chain.mine_all(txs, **header)
        prev = 0
        out = []
        for r, c in zip(receipts, computations):
            out.append(Result(r, c, r.gas_used - prev))
            prev = r.gas_used
        self.nonces.clear()
        if self.check_supply:
            assert_supply(self)
        return out

    def send(self, key: str, module: str, fn: str, *args, value: int = 0, gas: int = 3_000_000) -> Result:
        """One transaction calling `module.fn(*args)` in its own block."""
        data = bytes.fromhex(CONTRACTS[module].encode_abi(fn, args=list(args))[2:])
        return self.mine([self.sign(key, ADDRESS[module], data, value, gas)])[0]

    def deploy(self, key: str, bytecode: bytes) -> bytes:
        """Create a contract; returns its address."""
        sender = Account.from_key(key).address
        nonce = self.state.get_nonce(to_canonical_address(sender))
        r = self.mine([self.sign(key, "", bytecode, gas=5_000_000)])[0]
        assert r.ok, "deployment failed"
        return to_checksum_address(generate_contract_address(to_canonical_address(sender), nonce))

    def send_raw(self, key: str, module: str, data: bytes, value: int = 0) -> Result:
        """One transaction with hand-made call data (hostile input); `module` may be an address."""
        return self.mine([self.sign(key, ADDRESS.get(module, module), data, value)])[0]

    def call(self, module: str, fn: str, *args, sender: str | None = None):
        """eth_call-like read at the head: returns the decoded outputs or raises with the reason."""
        return self.call_contract(CONTRACTS[module], fn, *args, sender=sender)

    def call_contract(self, c, fn: str, *args, sender: str | None = None):
        """eth_call of any web3 contract object (ABI-encoded and decoded by web3's codec)."""
        data = bytes.fromhex(c.encode_abi(fn, args=list(args))[2:])
        sender_b = to_canonical_address(sender or self.addresses[0])
        tx = self.chain.create_unsigned_transaction(
            nonce=self.state.get_nonce(sender_b), gas_price=0, gas=3_000_000, to=to_canonical_address(c.address), value=0, data=data)
        out = self.chain.get_transaction_result(SpoofTransaction(tx, from_=sender_b, chain_id=self.genesis.chain_id), self.chain.get_canonical_head())
        outputs = [o["type"] for o in next(e for e in c.abi if e.get("name") == fn)["outputs"]]
        values = W3.codec.decode(outputs, out)
        return values[0] if len(values) == 1 else tuple(values)

    def storage_root(self, module: str) -> bytes:
        return self.state._account_db._get_storage_root(to_canonical_address(ADDRESS[module]))

    def all_balances(self) -> dict[bytes, int]:
        """Every account's balance, by walking the state trie (for the supply invariant)."""
        db = self.chain.chaindb.db
        trie = HexaryTrie(db, self.chain.get_canonical_head().state_root)
        out = {}
        for key, value in _walk(trie):
            out[key] = rlp.decode(value, sedes=RlpAccount).balance
        return out


def _walk(trie: HexaryTrie):
    it = NodeIterator(trie)
    key = it.next()
    while key is not None:
        yield key, trie[key]
        key = it.next(key)


def supply_parts(nc: NativeChain) -> dict[str, int]:
    """circulating / reserve / locked / burned, computed from the whole state."""
    balances = nc.all_balances()
    econ = nc.call("Economics", "supply")
    reserve = balances.get(keccak(genesis_mod.RESERVE_ADDRESS), 0)
    locked = balances.get(keccak(VESTING), 0)
    circulating = sum(balances.values()) - reserve - locked
    return {"circulating": circulating, "reserve": reserve, "locked": locked, "burned": econ[2],
            "reserve_view": econ[0], "locked_view": econ[1]}


def assert_supply(nc: NativeChain) -> None:
    """The OPEN supply identity, from the whole state trie (and the economics views agree)."""
    p = supply_parts(nc)
    assert p["reserve_view"] == p["reserve"] and p["locked_view"] == p["locked"]
    assert p["circulating"] + p["reserve"] + p["locked"] + p["burned"] == genesis_mod.TOTAL_SUPPLY, p
