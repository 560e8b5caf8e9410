"""Parsers for JSON-RPC arguments, with go-ethereum's rules and wording.

Each parser takes the decoded JSON value and returns a Python value or raises `ValueError`; the
dispatcher turns that into `-32602 invalid argument N: <message>`. Handlers declare them with
`typing.Annotated[T, parser]`, so the wire format of every method is visible in its signature.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

TAGS = frozenset(("latest", "earliest", "pending", "safe", "finalized"))
_HEX = re.compile(r"0[xX][0-9a-fA-F]*\Z")
MAX_UINT256 = 2**256 - 1


def _hex_body(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"cannot unmarshal {_json_kind(value)} into {what}")
    if not value.startswith(("0x", "0X")):
        raise ValueError("hex string without 0x prefix")
    if not _HEX.match(value):
        raise ValueError("invalid hex string")
    return value[2:]


def _json_kind(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    if value is None:
        return "null"
    return "string"


def quantity(value: object) -> int:
    """A hex-encoded unsigned integer (`0x0`, `0x1f`), at most 256 bits, no leading zeros."""
    body = _hex_body(value, "quantity")
    if not body:
        raise ValueError("hex string \"0x\"")
    if len(body) > 1 and body[0] == "0":
        raise ValueError("hex number with leading zero digits")
    if len(body) > 64:
        raise ValueError("hex number > 256 bits")
    return int(body, 16)


def uint64(value: object) -> int:
    """A quantity that must fit 64 bits (gas, nonce, counts, block numbers)."""
    number = quantity(value)
    if number >= 2**64:
        raise ValueError("hex number > 64 bits")
    return number


def data(value: object) -> bytes:
    """Hex-encoded bytes of any length (`0x` is empty)."""
    body = _hex_body(value, "data")
    if len(body) % 2:
        raise ValueError("hex string of odd length")
    return bytes.fromhex(body)


def _fixed(value: object, size: int, what: str) -> bytes:
    body = _hex_body(value, what)
    if len(body) != 2 * size:
        raise ValueError(f"hex string has length {len(body)}, want {2 * size} for {what}")
    return bytes.fromhex(body)


def address(value: object) -> bytes:
    """A 20-byte address (checksum not enforced, as in geth)."""
    return _fixed(value, 20, "common.Address")


def hash32(value: object) -> bytes:
    """A 32-byte hash."""
    return _fixed(value, 32, "common.Hash")


def storage_slot(value: object) -> int:
    """A storage key: geth accepts any hex up to 32 bytes (quantity or padded data)."""
    body = _hex_body(value, "storage slot")
    if len(body) > 64:
        raise ValueError("hex string too long, want at most 32 bytes")
    return int(body or "0", 16)


def string(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"cannot unmarshal {_json_kind(value)} into string")
    return value


def boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"cannot unmarshal {_json_kind(value)} into bool")
    return value


def block_number(value: object) -> str | int:
    """A block tag or number (`eth_getBlockByNumber`, filter ranges)."""
    if isinstance(value, str) and value in TAGS:
        return value
    if isinstance(value, str) and not value.startswith(("0x", "0X")):
        raise ValueError(f"invalid block tag {value!r}")
    number = quantity(value)
    if number > 2**63 - 1:
        raise ValueError("block number larger than int64")
    return number


@dataclass(frozen=True)
class BlockHash:
    """EIP-1898 `{"blockHash": ..., "requireCanonical": bool}`."""

    hash: bytes
    require_canonical: bool = False


def block_id(value: object) -> str | int | BlockHash:
    """EIP-1898 block reference: tag, number, bare 32-byte hash, or `{blockHash|blockNumber}`."""
    if isinstance(value, dict):
        if "blockHash" in value and "blockNumber" in value:
            raise ValueError("cannot specify both BlockHash and BlockNumber, choose one or the other")
        if "blockHash" in value:
            canonical = value.get("requireCanonical", False)
            return BlockHash(hash32(value["blockHash"]), boolean(canonical))
        if "blockNumber" in value:
            return block_number(value["blockNumber"])
        raise ValueError("either BlockHash or BlockNumber must be set")
    if isinstance(value, str) and len(value) == 66:
        return BlockHash(hash32(value))
    return block_number(value)


def _optional(value: dict, key: str, parse):
    item = value.get(key)
    return None if item is None else parse(item)


def access_list(value: object) -> list[tuple[bytes, list[int]]]:
    if not isinstance(value, list):
        raise ValueError("accessList must be an array")
    result = []
    for entry in value:
        if not isinstance(entry, dict) or not isinstance(entry.get("storageKeys", []), list):
            raise ValueError("invalid access list entry")
        result.append((address(entry.get("address")), [int.from_bytes(hash32(k), "big") for k in entry.get("storageKeys", [])]))
    return result


def _word(value: object) -> int:
    """A signature's r or s: hex of at most 32 bytes (clients pad them to 32 bytes or not)."""
    body = _hex_body(value, "uint256")
    if not body or len(body) > 64:
        raise ValueError("invalid signature value")
    return int(body, 16)


def authorization_list(value: object) -> list[dict]:
    """EIP-7702 authorizations as py-evm builds them (chain_id, address, nonce, y_parity, r, s)."""
    if not isinstance(value, list):
        raise ValueError("authorizationList must be an array")
    out = []
    for entry in value:
        if not isinstance(entry, dict):
            raise ValueError("invalid authorization")
        try:
            parity = uint64(entry["yParity"]) if entry.get("yParity") is not None else uint64(entry["v"]) % 27
            out.append({"chain_id": quantity(entry["chainId"]), "address": address(entry["address"]),
                        "nonce": uint64(entry["nonce"]), "y_parity": parity,
                        "r": _word(entry["r"]), "s": _word(entry["s"])})
        except KeyError as missing:
            raise ValueError(f"authorization without {missing.args[0]}") from None
    return out


def call_request(value: object) -> dict:
    """A transaction call object (eth_call, eth_estimateGas) as a dict of Python values.

    Keys present only when given: from, to, gas, gasPrice, maxFeePerGas, maxPriorityFeePerGas,
    value, data, nonce, accessList, authorizationList, chainId, type. `input` is the spec's name,
    `data` the legacy one.
    """
    if not isinstance(value, dict):
        raise ValueError(f"cannot unmarshal {_json_kind(value)} into TransactionArgs")
    parsers = {
        "from": address, "to": address, "gas": uint64, "gasPrice": quantity,
        "maxFeePerGas": quantity, "maxPriorityFeePerGas": quantity, "value": quantity,
        "nonce": uint64, "accessList": access_list, "authorizationList": authorization_list,
        "chainId": quantity, "type": uint64,
    }
    tx = {}
    for key, parse in parsers.items():
        parsed = _optional(value, key, parse)
        if parsed is not None:
            tx[key] = parsed
    payload = _optional(value, "input", data)
    legacy = _optional(value, "data", data)
    if payload is not None and legacy is not None and payload != legacy:
        raise ValueError('both "data" and "input" are set and not equal. Please use "input" to pass transaction call data')
    if "gasPrice" in tx and ("maxFeePerGas" in tx or "maxPriorityFeePerGas" in tx):
        raise ValueError("both gasPrice and (maxFeePerGas or maxPriorityFeePerGas) specified")
    tx["data"] = payload if payload is not None else (legacy or b"")
    return tx


MAX_TOPICS = 4


def _topic_position(item: object) -> tuple[bytes, ...] | None:
    if item is None:
        return None
    if isinstance(item, str):
        return (hash32(item),)
    if isinstance(item, list):
        if not item or any(t is None for t in item):
            return None  # [] or [null, ...] matches anything, as in geth
        return tuple(hash32(t) for t in item)
    raise ValueError("invalid topic(s)")


@dataclass(frozen=True)
class LogFilter:
    """A parsed filter object: a block range or one block hash, addresses, topic positions."""

    from_block: str | int | None = None
    to_block: str | int | None = None
    block_hash: bytes | None = None
    addresses: tuple[bytes, ...] = ()
    topics: tuple[tuple[bytes, ...] | None, ...] = ()


def log_filter(value: object) -> LogFilter:
    if not isinstance(value, dict):
        raise ValueError(f"cannot unmarshal {_json_kind(value)} into FilterCriteria")
    block_hash = _optional(value, "blockHash", hash32)
    from_block = _optional(value, "fromBlock", block_number)
    to_block = _optional(value, "toBlock", block_number)
    if block_hash is not None and (from_block is not None or to_block is not None):
        raise ValueError("cannot specify both BlockHash and FromBlock/ToBlock, choose one or the other")
    raw_addresses = value.get("address")
    if raw_addresses is None:
        addresses: tuple[bytes, ...] = ()
    elif isinstance(raw_addresses, list):
        addresses = tuple(address(a) for a in raw_addresses)
    else:
        addresses = (address(raw_addresses),)
    raw_topics = value.get("topics") or []
    if not isinstance(raw_topics, list):
        raise ValueError("invalid topics: want an array")
    if len(raw_topics) > MAX_TOPICS:
        raise ValueError("exceed max topics")
    topics = tuple(_topic_position(t) for t in raw_topics)
    return LogFilter(from_block, to_block, block_hash, addresses, topics)


def filter_id(value: object) -> str:
    """A filter or subscription id as issued (0x + 32 hex digits); compared case-insensitively."""
    if not isinstance(value, str) or not _HEX.match(value) or len(value) > 66:
        raise ValueError("invalid filter id")
    return value.lower()
