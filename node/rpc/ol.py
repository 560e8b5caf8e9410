"""The `ol_` namespace: reads of the native modules' state, and the blob store.

Every read executes the module's own view function (through `Node.call`, as eth_call does) and
returns it as a JSON object keyed by the ABI's output names, so ol_ and web3.py can never
disagree. Quantities are hex like the eth_ namespace; an unknown id is the module's revert
(code 3 with its reason). `ol_putBlob`/`ol_getBlob` serve the bytes behind every hash the chain
names: a contribution's through its Datanet (a blob of an allowlist Datanet only with a signature,
EIP-191 personal message `blobMessage(chainId, hash)`, by its owner, a curator or an allowlisted
account); public objects (adapters, run records, prompts, outputs, proofs) to anyone by hash.
"""
from __future__ import annotations

import functools
from typing import Annotated, Any

import eth_abi
import trio
from eth.exceptions import Revert
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import keccak, to_checksum_address

from consensus import Commit
from node.blobstore import BlobError, BlobStore, blob_message
from node.chain import CallError, UnknownBlock
from node.rpc import format as F
from node.rpc import params as P
from vm.tracing import revert_reason
from node.rpc.errors import ExecutionReverted, InvalidParams, RpcError
from node.rpc.namespaces import RpcContext, register_namespace
from vm.modules import MODULES, load_abi

MAX_PAGE = 100
_ABI = {m.name: (m.address, {e["name"]: e for e in load_abi(m.name) if e["type"] == "function"}) for m in MODULES}


def _json(kind: str, value: Any) -> Any:
    if kind == "address":
        return to_checksum_address(value)
    if kind.startswith("bytes"):
        return F.hexdata(value)
    if kind.startswith(("uint", "int")):
        return F.qty(value)
    return value  # bool, string


class OlApi:
    def __init__(self, ctx: RpcContext) -> None:
        self.ctx, self.node = ctx, ctx.node
        self.blobs = BlobStore(self.node.datadir / "blobs", max_total_bytes=ctx.config.blob_store_bytes)

    # -- module reads ---------------------------------------------------------------------
    def _read_sync(self, module: str, fn: str, args: tuple, block: Any) -> dict:
        address, functions = _ABI[module]
        entry = functions[fn]
        try:
            header = self.node.resolve_block(block)
        except UnknownBlock:
            raise RpcError("header not found") from None
        data = keccak(text=f"{fn}({','.join(i['type'] for i in entry['inputs'])})")[:4] + eth_abi.encode(
            [i["type"] for i in entry["inputs"]], list(args))
        try:
            computation = self.node.call({"to": address, "data": data}, header)
        except CallError as e:
            raise RpcError(str(e)) from None
        if computation.is_error:
            if isinstance(computation.error, Revert):
                raise ExecutionReverted(revert_reason(computation.output), computation.output)
            raise RpcError(str(computation.error) or type(computation.error).__name__)
        kinds = [o["type"] for o in entry["outputs"]]
        values = eth_abi.decode(kinds, computation.output)
        names = [o["name"] or "value" for o in entry["outputs"]]
        return {n: _json(k, v) for n, k, v in zip(names, kinds, values)}

    async def _read(self, module: str, fn: str, *args: Any, block: Any = "latest") -> dict:
        return await trio.to_thread.run_sync(functools.partial(self._read_sync, module, fn, args, block),
                                             limiter=self.ctx.call_limiter)

    def modules(self) -> dict:
        return {name: to_checksum_address(address) for name, (address, _) in _ABI.items()}

    async def get_datanet(self, datanet_id: Annotated[int, P.quantity],
                          block: Annotated[object, P.block_id] = "latest") -> dict:
        return {"id": F.qty(datanet_id), **await self._read("Datanets", "getDatanet", datanet_id, block=block)}

    async def get_contribution(self, datanet_id: Annotated[int, P.quantity], content_hash: Annotated[bytes, P.hash32],
                               block: Annotated[object, P.block_id] = "latest") -> dict:
        return {"contentHash": F.hexdata(content_hash),
                **await self._read("Datanets", "getContribution", datanet_id, content_hash, block=block)}

    async def get_contributions(self, datanet_id: Annotated[int, P.quantity], offset: Annotated[int, P.quantity] = 0,
                                limit: Annotated[int, P.quantity] = MAX_PAGE) -> list:
        """Contributions in index order, `limit` (at most 100) from `offset`."""
        if limit > MAX_PAGE:
            raise InvalidParams(f"limit {limit} above {MAX_PAGE}")
        count = int((await self._read("Datanets", "getDatanet", datanet_id))["contributionCount"], 16)
        out = []
        for index in range(offset, min(count, offset + limit)):
            h = bytes.fromhex((await self._read("Datanets", "contributionAt", datanet_id, index))["value"][2:])
            out.append({"contentHash": F.hexdata(h), **await self._read("Datanets", "getContribution", datanet_id, h)})
        return out

    async def get_version(self, datanet_id: Annotated[int, P.quantity], version: Annotated[int, P.quantity],
                          block: Annotated[object, P.block_id] = "latest") -> dict:
        return {"version": F.qty(version), **await self._read("Datanets", "getVersion", datanet_id, version, block=block)}

    async def get_base_model(self, model_id: Annotated[int, P.quantity]) -> dict:
        return {"id": F.qty(model_id), **await self._read("Models", "getBaseModel", model_id)}

    async def get_training_run(self, run_id: Annotated[int, P.quantity]) -> dict:
        return {"id": F.qty(run_id), **await self._read("Models", "getTrainingRun", run_id)}

    async def get_adapter(self, adapter_id: Annotated[int, P.quantity]) -> dict:
        return {"id": F.qty(adapter_id), **await self._read("Models", "getAdapter", adapter_id)}

    async def get_job(self, job_id: Annotated[int, P.quantity]) -> dict:
        return {"id": F.qty(job_id), **await self._read("InferenceJobs", "getJob", job_id)}

    async def get_proof(self, job_id: Annotated[int, P.quantity]) -> dict:
        proof = await self._read("Attribution", "getProof", job_id)
        entries = [await self._read("Attribution", "proofEntry", job_id, i)
                   for i in range(int(proof["entryCount"], 16))]
        return {"jobId": F.qty(job_id), **proof, "entries": entries}

    async def get_validator(self, address: Annotated[bytes, P.address]) -> dict:
        return {"address": to_checksum_address(address), **await self._read("Staking", "getValidator", address)}

    async def get_validators(self) -> list:
        count = int((await self._read("Staking", "validatorCount"))["value"], 16)
        out = []
        for i in range(min(count, MAX_PAGE)):
            addr = (await self._read("Staking", "validatorAt", i))["value"]
            out.append({"address": addr, **await self._read("Staking", "getValidator", addr)})
        return out

    async def get_rewards(self, address: Annotated[bytes, P.address], first: Annotated[object, P.block_number] = "earliest",
                          last: Annotated[object, P.block_number] = "latest") -> dict:
        """Cumulative rewards (fee splits and block releases), vesting, and unbonding of `address`,
        and what it earned in blocks first..last split by source (node/rewards.py)."""
        from node import rewards

        try:
            lo, hi = self.node.resolve_block(first).block_number, self.node.resolve_block(last).block_number
        except UnknownBlock as e:
            raise InvalidParams(str(e)) from None
        if lo > hi:
            raise InvalidParams(f"block range {lo}..{hi} is empty: the first block is after the last")
        by_source = await trio.to_thread.run_sync(rewards.rewards_by_source, self.node, address, lo, hi,
                                                  limiter=self.ctx.call_limiter)
        return {"address": to_checksum_address(address),
                "fromBlock": F.qty(lo), "toBlock": F.qty(hi),
                "bySource": {name: F.qty(v) for name, v in by_source.items()},
                "rewards": (await self._read("Economics", "rewardsOf", address))["value"],
                "vesting": await self._read("Economics", "vestingOf", address),
                "unbonding": await self._read("Staking", "unbonding", address)}

    async def get_supply(self, audit: Annotated[bool, P.boolean] = False,
                         block: Annotated[object, P.block_number] = "latest") -> dict:
        """OPEN supply parts at `block`; circulating follows from circulating + reserve + locked +
        burned = total. With `audit`, also every balance summed from that block's whole state trie
        (node/supply.py) and whether the identity holds on it."""
        from genesis import TOTAL_SUPPLY
        from node import supply

        try:
            header = self.node.resolve_block(block)
        except UnknownBlock as e:
            raise InvalidParams(str(e)) from None
        parts = await self._read("Economics", "supply", block=header.block_number)
        rest = sum(int(parts[k], 16) for k in ("reserve", "locked", "burned"))
        out = {"total": F.qty(TOTAL_SUPPLY), "circulating": F.qty(TOTAL_SUPPLY - rest), **parts}
        if audit:
            found = await trio.to_thread.run_sync(supply.audit, self.node, header, limiter=self.ctx.call_limiter)
            out["audit"] = {k: v if isinstance(v, bool) else F.qty(v) for k, v in found.items()}
        return out

    async def get_params(self, block: Annotated[object, P.block_id] = "latest") -> dict:
        """Every chain parameter as the Economics module holds it, and the governable ones' bounds.
        Proposals that would change them are the Governor's events (`openledger params` lists them)."""
        from genesis.governance import GOVERNABLE_PARAMS, TIMELOCK_ADDRESS
        from vm.modules.system import PARAM_FIELDS

        values = {name: (await self._read("Economics", "getParam", name, block=block))["value"]
                  for name in PARAM_FIELDS}
        return {"params": values, "setBy": to_checksum_address(TIMELOCK_ADDRESS),
                "governable": {name: [F.qty(low), F.qty(high)] for name, (low, high) in GOVERNABLE_PARAMS.items()}}

    # -- consensus --------------------------------------------------------------------------
    async def get_commit(self, block: Annotated[object, P.block_id] = "latest") -> dict | None:
        """The commit certificate a block was decided with (docs/consensus.md): height, round,
        block hash, each signer and its precommit signature in validator-set order, its hash, and
        the RLP that block N + 1's parentBeaconBlockRoot hashes. `canonical` is true once the
        next block commits to this very commit (until then it is the one this node saw).
        null for a block made outside consensus."""
        try:
            header = self.node.resolve_block(block)
        except UnknownBlock:
            raise RpcError("header not found") from None
        record = self.node.commit_record(header.block_number)
        if record is None:
            return None
        commit = Commit.decode(record)
        child = self.node.header_by_number(header.block_number + 1)
        return {"height": F.qty(commit.height), "round": F.qty(commit.round), "blockHash": F.hexdata(commit.block_hash),
                "signatures": [{"validator": to_checksum_address(s.address), "signature": F.hexdata(s.signature)}
                               for s in commit.signatures],
                "hash": F.hexdata(commit.hash()), "rlp": F.hexdata(record),
                "canonical": child is not None and child.parent_beacon_block_root == commit.hash()}

    def consensus_state(self) -> dict | None:
        """Where this node's consensus is: height, round, step, whether it signs, and its peers."""
        state = getattr(self.node, "consensus_state", None)
        return None if state is None else state()

    # -- blobs ------------------------------------------------------------------------------
    async def put_blob(self, data: Annotated[bytes, P.data], expected: Annotated[bytes, P.hash32] = None,
                       public: Annotated[bool, P.boolean] = False) -> dict:
        """Store `data` under its keccak256 (`expected` must match); `public` objects are served to
        anyone by hash, the rest only as a Datanet's contributions."""
        try:
            blob_hash = await trio.to_thread.run_sync(self.blobs.put, data, expected, public)
        except BlobError as e:
            raise InvalidParams(str(e)) from None
        return {"hash": F.hexdata(blob_hash), "size": F.qty(len(data)), "public": public}

    async def get_blob(self, blob_hash: Annotated[bytes, P.hash32], datanet_id: Annotated[int, P.quantity] = None,
                       signature: Annotated[bytes, P.data] = None) -> str:
        """The bytes (hash-checked) of a public object, or of a contribution of `datanet_id` if the
        caller may read it."""
        if datanet_id is None:
            if not await trio.to_thread.run_sync(self.blobs.is_public, blob_hash):
                raise RpcError(f"no public object 0x{blob_hash.hex()} on this node (a Datanet row is read "
                               "with its datanet id: ol_getBlob(hash, datanetId))")
            try:
                return F.hexdata(await trio.to_thread.run_sync(self.blobs.get, blob_hash))
            except BlobError as e:
                raise RpcError(str(e)) from None
        await self._read("Datanets", "getContribution", datanet_id, blob_hash)  # reverts when not a contribution
        datanet = await self._read("Datanets", "getDatanet", datanet_id)
        if int(datanet["accessPolicy"], 16) == 1:
            if signature is None:
                raise RpcError(f"datanet {datanet_id} is allowlist-only: sign "
                               f"'{blob_message(self.node.chain_id, blob_hash)}' and pass the signature")
            try:
                reader = Account.recover_message(encode_defunct(text=blob_message(self.node.chain_id, blob_hash)),
                                                 signature=signature)
            except Exception:  # eth-account raises several types for malformed signatures
                raise InvalidParams("malformed signature") from None
            allowed = (reader == datanet["owner"]
                       or (await self._read("Datanets", "isAllowed", datanet_id, reader))["value"]
                       or (await self._read("Datanets", "isCurator", datanet_id, reader))["value"])
            if not allowed:
                raise RpcError(f"{reader} may not read datanet {datanet_id}")
        try:
            return F.hexdata(await trio.to_thread.run_sync(self.blobs.get, blob_hash))
        except BlobError as e:
            raise RpcError(str(e)) from None

    def methods(self) -> dict:
        return {
            "ol_modules": self.modules, "ol_getDatanet": self.get_datanet, "ol_getContribution": self.get_contribution,
            "ol_getContributions": self.get_contributions, "ol_getVersion": self.get_version,
            "ol_getBaseModel": self.get_base_model, "ol_getTrainingRun": self.get_training_run,
            "ol_getAdapter": self.get_adapter, "ol_getJob": self.get_job, "ol_getProof": self.get_proof,
            "ol_getValidator": self.get_validator, "ol_getValidators": self.get_validators,
            "ol_getRewards": self.get_rewards, "ol_getSupply": self.get_supply, "ol_getParams": self.get_params,
            "ol_putBlob": self.put_blob, "ol_getBlob": self.get_blob, "ol_getCommit": self.get_commit,
            "ol_consensusState": self.consensus_state,
        }


register_namespace("ol", lambda ctx: OlApi(ctx).methods())
