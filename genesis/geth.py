"""go-ethereum genesis.json -> our Genesis, with the fork schedule py-evm can run.

go-ethereum schedules the early forks by block number, the merge by total difficulty
(`terminalTotalDifficulty`, with `mergeNetsplitBlock` naming the first post-merge block) and the
later forks by timestamp (`shanghaiTime`, `cancunTime`, `pragueTime`). py-evm switches VMs by
block number only, so a timestamp fork (or a merge without `mergeNetsplitBlock`) stays *pending*
until the chain's headers are known: `resolve_forks` fixes each one at the first block whose
header qualifies, which is what `openledger import` does before executing a block file. The
resolved numbers are stored under our own key `openledgerForkBlocks` in the config, so the data
dir's genesis.json stays a valid go-ethereum file.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

import rlp
from eth_utils import is_hex_address, to_canonical_address, to_checksum_address

from genesis.params import Account, Genesis, GenesisError

# go-ethereum's block-number fork keys in activation order, with py-evm's fork names.
BLOCK_FORKS: tuple[tuple[str, str], ...] = (
    ("homesteadBlock", "homestead"),
    ("eip150Block", "tangerine-whistle"),
    ("eip158Block", "spurious-dragon"),
    ("byzantiumBlock", "byzantium"),
    ("constantinopleBlock", "constantinople"),
    ("petersburgBlock", "petersburg"),
    ("istanbulBlock", "istanbul"),
    ("muirGlacierBlock", "muir-glacier"),
    ("berlinBlock", "berlin"),
    ("londonBlock", "london"),
    ("arrowGlacierBlock", "arrow-glacier"),
    ("grayGlacierBlock", "gray-glacier"),
)
TIME_FORKS: tuple[tuple[str, str], ...] = (
    ("shanghaiTime", "shanghai"),
    ("cancunTime", "cancun"),
    ("pragueTime", "prague"),
)
FORK_ORDER: tuple[str, ...] = ("frontier",) + tuple(n for _, n in BLOCK_FORKS) + ("paris",) + tuple(
    n for _, n in TIME_FORKS)
UNSUPPORTED_FORKS = ("osakaTime", "bpo1Time", "bpo2Time", "verkleTime", "amsterdamTime")
RESOLVED_KEY = "openledgerForkBlocks"

# The blob parameters py-evm hard-codes (EIP-4844, EIP-7691); another schedule cannot run.
PY_EVM_BLOB_SCHEDULE: Mapping[str, tuple[int, int, int]] = MappingProxyType({
    "cancun": (3, 6, 3338477),
    "prague": (6, 9, 5007716),
})


@dataclasses.dataclass(frozen=True)
class BlobParams:
    target: int
    max: int
    base_fee_update_fraction: int


@dataclasses.dataclass(frozen=True)
class EthereumParams:
    """What a go-ethereum genesis carries beyond our Genesis: block 0's PoW fields, the merge and
    timestamp forks, the blob schedule, and the config as given (for eth_config)."""

    difficulty: int
    nonce: bytes
    mix_hash: bytes
    coinbase: bytes
    base_fee: int | None
    dao_fork_block: int | None
    dao_fork_support: bool
    terminal_total_difficulty: int | None
    merge_block: int | None
    fork_times: tuple[tuple[str, int], ...]
    blob_schedule: Mapping[str, BlobParams]
    deposit_contract: bytes
    config: Mapping[str, Any]

    def pending_forks(self, forks: tuple[tuple[int, str], ...]) -> tuple[str, ...]:
        """Forks known only by time or total difficulty and not yet placed at a block number."""
        placed = {name for _, name in forks}
        pending = [name for name, _ in self.fork_times if name not in placed]
        if self.terminal_total_difficulty is not None and "paris" not in placed:
            pending.insert(0, "paris")
        return tuple(pending)


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise GenesisError(f"geth genesis: {where} {value!r} is not an integer")
    if isinstance(value, int):
        result = value
    elif isinstance(value, str):
        try:
            result = int(value, 0) if value.startswith(("0x", "0X")) else int(value)
        except ValueError:
            raise GenesisError(f"geth genesis: {where} {value!r} is not an integer") from None
    else:
        raise GenesisError(f"geth genesis: {where} {value!r} is not an integer")
    if result < 0:
        raise GenesisError(f"geth genesis: {where} {value!r} is negative")
    return result


def _hexbytes(value: Any, where: str, size: int | None = None) -> bytes:
    if not isinstance(value, str):
        raise GenesisError(f"geth genesis: {where} {value!r} is not hex")
    text = value[2:] if value.startswith(("0x", "0X")) else value
    if len(text) % 2:
        text = "0" + text
    try:
        data = bytes.fromhex(text)
    except ValueError:
        raise GenesisError(f"geth genesis: {where} {value!r} is not valid hex") from None
    if size is not None:
        if len(data) > size:
            raise GenesisError(f"geth genesis: {where} {value!r} is longer than {size} bytes")
        data = data.rjust(size, b"\x00")
    return data


def _address(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise GenesisError(f"geth genesis: {where} {value!r} is not an address")
    text = value if value.startswith("0x") else "0x" + value
    if not is_hex_address(text):
        raise GenesisError(f"geth genesis: {where} {value!r} is not a 20-byte hex address")
    return to_canonical_address(text)


def is_geth_format(data: Any) -> bool:
    """go-ethereum genesis files have a `config` object with the chain id inside it."""
    return isinstance(data, dict) and isinstance(data.get("config"), dict) and "chainId" in data["config"]


def _block_forks(config: Mapping[str, Any]) -> list[tuple[int, str]]:
    forks: list[tuple[int, str]] = [(0, "frontier")]
    previous = 0
    for key, name in BLOCK_FORKS:
        if config.get(key) is None:
            continue
        number = _int(config[key], f"config.{key}")
        if number < previous:
            raise GenesisError(f"geth genesis: config.{key} {number} comes before an earlier fork ({previous})")
        forks.append((number, name))
        previous = number
    if config.get("eip155Block") is not None and config.get("eip158Block") is not None and \
            _int(config["eip155Block"], "config.eip155Block") != _int(config["eip158Block"], "config.eip158Block"):
        raise GenesisError("geth genesis: eip155Block and eip158Block differ; py-evm has one Spurious Dragon fork")
    return forks


def _collapse(forks: Iterable[tuple[int, str]]) -> tuple[tuple[int, str], ...]:
    """One VM per block number: of forks at the same block, the latest in FORK_ORDER runs."""
    by_number: dict[int, str] = {}
    for number, name in sorted(forks, key=lambda f: (f[0], FORK_ORDER.index(f[1]))):
        by_number[number] = name
    return tuple(sorted(by_number.items()))


def from_geth(data: Mapping[str, Any], block_time: float = 0) -> Genesis:
    """Our Genesis from a parsed go-ethereum genesis.json; errors name the bad field."""
    if not is_geth_format(data):
        raise GenesisError("geth genesis: missing object 'config' with 'chainId'")
    config = data["config"]
    for key in UNSUPPORTED_FORKS:
        if config.get(key) is not None:
            raise GenesisError(f"geth genesis: config.{key} is set, but py-evm has no fork after Prague")
    if config.get("clique") is not None:
        raise GenesisError("geth genesis: clique proof of authority is not supported")
    chain_id = _int(config["chainId"], "config.chainId")
    if not 0 < chain_id < 2**64:
        raise GenesisError(f"geth genesis: config.chainId {chain_id} out of range")

    forks = _block_forks(config)
    ttd = None if config.get("terminalTotalDifficulty") is None else _int(
        config["terminalTotalDifficulty"], "config.terminalTotalDifficulty")
    merge_block = None if config.get("mergeNetsplitBlock") is None else _int(
        config["mergeNetsplitBlock"], "config.mergeNetsplitBlock")
    difficulty = _int(data.get("difficulty", "0x0"), "difficulty")
    if merge_block is not None:
        forks.append((merge_block, "paris"))
    elif ttd is not None and difficulty >= ttd:
        forks.append((0, "paris"))  # merged at genesis (ttd 0 and post-merge devnets)

    timestamp = _int(data.get("timestamp", "0x0"), "timestamp")
    fork_times: list[tuple[str, int]] = []
    for key, name in TIME_FORKS:
        if config.get(key) is None:
            continue
        at = _int(config[key], f"config.{key}")
        if fork_times and at < fork_times[-1][1]:
            raise GenesisError(f"geth genesis: config.{key} {at} comes before an earlier fork")
        fork_times.append((name, at))
        if at <= timestamp:
            forks.append((0, name))
    for name, number in (config.get(RESOLVED_KEY) or {}).items():
        if name not in dict(TIME_FORKS).values() and name != "paris":
            raise GenesisError(f"geth genesis: config.{RESOLVED_KEY} names unknown fork {name!r}")
        forks.append((_int(number, f"config.{RESOLVED_KEY}.{name}"), name))

    blob_schedule: dict[str, BlobParams] = {}
    for fork, params in (config.get("blobSchedule") or {}).items():
        if not isinstance(params, dict):
            raise GenesisError(f"geth genesis: config.blobSchedule.{fork} must be an object")
        blob = BlobParams(*(_int(params.get(k), f"config.blobSchedule.{fork}.{k}")
                            for k in ("target", "max", "baseFeeUpdateFraction")))
        expected = PY_EVM_BLOB_SCHEDULE.get(fork)
        if expected is None or dataclasses.astuple(blob) != expected:
            raise GenesisError(f"geth genesis: config.blobSchedule.{fork} {dataclasses.astuple(blob)} differs from "
                               f"what py-evm runs ({expected})")
        blob_schedule[fork] = blob

    alloc = data.get("alloc", {})
    if not isinstance(alloc, dict):
        raise GenesisError("geth genesis: 'alloc' must be an object")
    accounts: dict[bytes, Account] = {}
    for key, acct in alloc.items():
        address = _address(key, "alloc address")
        if address in accounts:
            raise GenesisError(f"geth genesis: alloc address {key} appears twice")
        if not isinstance(acct, dict):
            raise GenesisError(f"geth genesis: alloc[{key}] must be an object")
        storage = acct.get("storage") or {}
        if not isinstance(storage, dict):
            raise GenesisError(f"geth genesis: alloc[{key}].storage must be an object")
        accounts[address] = Account(
            balance=_int(acct.get("balance", "0x0"), f"alloc[{key}].balance"),
            nonce=_int(acct.get("nonce", "0x0"), f"alloc[{key}].nonce"),
            code=_hexbytes(acct.get("code", "0x"), f"alloc[{key}].code"),
            storage=MappingProxyType({
                int.from_bytes(_hexbytes(k, f"alloc[{key}].storage key", 32), "big"):
                    int.from_bytes(_hexbytes(v, f"alloc[{key}].storage[{k}]", 32), "big")
                for k, v in storage.items()
            }),
        )

    base_fee = None if data.get("baseFeePerGas") is None else _int(data["baseFeePerGas"], "baseFeePerGas")
    collapsed = _collapse(forks)
    london_at_0 = any(FORK_ORDER.index(name) >= FORK_ORDER.index("london") for number, name in collapsed if number == 0)
    if base_fee is None and london_at_0:
        base_fee = 1_000_000_000  # go-ethereum's InitialBaseFee
    ethereum = EthereumParams(
        difficulty=difficulty,
        nonce=_hexbytes(data.get("nonce", "0x0"), "nonce", 8),
        mix_hash=_hexbytes(data.get("mixHash", "0x" + "00" * 32), "mixHash", 32),
        coinbase=_address(data.get("coinbase", "0x" + "00" * 20), "coinbase"),
        base_fee=base_fee,
        dao_fork_block=None if config.get("daoForkBlock") is None else _int(config["daoForkBlock"],
                                                                             "config.daoForkBlock"),
        dao_fork_support=bool(config.get("daoForkSupport", False)),
        terminal_total_difficulty=ttd,
        merge_block=merge_block,
        fork_times=tuple(fork_times),
        blob_schedule=MappingProxyType(blob_schedule),
        deposit_contract=_address(config.get("depositContractAddress", "0x" + "00" * 20),
                                  "config.depositContractAddress"),
        config=MappingProxyType({k: v for k, v in config.items() if k != RESOLVED_KEY}),
    )
    return Genesis(
        chain_id=chain_id,
        gas_limit=_int(data.get("gasLimit", "0x47b760"), "gasLimit"),
        base_fee=base_fee or 0,
        block_time=block_time,
        base_fee_sink="burn",
        treasury=b"\x00" * 20,
        accounts=MappingProxyType(accounts),
        validators=(),
        timestamp=timestamp,
        extra_data=_hexbytes(data.get("extraData", "0x"), "extraData"),
        fork=collapsed[-1][1],
        forks=collapsed,
        ethereum=ethereum,
        governance=None,  # an imported Ethereum chain has none of our predeploys
    )


def to_geth(genesis: Genesis) -> dict[str, Any]:
    """The go-ethereum genesis of an imported chain, with resolved forks under RESOLVED_KEY."""
    eth = genesis.ethereum
    if eth is None:
        raise GenesisError("genesis: not an imported go-ethereum genesis")
    config = dict(eth.config)
    resolved = {name: number for number, name in genesis.forks
                if name in dict(TIME_FORKS).values() or (name == "paris" and eth.merge_block is None)}
    resolved = {n: b for n, b in resolved.items() if b != 0 or n == "paris"}
    if resolved:
        config[RESOLVED_KEY] = resolved
    else:
        config.pop(RESOLVED_KEY, None)

    def account(a: Account) -> dict[str, Any]:
        out: dict[str, Any] = {"balance": hex(a.balance)}
        if a.nonce:
            out["nonce"] = hex(a.nonce)
        if a.code:
            out["code"] = "0x" + a.code.hex()
        if a.storage:
            out["storage"] = {f"0x{k:064x}": f"0x{v:064x}" for k, v in a.storage.items()}
        return out

    out: dict[str, Any] = {
        "config": config,
        "nonce": "0x" + eth.nonce.hex(),
        "timestamp": hex(genesis.timestamp),
        "extraData": "0x" + genesis.extra_data.hex(),
        "gasLimit": hex(genesis.gas_limit),
        "difficulty": hex(eth.difficulty),
        "mixHash": "0x" + eth.mix_hash.hex(),
        "coinbase": to_checksum_address(eth.coinbase),
        "alloc": {to_checksum_address(a): account(acct) for a, acct in genesis.accounts.items()},
    }
    if eth.base_fee is not None:
        out["baseFeePerGas"] = hex(eth.base_fee)
    return out


def to_json(genesis: Genesis) -> str:
    return json.dumps(to_geth(genesis), indent=2)


@dataclasses.dataclass(frozen=True)
class HeaderFields:
    """The header fields fork resolution reads, straight from a block's RLP (any fork)."""

    difficulty: int
    block_number: int
    timestamp: int

    @classmethod
    def from_block_rlp(cls, raw: bytes) -> "HeaderFields":
        fields = rlp.decode(raw)[0]
        return cls(*(int.from_bytes(fields[i], "big") for i in (7, 8, 11)))


def resolve_forks(genesis: Genesis, headers: Iterable[Any]) -> Genesis:
    """Place pending timestamp forks (and a merge known only by total difficulty) at the first
    header that activates them. `headers` are the chain's headers from block 1 in order (py-evm
    headers or anything with block_number, timestamp, difficulty). Returns a new Genesis."""
    eth = genesis.ethereum
    if eth is None:
        return genesis
    pending = list(eth.pending_forks(genesis.forks))
    if not pending:
        return genesis
    times = dict(eth.fork_times)
    found: list[tuple[int, str]] = []
    for header in headers:
        while pending:
            name = pending[0]
            if name == "paris":
                hit = header.difficulty == 0
            else:
                hit = header.timestamp >= times[name]
            if not hit:
                break
            found.append((header.block_number, name))
            pending.pop(0)
        if not pending:
            break
    if not found:
        return genesis
    return dataclasses.replace(genesis, forks=_collapse(genesis.forks + tuple(found)),
                               fork=_collapse(genesis.forks + tuple(found))[-1][1])


def fork_activation(genesis: Genesis, name: str) -> tuple[str, int] | None:
    """How go-ethereum would state a fork's activation: ("time", t) or ("block", n), or None."""
    eth = genesis.ethereum
    if eth is None:
        return ("block", 0) if name == genesis.fork else None
    times = dict(eth.fork_times)
    if name in times:
        return ("time", times[name])
    for number, fork in genesis.forks:
        if fork == name:
            return ("block", number)
    return None

