"""eth_ methods beyond the wallet set, from execution-apis: state proofs (eth_getProof),
batched storage reads, fee oracles for the next block, and EIP-7910's fork description
(eth_config) and the node's data retention (eth_capabilities).

They join the `eth` namespace through `extend_namespace`, so `--http.api eth` turns them on."""
from __future__ import annotations

import binascii
import functools
import struct
from typing import Annotated

import rlp
import trio
from eth._utils.address import generate_contract_address
from eth.constants import BLANK_ROOT_HASH, EMPTY_SHA3
from eth.rlp.accounts import Account
from eth.vm.forks.london.headers import calculate_expected_base_fee_per_gas
from eth_hash.auto import keccak
from trie import HexaryTrie

from genesis import geth
from node.chain import CallError, UnknownBlock
from node.rpc import format as F
from node.rpc import params as P
from node.rpc.errors import RpcError
from node.rpc.eth import blob_fees, overriding
from node.rpc.namespaces import RpcContext, extend_namespace
from node.rpc.simulate import Simulator, simulate_options, state_overrides
from vm.tracing import AccessListTracer, Budget, TraceLimitExceeded, TraceLimits, instrument_state

MAX_PROOF_KEYS = 1024
MAX_STORAGE_VALUES = 1024  # geth caps eth_getStorageValues at 1024 slots in total
ZERO_ADDRESS = b"\x00" * 20

# EIP-7910 precompile names by address, as clients report them.
PRECOMPILE_NAMES = {
    1: "ECREC", 2: "SHA256", 3: "RIPEMD160", 4: "ID", 5: "MODEXP", 6: "BN254_ADD", 7: "BN254_MUL",
    8: "BN254_PAIRING", 9: "BLAKE2F", 10: "KZG_POINT_EVALUATION", 11: "BLS12_G1ADD", 12: "BLS12_G1MSM",
    13: "BLS12_G2ADD", 14: "BLS12_G2MSM", 15: "BLS12_PAIRING_CHECK", 16: "BLS12_MAP_FP_TO_G1",
    17: "BLS12_MAP_FP2_TO_G2",
}
SYSTEM_CONTRACTS = {
    "cancun": {"BEACON_ROOTS_ADDRESS": "0x000f3df6d732807ef1319fb7b8bb8522d0beac02"},
    "prague": {
        "BEACON_ROOTS_ADDRESS": "0x000f3df6d732807ef1319fb7b8bb8522d0beac02",
        "CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS": "0x0000bbddc7ce488642fb579f8b00f3a590007251",
        "HISTORY_STORAGE_ADDRESS": "0x0000f90827f1c53a10cb7a02335b175320002935",
        "WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS": "0x00000961ef480eb55e80d19ad83579a64c007002",
    },
}
MAINNET_DEPOSIT_CONTRACT = "0x00000000219ab540356cbb839cbe05303d7705fa"


def _storage_keys(value: object) -> list[str]:
    if not isinstance(value, list):
        raise ValueError("storage keys must be an array")
    if len(value) > MAX_PROOF_KEYS:
        raise ValueError(f"too many storage keys: {len(value)} > {MAX_PROOF_KEYS}")
    for key in value:
        P.storage_slot(key)
    return value


def _proof_key(key: str, slot: int) -> str:
    """A storage key as geth echoes it in eth_getProof: a 32-byte key as 32 bytes (lower case),
    any shorter one as a quantity (`0x0`, `0x1`)."""
    digits = len(key) - 2
    return "0x%064x" % slot if (digits + digits % 2) // 2 == 32 else F.qty(slot)


def _slot_requests(value: object) -> dict[bytes, list[int]]:
    if not isinstance(value, dict):
        raise ValueError("want an object of address -> array of storage keys")
    out, total = {}, 0
    for address, slots in value.items():
        if not isinstance(slots, list):
            raise ValueError(f"storage keys of {address} must be an array")
        total += len(slots)
        if total > MAX_STORAGE_VALUES:
            raise ValueError(f"too many slots (max {MAX_STORAGE_VALUES})")
        out[P.address(address)] = [int.from_bytes(P.hash32(s), "big") for s in slots]
    if not out:
        raise ValueError("empty request")
    return out


def _proof(trie: HexaryTrie, key: bytes) -> list[str]:
    """The hashed trie nodes from root to `key`'s leaf (or where it would be). Nodes shorter
    than 32 bytes are embedded in their parent and are not separate proof entries."""
    nodes = trie.get_proof(key)
    encoded = [rlp.encode(node) for node in nodes]
    return [F.hexdata(e) for i, e in enumerate(encoded) if i == 0 or len(e) >= 32]


def fork_id(genesis_hash: bytes, passed: list[int], upcoming: int | None) -> tuple[str, int]:
    """EIP-2124 fork identifier: CRC32 of the genesis hash and every passed fork point."""
    checksum = binascii.crc32(genesis_hash)
    for point in passed:
        checksum = binascii.crc32(struct.pack(">Q", point), checksum)
    return "0x%08x" % checksum, upcoming or 0


class EthExtra:
    def __init__(self, ctx: RpcContext) -> None:
        self.node = ctx.node
        self.ctx = ctx

    def _header(self, ref) -> object:
        target = ref.hash if isinstance(ref, P.BlockHash) else ref
        try:
            return self.node.resolve_block(target)
        except UnknownBlock:
            raise RpcError("header for hash not found" if isinstance(ref, P.BlockHash) else "header not found") \
                from None

    # -- state proofs and batched reads -----------------------------------------------------
    def get_proof(self, address: Annotated[bytes, P.address], keys: Annotated[list, _storage_keys],
                  block: Annotated[object, P.block_id] = "latest") -> dict:
        header = self._header(block)
        db = self.node.evm_chain().chaindb.db
        state_trie = HexaryTrie(db, header.state_root)
        encoded = state_trie.get(keccak(address))
        account = rlp.decode(encoded, sedes=Account) if encoded else Account(0, 0, BLANK_ROOT_HASH, EMPTY_SHA3)
        storage_trie = HexaryTrie(db, account.storage_root)
        storage_proof = []
        for key in keys:
            slot = P.storage_slot(key)
            slot_key = keccak(slot.to_bytes(32, "big"))
            raw = storage_trie.get(slot_key) if account.storage_root != BLANK_ROOT_HASH else b""
            value = rlp.decode(raw, sedes=rlp.sedes.big_endian_int) if raw else 0
            proof = _proof(storage_trie, slot_key) if account.storage_root != BLANK_ROOT_HASH else []
            storage_proof.append({"key": _proof_key(key, slot), "value": F.qty(value), "proof": proof})
        return {
            "address": F.hexdata(address),
            "accountProof": _proof(state_trie, keccak(address)),
            "balance": F.qty(account.balance),
            "codeHash": F.hexdata(account.code_hash),
            "nonce": F.qty(account.nonce),
            "storageHash": F.hexdata(account.storage_root),
            "storageProof": storage_proof,
        }

    def get_storage_values(self, requests: Annotated[dict, _slot_requests],
                           block: Annotated[object, P.block_id] = "latest") -> dict:
        state = self.node.state_at(self._header(block))
        return {F.hexdata(address): ["0x%064x" % state.get_storage(address, slot) for slot in slots]
                for address, slots in requests.items()}

    # -- access lists ---------------------------------------------------------------------------
    async def create_access_list(self, tx: Annotated[dict, P.call_request],
                                 block: Annotated[object, P.block_id] = "latest",
                                 overrides: Annotated[dict, state_overrides] = None) -> dict:
        header = self._header(block)
        gas_cap = self.ctx.config.call_gas_cap
        if tx.get("gas") is None or tx["gas"] > gas_cap:
            tx = dict(tx, gas=min(tx.get("gas") or header.gas_limit, gas_cap))
        fn = functools.partial(self._access_list, tx, header, overriding(overrides))
        return await trio.to_thread.run_sync(fn, limiter=self.ctx.call_limiter)

    def _access_list(self, tx: dict, header, override=None) -> dict:
        sender = tx.get("from") or ZERO_ADDRESS
        excluded = {sender}
        tracer = AccessListTracer(excluded, Budget(TraceLimits(), None))

        def prepare(state) -> None:
            if override is not None:  # geth applies state overrides before anything else
                override(state)
            recipient = tx.get("to") or generate_contract_address(sender, tx.get("nonce", state.get_nonce(sender)))
            excluded.add(recipient)
            excluded.update(state.computation_class.get_precompiles())
            instrument_state(state, tracer)

        try:
            computation = self.node.call(tx, header, prepare)
        except CallError as exc:
            raise RpcError(str(exc)) from None
        except TraceLimitExceeded as exc:
            raise RpcError(str(exc)) from None
        used = tx["gas"] - computation.get_gas_remaining()
        used -= min(computation.get_gas_refund(), used // 5)
        out = {"accessList": tracer.access_list(), "gasUsed": F.qty(tracer.gas_with_list(used))}
        if computation.is_error:
            out["error"] = "execution reverted" if computation.error.__class__.__name__ == "Revert" \
                else str(computation.error) or type(computation.error).__name__
        return out

    # -- simulation -----------------------------------------------------------------------------
    async def simulate(self, opts: Annotated[dict, simulate_options],
                       block: Annotated[object, P.block_id] = "latest") -> list:
        header = self._header(block)
        simulator = Simulator(self.node.evm_chain(), self.ctx.config.call_gas_cap, self.node.chain_id)
        return await trio.to_thread.run_sync(simulator.run, opts, header, limiter=self.ctx.call_limiter)

    # -- fees of the next block ---------------------------------------------------------------
    def base_fee(self) -> str:
        return F.qty(calculate_expected_base_fee_per_gas(self.node.head()))

    def _blob_params(self, fork: str) -> tuple[int, int, int] | None:
        return geth.PY_EVM_BLOB_SCHEDULE.get(fork)

    def blob_base_fee(self) -> str:
        head = self.node.head()
        if self._blob_params(self.node.genesis.fork_at(head.block_number + 1)) is None:
            raise RpcError("blobs are not enabled at the next block")
        return F.qty(blob_fees(self.node.genesis, head)[1])

    # -- EIP-7910 eth_config and eth_capabilities ----------------------------------------------
    def _fork_points(self) -> list[tuple[str, str, int]]:
        """(fork, "block"|"time", activation) for every fork after genesis, in order."""
        genesis = self.node.genesis
        eth = genesis.ethereum
        if eth is None:
            return []
        points = []
        config = eth.config
        for key, name in geth.BLOCK_FORKS + (("daoForkBlock", "dao"), ("mergeNetsplitBlock", "paris")):
            if config.get(key) is not None and int(config[key]) > 0:
                points.append((name, "block", int(config[key])))
        for name, at in eth.fork_times:
            if at > genesis.timestamp:
                points.append((name, "time", at))
        return points

    def _describe(self, fork: str, activation: int, passed: list[int], upcoming: int | None) -> dict:
        genesis_hash = self.node.header_by_number(0).hash
        vm_class = self.node.evm_chain().get_vm_class_for_block_number(self._block_of(fork))
        precompiles = vm_class._state_class.computation_class.get_precompiles()
        names = {}
        for address in precompiles:
            number = int.from_bytes(address, "big")
            if number in PRECOMPILE_NAMES:
                names[PRECOMPILE_NAMES[number]] = "0x" + bytes(address).rjust(20, b"\x00").hex()
        blob = self._blob_params(fork)
        system = dict(SYSTEM_CONTRACTS.get(fork, {}))
        if fork == "prague":
            eth = self.node.genesis.ethereum
            system["DEPOSIT_CONTRACT_ADDRESS"] = F.hexdata(eth.deposit_contract) if eth is not None \
                else MAINNET_DEPOSIT_CONTRACT
        return {
            "activationTime": activation,
            "blobSchedule": None if blob is None else {"target": blob[0], "max": blob[1],
                                                       "baseFeeUpdateFraction": blob[2]},
            "chainId": F.qty(self.node.chain_id),
            "forkId": fork_id(genesis_hash, passed, upcoming)[0],
            "precompiles": dict(sorted(names.items())),
            "systemContracts": dict(sorted(system.items())),
        }

    def _block_of(self, fork: str) -> int:
        for start, name in self.node.genesis.forks:
            if name == fork:
                return start
        return self.node.head().block_number

    def config(self) -> dict:
        head = self.node.head()
        points = self._fork_points()
        seen: list[int] = []
        for _, kind, at in points:
            if at not in seen:
                seen.append(at)
        reached = [at for name, kind, at in points
                   if (kind == "block" and at <= head.block_number) or (kind == "time" and at <= head.timestamp)]
        passed = [at for at in seen if at in reached]
        future = [(name, kind, at) for name, kind, at in points if at not in reached]
        current_fork = self.node.genesis.fork_at(head.block_number)
        current_time = next((at for name, kind, at in points if name == current_fork and kind == "time"), 0)
        current = self._describe(current_fork, current_time, passed, future[0][2] if future else None)
        if future:
            name, kind, at = future[0]
            nxt = self._describe(name, at, passed + [at], future[1][2] if len(future) > 1 else None)
            last = self._describe(future[-1][0], future[-1][2], passed + [a for _, _, a in future], None)
        else:
            nxt = last = None
        return {"current": current, "next": nxt, "last": last}

    def capabilities(self) -> dict:
        head = self.node.head()
        kept = {"disabled": False, "oldestBlock": "0x0"}  # archive node: everything from genesis
        return {
            "head": {"number": F.qty(head.block_number), "hash": F.hexdata(head.hash)},
            "state": dict(kept), "tx": dict(kept),
            "logs": dict(kept), "receipts": dict(kept), "blocks": dict(kept), "stateproofs": dict(kept),
        }

    def methods(self) -> dict:
        return {
            "eth_getProof": self.get_proof,
            "eth_getStorageValues": self.get_storage_values,
            "eth_createAccessList": self.create_access_list,
            "eth_simulateV1": self.simulate,
            "eth_baseFee": self.base_fee,
            "eth_blobBaseFee": self.blob_base_fee,
            "eth_config": self.config,
            "eth_capabilities": self.capabilities,
        }


extend_namespace("eth", lambda ctx: EthExtra(ctx).methods())
